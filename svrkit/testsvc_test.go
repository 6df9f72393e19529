package svrkit_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svrkit/svrkit/svrkit"
)

// testService is a hand-written service used by the runtime's tests; it
// exercises what generated code would, without depending on the generator.
type testService struct {
	calls      atomic.Int64
	started    chan struct{}  // receives when Sleep starts, if non-nil
	canceled   chan error     // receives Sleep's ctx error, if non-nil
	next       *svrkit.Client // Relay's next hop
	nextMethod *svrkit.MethodDesc
	redirectTo atomic.Pointer[string] // Echo redirects there, if set
}

const (
	cmdEcho     = 1
	cmdSleep    = 2
	cmdPanic    = 3
	cmdFail     = 4
	cmdMeta     = 5
	cmdDeadline = 6
	cmdRelay    = 7
	cmdSlowSvc  = 8
	cmdBlob     = 9
	cmdIdentity = 10
	cmdSpin     = 11
)

func (s *testService) Echo(ctx context.Context, req *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
	s.calls.Add(1)
	if to := s.redirectTo.Load(); to != nil {
		return nil, svrkit.Redirect(*to, "not the leader")
	}
	return req, nil
}

// Sleep sleeps for the requested time or until its context ends.
func (s *testService) Sleep(ctx context.Context, req *durationpb.Duration) (*durationpb.Duration, error) {
	s.calls.Add(1)
	if s.started != nil {
		s.started <- struct{}{}
	}
	t := time.NewTimer(req.AsDuration())
	defer t.Stop()
	select {
	case <-t.C:
		return req, nil
	case <-ctx.Done():
		if s.canceled != nil {
			s.canceled <- ctx.Err()
		}
		return nil, ctx.Err()
	}
}

func (s *testService) Panic(ctx context.Context, req *emptypb.Empty) (*emptypb.Empty, error) {
	panic("deliberate test panic")
}

// Fail fails with the requested code, and a detail naming it.
func (s *testService) Fail(ctx context.Context, req *wrapperspb.UInt32Value) (*emptypb.Empty, error) {
	e, err := svrkit.Errorf(svrkit.Code(req.Value), "failed with code %d", req.Value).AddDetail(wrapperspb.UInt32(req.Value))
	if err != nil {
		return nil, err
	}
	return nil, e
}

func (s *testService) Meta(ctx context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	return wrapperspb.String(svrkit.IncomingMetadata(ctx)[req.Value]), nil
}

// Deadline returns the time left before the call's deadline, or -1s.
func (s *testService) Deadline(ctx context.Context, req *emptypb.Empty) (*durationpb.Duration, error) {
	d, ok := ctx.Deadline()
	if !ok {
		return durationpb.New(-time.Second), nil
	}
	return durationpb.New(time.Until(d)), nil
}

// Relay calls Deadline on the next hop with the handler's own context.
func (s *testService) Relay(ctx context.Context, req *emptypb.Empty) (*durationpb.Duration, error) {
	resp := new(durationpb.Duration)
	err := s.next.Invoke(ctx, s.nextMethod, req, resp)
	return resp, err
}

// Blob returns a payload of the requested size.
func (s *testService) Blob(ctx context.Context, req *wrapperspb.UInt32Value) (*wrapperspb.BytesValue, error) {
	s.calls.Add(1)
	return wrapperspb.Bytes(make([]byte, req.Value)), nil
}

// Spin keeps a CPU busy for the requested time: a handler whose cost is
// CPU, to overload a server with.
func (s *testService) Spin(ctx context.Context, req *durationpb.Duration) (*durationpb.Duration, error) {
	s.calls.Add(1)
	for end := time.Now().Add(req.AsDuration()); time.Now().Before(end); {
	}
	return req, nil
}

// Identity returns the identity the caller's connection proved.
func (s *testService) Identity(ctx context.Context, req *emptypb.Empty) (*wrapperspb.StringValue, error) {
	return wrapperspb.String(svrkit.CallerIdentity(ctx)), nil
}

func method[Req, Resp proto.Message](cmd uint32, name string, fn func(*testService, context.Context, Req) (Resp, error)) svrkit.MethodDesc {
	return svrkit.MethodDesc{
		CmdID:       cmd,
		FullName:    "/svrkit.test.Test/" + name,
		NewRequest:  func() proto.Message { var r Req; return r.ProtoReflect().New().Interface() },
		NewResponse: func() proto.Message { var r Resp; return r.ProtoReflect().New().Interface() },
		Handler: func(impl any, ctx context.Context, req proto.Message) (proto.Message, error) {
			return fn(impl.(*testService), ctx, req.(Req))
		},
	}
}

var testDesc = svrkit.ServiceDesc{
	Name: "svrkit.test.Test",
	Methods: []svrkit.MethodDesc{
		method(cmdEcho, "Echo", (*testService).Echo),
		method(cmdSleep, "Sleep", (*testService).Sleep),
		method(cmdPanic, "Panic", (*testService).Panic),
		method(cmdFail, "Fail", (*testService).Fail),
		method(cmdMeta, "Meta", (*testService).Meta),
		method(cmdDeadline, "Deadline", (*testService).Deadline),
		method(cmdRelay, "Relay", (*testService).Relay),
		withTimeout(method(cmdSlowSvc, "SlowWithTimeout", (*testService).Sleep), 50*time.Millisecond),
		method(cmdBlob, "Blob", (*testService).Blob),
		method(cmdIdentity, "Identity", (*testService).Identity),
		method(cmdSpin, "Spin", (*testService).Spin),
	},
}

func withTimeout(m svrkit.MethodDesc, d time.Duration) svrkit.MethodDesc { m.Timeout = d; return m }

func methodByCmd(cmd uint32) *svrkit.MethodDesc {
	for i := range testDesc.Methods {
		if testDesc.Methods[i].CmdID == cmd {
			return &testDesc.Methods[i]
		}
	}
	panic("no such cmd")
}

// startServer starts a server with the test service on loopback and stops
// it when the test ends.
func startServer(t testing.TB, svc *testService, opts ...svrkit.ServerOption) *svrkit.Server {
	t.Helper()
	opts = append([]svrkit.ServerOption{svrkit.WithLogger(testLogger(t))}, opts...)
	s := svrkit.NewServer(opts...)
	s.RegisterService(&testDesc, svc)
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

func newClient(t testing.TB, target string, opts ...svrkit.ClientOption) *svrkit.Client {
	t.Helper()
	c, err := svrkit.NewClient(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// testLogger sends the server's log lines to the test's log, so they show
// with -v or when the test fails, and nowhere else.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
