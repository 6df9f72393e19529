package rpcbench

import (
	"context"
	"crypto/ed25519"
	"errors"
	"slices"

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

// svrkitSystem is svrkit's client calling method on a server that stop
// stops: svrkit's own, or the ceiling's (svrkit-client, halves.go).
type svrkitSystem struct {
	stop   func(context.Context) error
	client *svrkit.Client
	method *svrkit.MethodDesc
}

// startSvrkit starts desc's echo. With auth, the server requires service
// authentication and the service lists the client's identity among its
// callers, so every call passes the caller check.
func startSvrkit(o Options, desc *svrkit.ServiceDesc, auth bool, extra ...svrkit.ServerOption) (System, error) {
	sopts := slices.Clone(extra)
	var copts []svrkit.ClientOption
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
	srv, err := startSvrkitServer(o, desc, sopts...)
	if err != nil {
		return nil, err
	}
	client, err := svrkit.NewClient(srv.Addr().String(), copts...)
	if err != nil {
		return nil, errors.Join(err, stopWithin(srv.Shutdown))
	}
	return &svrkitSystem{stop: srv.Shutdown, client: client, method: &desc.Methods[0]}, nil
}

// startSvrkitServer starts a svrkit server of desc's echo on 127.0.0.1
// with a free port, with o's event loops and opts.
func startSvrkitServer(o Options, desc *svrkit.ServiceDesc, opts ...svrkit.ServerOption) (*svrkit.Server, error) {
	if o.EventLoops > 0 {
		opts = append(slices.Clip(opts), svrkit.WithEventLoops(o.EventLoops))
	}
	srv := svrkit.NewServer(opts...)
	srv.RegisterService(desc, svrkitEcho{})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return srv, nil
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
	return errors.Join(s.client.Close(), stopWithin(s.stop))
}
