package logicsvr_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

// recorder notes, in order, which interceptors saw a call.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *recorder) interceptor(name string) svrkit.UnaryServerInterceptor {
	return func(ctx context.Context, req proto.Message, m *svrkit.MethodDesc, next svrkit.UnaryHandler) (proto.Message, error) {
		r.mu.Lock()
		r.seen = append(r.seen, name)
		r.mu.Unlock()
		if logicsvr.RequestID(ctx) == "" {
			return nil, svrkit.NewError(svrkit.Internal, name+" ran outside the host's request id")
		}
		if string(req.(*wrapperspb.BytesValue).GetValue()) == "refuse" {
			return nil, svrkit.NewError(svrkit.PermissionDenied, "refused by "+name)
		}
		return next(ctx, req)
	}
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.seen
	r.seen = nil
	return s
}

func TestInterceptorsWrapBothTransports(t *testing.T) {
	var rec recorder
	var clientCalls []string
	h, err := logicsvr.New(logicsvr.Config{Name: "bench", HTTP: "127.0.0.1:0", RPC: "127.0.0.1:0", Admin: "127.0.0.1:0",
		Routes: map[string][]string{benchDesc.Name: {}}},
		logicsvr.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		logicsvr.WithInterceptors(rec.interceptor("option")),
		logicsvr.WithClientOptions(svrkit.WithClientInterceptors(
			func(ctx context.Context, m *svrkit.MethodDesc, req, resp proto.Message, next svrkit.UnaryInvoker) error {
				clientCalls = append(clientCalls, m.FullName+" "+svrkit.OutgoingMetadata(ctx)[logicsvr.RequestIDKey])
				return next(ctx, m, req, resp)
			})))
	if err != nil {
		t.Fatal(err)
	}
	h.Use(rec.interceptor("use 1"), rec.interceptor("use 2"))
	h.RegisterService(&benchDesc, struct{}{})
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Use after Start did not panic")
			}
		}()
		h.Use(rec.interceptor("late"))
	}()

	c, err := svrkit.NewClient(h.RPCAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	m := &benchDesc.Methods[0]
	rpc := func(body string) error {
		return c.Invoke(context.Background(), m, wrapperspb.Bytes([]byte(body)), new(wrapperspb.BytesValue))
	}
	httpCall := func(body string) (int, string) {
		b, _ := proto.Marshal(wrapperspb.Bytes([]byte(body)))
		res, err := http.Post("http://"+h.HTTPAddr().String()+m.FullName, "application/proto", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(out)
	}
	want := []string{"option", "use 1", "use 2"}

	if err := rpc("ok"); err != nil {
		t.Fatalf("RPC call: %v", err)
	}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Errorf("RPC call passed %v, want %v", got, want)
	}
	if status, body := httpCall("ok"); status != 200 {
		t.Fatalf("HTTP call: %d %s", status, body)
	}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Errorf("HTTP call passed %v, want %v", got, want)
	}

	// A refusal keeps its code and message on both transports, and stops
	// the chain.
	if err := rpc("refuse"); svrkit.CodeOf(err) != svrkit.PermissionDenied || svrkit.AsError(err).Message() != "refused by option" {
		t.Errorf("refused RPC call: %v", err)
	}
	if status, body := httpCall("refuse"); status != 403 || !strings.Contains(body, `"refused by option"`) {
		t.Errorf("refused HTTP call: %d %s", status, body)
	}
	if got := rec.take(); !slices.Equal(got, []string{"option", "option"}) {
		t.Errorf("refused calls passed %v, want the first interceptor only", got)
	}

	// The framework's describe method is not the service's: it passes none.
	if _, err := svrkit.Describe(context.Background(), c); err != nil {
		t.Fatalf("describe: %v", err)
	}
	if got := rec.take(); len(got) != 0 {
		t.Errorf("describe passed %v", got)
	}

	// Host.Client's clients have the options' interceptors, inside
	// PropagateRequestID. (The route is empty: the call itself fails.)
	inv, err := h.Client(benchDesc.Name)
	if err != nil {
		t.Fatal(err)
	}
	ctx := svrkit.WithOutgoingMetadata(context.Background(), svrkit.Metadata{logicsvr.RequestIDKey: "req-1"})
	_ = inv.Invoke(ctx, m, wrapperspb.Bytes(nil), new(wrapperspb.BytesValue))
	if want := []string{m.FullName + " req-1"}; !slices.Equal(clientCalls, want) {
		t.Errorf("client interceptor saw %q, want %q", clientCalls, want)
	}
}
