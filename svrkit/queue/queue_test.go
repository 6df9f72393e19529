package queue_test

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/svrkit/svrkit/svrkit/queue"
	"github.com/svrkit/svrkit/svrkit/queue/embedded"
	"github.com/svrkit/svrkit/svrkit/queue/internal/leakcheck"
)

func TestMain(m *testing.M) {
	leakcheck.Main(m)
}

const testToken = "test-token-not-a-secret"

// startServer starts an embedded queue server storing in dir, on listen
// (127.0.0.1:0 for a free port), stopped when the test ends.
func startServer(t testing.TB, dir, listen string) *embedded.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := embedded.Start(ctx, embedded.Config{Dir: dir, Listen: listen, Token: testToken})
	if err != nil {
		t.Fatalf("start queue server: %v", err)
	}
	t.Cleanup(s.Shutdown)
	if err := s.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func newServer(t testing.TB) *embedded.Server {
	t.Helper()
	return startServer(t, filepath.Join(t.TempDir(), "queue"), "127.0.0.1:0")
}

// open opens a client of s, closed when the test ends.
func open(t testing.TB, s *embedded.Server, cfg queue.Config, opts ...queue.Option) *queue.Client {
	t.Helper()
	cfg.URLs = []string{s.URL()}
	if cfg.Token == "" && cfg.User == "" {
		cfg.Token = testToken
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := queue.Open(ctx, cfg, opts...)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// consume starts a consumer, stopped when the test ends.
func consume(t testing.TB, c *queue.Client, h queue.Handler, opts ...queue.Option) *queue.Consumer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	k, err := c.Consume(ctx, h, opts...)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.Stop(ctx); err != nil {
			t.Errorf("stop consumer: %v", err)
		}
	})
	return k
}

func publish(t testing.TB, c *queue.Client, key, payload string) queue.Receipt {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.Publish(ctx, key, []byte(payload))
	if err != nil {
		t.Fatalf("publish %s: %v", key, err)
	}
	return r
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// recorder collects what handlers saw.
type recorder struct {
	mu   sync.Mutex
	msgs []got
}

type got struct {
	id, key, payload string
	deliveries       int
	at               time.Time
}

func (r *recorder) add(m *queue.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, got{m.ID(), m.Key(), string(m.Payload()), m.Deliveries(), time.Now()})
	r.mu.Unlock()
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func (r *recorder) all() []got {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]got(nil), r.msgs...)
}

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
