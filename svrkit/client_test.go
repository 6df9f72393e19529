package svrkit_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/wire"
)

func TestMain(m *testing.M) {
	if os.Getenv(stallServerEnv) != "" {
		serveForStallTest()
	}
	goleak.VerifyTestMain(m,
		// gnet's process-wide goroutine pool lives as long as the process.
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
	)
}

func TestDialNothingListening(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := newClient(t, addr)
	start := time.Now()
	err = c.Invoke(ctxTimeout(t, 5*time.Second), methodByCmd(cmdEcho), wrapperspb.Bytes(nil), new(wrapperspb.BytesValue))
	if svrkit.CodeOf(err) != svrkit.Unavailable {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}
	// The endpoint is now marked down: the next call fails fast without dialing.
	start = time.Now()
	err = c.Invoke(ctxTimeout(t, 5*time.Second), methodByCmd(cmdEcho), wrapperspb.Bytes(nil), new(wrapperspb.BytesValue))
	if svrkit.CodeOf(err) != svrkit.Unavailable || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("second call: %v after %v", err, time.Since(start))
	}
}

// keyed is the echo method with a routing key taken from the request, as
// the generator emits for a service with a routing key field.
func keyedEcho() *svrkit.MethodDesc {
	m := *methodByCmd(cmdEcho)
	m.RoutingKey = func(req proto.Message) string { return string(req.(*wrapperspb.BytesValue).Value) }
	return &m
}

func TestRoutingByKeyAndRoundRobin(t *testing.T) {
	var svcs [3]*testService
	var addrs []string
	for i := range svcs {
		svcs[i] = &testService{}
		addrs = append(addrs, startServer(t, svcs[i]).Addr().String())
	}
	c := newClient(t, addrs[0]+","+addrs[1]+","+addrs[2])
	ctx := ctxTimeout(t, 10*time.Second)
	counts := func() [3]int64 {
		var n [3]int64
		for i, s := range svcs {
			n[i] = s.calls.Load()
		}
		return n
	}

	// Round robin spreads unkeyed calls evenly.
	for range 300 {
		if err := c.Invoke(ctx, methodByCmd(cmdEcho), wrapperspb.Bytes(nil), new(wrapperspb.BytesValue)); err != nil {
			t.Fatal(err)
		}
	}
	if n := counts(); n[0] != 100 || n[1] != 100 || n[2] != 100 {
		t.Fatalf("round robin: %v", n)
	}

	// The same key always reaches the same endpoint; many keys spread out.
	m := keyedEcho()
	owner := map[string]int{}
	for k := range 300 {
		key := fmt.Sprintf("user-%d", k%60)
		before := counts()
		if err := c.Invoke(ctx, m, wrapperspb.Bytes([]byte(key)), new(wrapperspb.BytesValue)); err != nil {
			t.Fatal(err)
		}
		after := counts()
		for i := range after {
			if after[i] != before[i] {
				if o, seen := owner[key]; seen && o != i {
					t.Fatalf("key %s moved from %d to %d", key, o, i)
				}
				owner[key] = i
			}
		}
	}
	// Route names the endpoint each key's calls reach.
	for key, o := range owner {
		if got := c.Route(key); got != addrs[o] {
			t.Fatalf("Route(%s) = %s, but its calls reached %s", key, got, addrs[o])
		}
	}
	per := [3]int{}
	for _, o := range owner {
		per[o]++
	}
	for i, n := range per {
		if n < 8 {
			t.Fatalf("endpoint %d owns only %d of 60 keys: %v", i, n, per)
		}
	}
	// WithRoutingKey overrides the method's key.
	before := counts()
	for range 10 {
		c.Invoke(ctx, m, wrapperspb.Bytes([]byte("a")), new(wrapperspb.BytesValue), svrkit.WithRoutingKey("fixed"))
	}
	after := counts()
	moved := 0
	for i := range after {
		if after[i] != before[i] {
			moved++
		}
	}
	if moved != 1 {
		t.Fatalf("WithRoutingKey spread over %d endpoints", moved)
	}
}

