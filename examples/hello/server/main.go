// Command server serves the hello example's Greeter twice over: binary RPC
// with svrkit.Server and HTTP with svrkit/cgi. The one handler below is the
// only hand-written service code; everything else comes from hello.proto.
//
//	go run ./examples/hello/server -rpc 127.0.0.1:7070 -http 127.0.0.1:8080
//
//	go run ./tools/svrkit call -d '{"name":"Ada"}' 127.0.0.1:7070 hello.Greeter/SayHello
//	go run ./tools/svrkit call -d '{"name":"Ada"}' http://127.0.0.1:8080 hello.Greeter/SayHello
//	curl -d '{"name":"Ada"}' -H 'Content-Type: application/json' http://127.0.0.1:8080/cgi-bin/hello/sayhello
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/svrkit/svrkit/examples/hello"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/cgi"
)

// greeter implements hello.GreeterServer.
type greeter struct {
	hello.UnimplementedGreeterServer
}

func (greeter) SayHello(_ context.Context, req *hello.HelloRequest) (*hello.HelloReply, error) {
	if req.GetName() == "" {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "name is required")
	}
	return &hello.HelloReply{Message: "Hello, " + req.GetName() + "!"}, nil
}

func main() {
	rpcAddr := flag.String("rpc", "127.0.0.1:7070", "binary RPC listen `address`")
	httpAddr := flag.String("http", "127.0.0.1:8080", "HTTP listen `address`")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := serve(ctx, *rpcAddr, *httpAddr, func(rpc, http net.Addr) {
		log.Printf("hello: binary RPC on %s, HTTP on http://%s", rpc, http)
	})
	if err != nil {
		log.Fatal(err)
	}
}

// serve runs both servers until ctx ends, calling ready once both listen,
// then shuts them down gracefully.
func serve(ctx context.Context, rpcAddr, httpAddr string, ready func(rpc, http net.Addr)) error {
	srv := svrkit.NewServer()
	hello.RegisterGreeterServer(srv, greeter{})

	h := cgi.NewHandler()
	hello.RegisterGreeterServer(h, greeter{})

	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	httpDone := make(chan error, 1)
	go func() { httpDone <- hs.Serve(ln) }()

	if err := srv.Start(rpcAddr); err != nil {
		hs.Close()
		return err
	}
	ready(srv.Addr(), ln.Addr())

	select {
	case <-ctx.Done():
	case err = <-httpDone:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errs := []error{err, srv.Shutdown(shutdownCtx), hs.Shutdown(shutdownCtx)}
	for i, e := range errs {
		if errors.Is(e, http.ErrServerClosed) {
			errs[i] = nil
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	return nil
}
