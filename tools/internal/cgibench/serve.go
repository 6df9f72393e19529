package cgibench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"connectrpc.com/connect"

	"github.com/svrkit/svrkit/examples/hello"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

// greet is the one handler body both systems run.
func greet(name string) (*hello.HelloReply, error) {
	if name == "" {
		return nil, errors.New("name is required")
	}
	return &hello.HelloReply{Message: "Hello, " + name + "!"}, nil
}

type greeter struct {
	hello.UnimplementedGreeterServer
}

func (greeter) SayHello(_ context.Context, req *hello.HelloRequest) (*hello.HelloReply, error) {
	out, err := greet(req.GetName())
	if err != nil {
		return nil, svrkit.NewError(svrkit.InvalidArgument, err.Error())
	}
	return out, nil
}

// Serve runs system's server on addr until ctx ends, calling ready with the
// bound address once it accepts connections.
func Serve(ctx context.Context, system, addr string, ready func(net.Addr)) error {
	switch system {
	case "logicsvr":
		h, err := logicsvr.New(logicsvr.Config{
			Name: "bench", HTTP: addr, RPC: logicsvr.Off, Admin: "127.0.0.1:0",
		}, logicsvr.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		if err != nil {
			return err
		}
		hello.RegisterGreeterServer(h, greeter{})
		if err := h.Start(); err != nil {
			return err
		}
		ready(h.HTTPAddr())
		<-ctx.Done()
		return h.Shutdown(context.Background())
	case "connect":
		mux := http.NewServeMux()
		mux.Handle(Route, connect.NewUnaryHandler(Route,
			func(_ context.Context, req *connect.Request[hello.HelloRequest]) (*connect.Response[hello.HelloReply], error) {
				out, err := greet(req.Msg.GetName())
				if err != nil {
					return nil, connect.NewError(connect.CodeInvalidArgument, err)
				}
				return connect.NewResponse(out), nil
			}))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ln) }()
		ready(ln.Addr())
		select {
		case <-ctx.Done():
		case err := <-done:
			return err
		}
		return srv.Shutdown(context.Background())
	}
	return fmt.Errorf("unknown system %q (want logicsvr or connect)", system)
}
