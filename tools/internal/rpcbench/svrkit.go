package rpcbench

import (
	"context"
	"crypto/ed25519"
	"errors"
	"time"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/tools/internal/rpcbench/echopb"
)

// The svrkit side is svrkit as a user gets it: NewServer and NewClient with
// default options, the echo method running on a worker goroutine. The
// "svrkit-inline" variant declares the method NonBlocking, which a handler
// this simple may, so the server runs it on the event loop.

// svrkitDefaultConns is how many connections svrkit's client opens to one
// endpoint by default; the ceiling's raw client opens as many.
const svrkitDefaultConns = svrkit.DefaultConnsPerEndpoint

type svrkitEcho struct{}

func (svrkitEcho) Echo(_ context.Context, req *echopb.EchoRequest) (*echopb.EchoResponse, error) {
	return echo(req), nil
}

type svrkitSystem struct {
	srv    *svrkit.Server
	client *svrkit.Client
	method *svrkit.MethodDesc
}

// startSvrkit starts desc's echo. With auth, the server requires service
// authentication and the service lists the client's identity among its
// callers, so every call passes the caller check.
func startSvrkit(o Options, desc *svrkit.ServiceDesc, auth bool, extra ...svrkit.ServerOption) (System, error) {
	sopts := extra
	var copts []svrkit.ClientOption
	if o.EventLoops > 0 {
		sopts = append(sopts, svrkit.WithEventLoops(o.EventLoops))
	}
	if auth {
		pub, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			return nil, err
		}
		guarded := *desc
		guarded.Callers = []string{"other", "bench"}
		desc = &guarded
		sopts = append(sopts, svrkit.WithRequireAuth(svrkit.Keyring{"bench": pub}))
		copts = append(copts, svrkit.WithIdentity("bench", priv))
	}
	srv := svrkit.NewServer(sopts...)
	srv.RegisterService(desc, svrkitEcho{})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	client, err := svrkit.NewClient(srv.Addr().String(), copts...)
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return nil, errors.Join(err, srv.Shutdown(ctx))
	}
	return &svrkitSystem{srv: srv, client: client, method: &desc.Methods[0]}, nil
}

func (s *svrkitSystem) NewCaller(payload []byte) Caller {
	req := &echopb.EchoRequest{Payload: payload}
	return func(ctx context.Context) ([]byte, error) {
		// A new response per call, as a generated client returns one.
		resp := new(echopb.EchoResponse)
		if err := s.client.Invoke(ctx, s.method, req, resp); err != nil {
			return nil, err
		}
		return resp.GetPayload(), echoLen(resp.GetPayload(), len(payload))
	}
}

func (s *svrkitSystem) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(s.client.Close(), s.srv.Shutdown(ctx))
}