// A dead endpoint among live ones costs callers nothing: calls that could
// not be sent are retried elsewhere, and the endpoint is skipped after.
func TestDeadEndpointSkipped(t *testing.T) {
	live := startServer(t, &testService{})
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	c := newClient(t, dead+","+live.Addr().String())
	for i := range 50 {
		if err := c.Invoke(ctxTimeout(t, 5*time.Second), methodByCmd(cmdEcho), wrapperspb.Bytes(nil), new(wrapperspb.BytesValue)); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

// A connection that never stops receiving frames is alive, even when no
// read of it ever ends at a frame boundary: the health check must not close
// it as silent.
func TestBusyConnNotMistakenForSilent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// No call: the health check dials the endpoint's first connection.
	newClient(t, l.Addr().String(), svrkit.WithHealthInterval(50*time.Millisecond))
	l.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	nc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	hello, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindHello}, nil, "", make([]byte, wire.NonceSize), 0)
	if _, err := nc.Write(hello); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, nc) // the client's pings
	// A stream of pongs written so that every write ends half way through
	// a frame, for over 6 times the staleness limit (3 health intervals).
	pong, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindPong}, nil, "", make([]byte, 60), 0)
	half := len(pong) / 2
	if _, err := nc.Write(pong[:half]); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		chunk := append(append(append([]byte(nil), pong[half:]...), pong...), pong[:half]...)
		if _, err := nc.Write(chunk); err != nil {
			t.Fatalf("the client closed a connection that was receiving frames: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
}

// When the server goes away and comes back on the same address, the
// client reconnects on its own.
func TestReconnect(t *testing.T) {
	s1 := svrkit.NewServer(svrkit.WithLogger(testLogger(t)))
	s1.RegisterService(&testDesc, &testService{})
	if err := s1.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	addr := s1.Addr().String()
	c := newClient(t, addr, svrkit.WithHealthInterval(50*time.Millisecond))
	call := func() error {
		return c.Invoke(ctxTimeout(t, 2*time.Second), methodByCmd(cmdEcho), wrapperspb.Bytes(nil), new(wrapperspb.BytesValue))
	}
	if err := call(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	s1.Shutdown(ctx)
	cancel()
	s2 := svrkit.NewServer(svrkit.WithLogger(testLogger(t)))
	s2.RegisterService(&testDesc, &testService{})
	if err := s2.Start(addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Shutdown(context.Background()) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := call()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reconnect: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Rewriting the routing file moves traffic to the new endpoints without
// failing calls in flight.
func TestRouteReloadUnderLoad(t *testing.T) {
	a, b := &testService{}, &testService{}
	sa, sb := startServer(t, a), startServer(t, b)
	path := filepath.Join(t.TempDir(), "routes.json")
	write := func(addrs ...string) {
		t.Helper()
		body := `{"services": {"svrkit.test.Test": [`
		for i, ad := range addrs {
			if i > 0 {
				body += ","
			}
			body += `"` + ad + `"`
		}
		body += "]}}"
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(sa.Addr().String())
	rt, err := svrkit.LoadRouteTable(path, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	c := newClient(t, "svrkit.test.Test", svrkit.WithResolver(rt))

	var failures atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := c.Invoke(ctxTimeout(t, 5*time.Second), methodByCmd(cmdEcho), wrapperspb.Bytes(nil), new(wrapperspb.BytesValue)); err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	waitFor(t, func() bool { return a.calls.Load() > 200 })
	write(sb.Addr().String())
	waitFor(t, func() bool { return b.calls.Load() > 200 })
	aAfter := a.calls.Load()
	time.Sleep(100 * time.Millisecond)
	// A broken file is ignored; the last good table stays.
	os.WriteFile(path, []byte("{not json"), 0o644)
	waitFor(t, func() bool { return rt.LastError() != nil })
	before := b.calls.Load()
	waitFor(t, func() bool { return b.calls.Load() > before+200 })
	close(stop)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d calls failed during reload, first: %v", n, firstErr.Load())
	}
	if a.calls.Load() > aAfter+50 {
		t.Fatalf("old endpoint still served %d calls after the switch", a.calls.Load()-aAfter)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
