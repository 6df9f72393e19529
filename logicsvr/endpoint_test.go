package logicsvr

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/svrkit/svrkit/logicsvr/internal/labsvc"
)

// named answers Echo with its own name, so a test sees which host answered.
type named struct {
	labsvc.UnimplementedLabServer
	name string
}

func (n named) Echo(context.Context, *labsvc.EchoRequest) (*labsvc.EchoReply, error) {
	return &labsvc.EchoReply{Text: n.name}, nil
}

// TestEndpointClient checks that an endpoint client reaches the one
// instance it names, whatever the routing table's other endpoints, and that
// Endpoints lists the table's.
func TestEndpointClient(t *testing.T) {
	quiet := WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	var addrs []string
	for _, name := range []string{"a", "b"} {
		h, err := New(Config{Name: "lab", HTTP: Off, RPC: "127.0.0.1:0", Admin: "127.0.0.1:0"}, quiet)
		if err != nil {
			t.Fatal(err)
		}
		labsvc.RegisterLabServer(h, named{name: name})
		if err := h.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
		addrs = append(addrs, h.RPCAddr().String())
	}
	caller, err := New(Config{Name: "caller", HTTP: Off, RPC: Off, Admin: "127.0.0.1:0",
		Routes: map[string][]string{labsvc.Lab_ServiceName: addrs}}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caller.Shutdown(context.Background()) })
	got, err := caller.Endpoints(labsvc.Lab_ServiceName)
	if err != nil || !slices.Equal(got, addrs) {
		t.Fatalf("Endpoints = %v, %v; want %v", got, err, addrs)
	}
	if _, err := caller.Endpoints("nosuch.Service"); err == nil {
		t.Error("Endpoints of a service the table does not list succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, want := range []string{"a", "b"} {
		inv, err := caller.EndpointClient(labsvc.Lab_ServiceName, addrs[i])
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := caller.EndpointClient(labsvc.Lab_ServiceName, addrs[i]); again != inv {
			t.Error("a second EndpointClient of one endpoint made a new client")
		}
		for range 5 {
			r, err := labsvc.NewLabClient(inv).Echo(ctx, &labsvc.EchoRequest{})
			if err != nil || r.GetText() != want {
				t.Fatalf("endpoint %s answered %v, %v; want %s", addrs[i], r, err, want)
			}
		}
	}
}
