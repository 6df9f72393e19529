package rpcbench

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/svrkit/svrkit/tools/internal/rpcbench/echopb"
)

// The gRPC side is gRPC-Go as its documentation recommends using it: one
// grpc.Server with default options and one ClientConn (HTTP/2 multiplexes
// every caller's stream over it), plaintext because svrkit's transport has
// no TLS either. Options.GRPCConns spreads callers over several ClientConns
// for those who want to see gRPC with as many connections as svrkit.

type grpcEcho struct {
	echopb.UnimplementedEchoServer
}

func (grpcEcho) Echo(_ context.Context, req *echopb.EchoRequest) (*echopb.EchoResponse, error) {
	return echo(req), nil
}

type grpcSystem struct {
	srv     *grpc.Server
	served  chan error
	conns   []*grpc.ClientConn
	clients []echopb.EchoClient
	next    atomic.Uint32
}

func startGRPC(o Options) (System, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &grpcSystem{srv: grpc.NewServer(), served: make(chan error, 1)}
	echopb.RegisterEchoServer(s.srv, grpcEcho{})
	go func() { s.served <- s.srv.Serve(lis) }()
	n := max(o.GRPCConns, 1)
	for range n {
		cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			s.Close()
			return nil, err
		}
		cc.Connect()
		s.conns = append(s.conns, cc)
		s.clients = append(s.clients, echopb.NewEchoClient(cc))
	}
	return s, nil
}

func (s *grpcSystem) NewCaller(payload []byte) Caller {
	client := s.clients[int(s.next.Add(1)-1)%len(s.clients)]
	req := &echopb.EchoRequest{Payload: payload}
	return func(ctx context.Context) ([]byte, error) {
		resp, err := client.Echo(ctx, req)
		if err != nil {
			return nil, err
		}
		return resp.GetPayload(), echoLen(resp.GetPayload(), len(payload))
	}
}

func (s *grpcSystem) Close() error {
	var errs []error
	for _, cc := range s.conns {
		errs = append(errs, cc.Close())
	}
	stopped := make(chan struct{})
	go func() { s.srv.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		errs = append(errs, errors.New("rpcbench: grpc server did not stop within 10s"))
	}
	return errors.Join(errs...)
}
