package queue_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/svrkit/svrkit/svrkit/queue"
)

// TestPublishSurvivesRestart: what Publish acknowledged is there after the
// server stops and starts again on the same directory.
func TestPublishSurvivesRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "queue")
	s := startServer(t, dir, "127.0.0.1:0")
	c := open(t, s, queue.Config{Partitions: 4})
	const n = 50
	var want []string
	for i := range n {
		r := publish(t, c, fmt.Sprintf("key-%d", i%5), fmt.Sprint(i))
		want = append(want, r.ID)
	}
	c.Close()
	s.Shutdown()

	s2 := startServer(t, dir, "127.0.0.1:0")
	c2 := open(t, s2, queue.Config{Partitions: 4})
	var rec recorder
	consume(t, c2, func(ctx context.Context, m *queue.Message) error { rec.add(m); return nil })
	waitFor(t, 10*time.Second, "all items after restart", func() bool { return rec.len() >= n })
	seen := map[string]bool{}
	for _, g := range rec.all() {
		seen[g.id] = true
	}
	for _, id := range want {
		if !seen[id] {
			t.Errorf("acknowledged item %s lost across the restart", id)
		}
	}
}

// TestPublishWithIDIsStoredOnce: a retried publish with the same id is
// dropped by the server and delivered once.
func TestPublishWithIDIsStoredOnce(t *testing.T) {
	s := newServer(t)
	c := open(t, s, queue.Config{Partitions: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r1, err := c.PublishWithID(ctx, "msg-1", "alice", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := c.PublishWithID(ctx, "msg-1", "alice", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if r1.Duplicate || !r2.Duplicate || r1.Seq != r2.Seq {
		t.Fatalf("receipts %+v then %+v; want the second a duplicate of the first", r1, r2)
	}
	publish(t, c, "alice", "after")
	var rec recorder
	consume(t, c, func(ctx context.Context, m *queue.Message) error { rec.add(m); return nil })
	waitFor(t, 10*time.Second, "two items", func() bool { return rec.len() >= 2 })
	lagZero(t, c)
	if got := rec.all(); len(got) != 2 || got[0].id != "msg-1" || got[0].payload != "hello" || got[1].payload != "after" {
		t.Fatalf("delivered %+v; want msg-1 once, then the next item", got)
	}
}

// lagZero waits until every item has been acknowledged.
func lagZero(t *testing.T, c *queue.Client) {
	t.Helper()
	waitFor(t, 10*time.Second, "empty backlog", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		lag, err := c.Lag(ctx)
		return err == nil && lag.Backlog == 0 && lag.InFlight == 0
	})
}

func TestPublishBadInput(t *testing.T) {
	s := newServer(t)
	c := open(t, s, queue.Config{Partitions: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name        string
		id, key     string
		payloadSize int
		want        error
	}{
		{"oversized payload", "", "k", 1 << 20, queue.ErrTooLarge},
		{"empty key", "", "", 1, queue.ErrInvalidKey},
		{"key with a line break", "", "a\r\nNats-Msg-Id: forged", 1, queue.ErrInvalidKey},
		{"key too long", "", strings.Repeat("k", queue.MaxKeyLen+1), 1, queue.ErrInvalidKey},
		{"empty id", "-", "k", 1, queue.ErrInvalidID},
		{"id with a control character", "a\x00b", "k", 1, queue.ErrInvalidID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			switch tc.id {
			case "":
				_, err = c.Publish(ctx, tc.key, make([]byte, tc.payloadSize))
			case "-":
				_, err = c.PublishWithID(ctx, "", tc.key, make([]byte, tc.payloadSize))
			default:
				_, err = c.PublishWithID(ctx, tc.id, tc.key, make([]byte, tc.payloadSize))
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	lag, err := c.Lag(ctx)
	if err != nil || lag.Backlog != 0 {
		t.Fatalf("after bad input: lag %+v, %v; want nothing stored", lag, err)
	}
	t.Run("closed client", func(t *testing.T) {
		c2 := open(t, s, queue.Config{Partitions: 2})
		c2.Close()
		if _, err := c2.Publish(ctx, "k", nil); !errors.Is(err, queue.ErrClosed) {
			t.Fatalf("publish on a closed client: %v, want ErrClosed", err)
		}
		if _, err := c2.Consume(ctx, func(context.Context, *queue.Message) error { return nil }); !errors.Is(err, queue.ErrClosed) {
			t.Fatalf("consume on a closed client: %v, want ErrClosed", err)
		}
	})
}

// TestPublishServerDown: with the server gone, Publish returns within its
// deadline with ErrUnavailable, not later and not never.
func TestPublishServerDown(t *testing.T) {
	s := newServer(t)
	c := open(t, s, queue.Config{Partitions: 2})
	publish(t, c, "k", "before")
	s.Shutdown()
	for _, d := range []time.Duration{300 * time.Millisecond, 3 * time.Second} {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		start := time.Now()
		_, err := c.Publish(ctx, "k", []byte("while down"))
		took := time.Since(start)
		cancel()
		if !errors.Is(err, queue.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("deadline %v: got %v; want ErrUnavailable and DeadlineExceeded", d, err)
		}
		if took > d+time.Second {
			t.Errorf("deadline %v: returned after %v", d, took)
		}
	}
}

func TestOpenBadConfig(t *testing.T) {
	s := newServer(t)
	open(t, s, queue.Config{Partitions: 4}) // creates the stream
	down := "nats://" + freeAddr(t)
	for _, tc := range []struct {
		name string
		cfg  queue.Config
		want error
		// within bounds how long Open may take: failing fast matters
		// for bad credentials, waiting for the deadline for a server
		// that is not there yet.
		within time.Duration
	}{
		{"no credentials", queue.Config{URLs: []string{s.URL()}}, queue.ErrConfig, time.Second},
		{"wrong token", queue.Config{URLs: []string{s.URL()}, Token: "wrong"}, queue.ErrConfig, 3 * time.Second},
		{"anonymous user", queue.Config{URLs: []string{s.URL()}, User: "nobody", Password: "x"}, queue.ErrConfig, 3 * time.Second},
		{"other partition count", queue.Config{URLs: []string{s.URL()}, Token: testToken, Partitions: 8}, queue.ErrConfig, 3 * time.Second},
		{"bad stream name", queue.Config{URLs: []string{s.URL()}, Token: testToken, Stream: "a.b"}, queue.ErrConfig, time.Second},
		{"too many replicas", queue.Config{URLs: []string{s.URL()}, Token: testToken, Replicas: 7}, queue.ErrConfig, time.Second},
		{"server not there", queue.Config{URLs: []string{down}, Token: testToken}, queue.ErrUnavailable, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			start := time.Now()
			c, err := queue.Open(ctx, tc.cfg)
			if err == nil {
				c.Close()
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if took := time.Since(start); took > tc.within {
				t.Errorf("took %v", took)
			}
		})
	}
	t.Run("bad option", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := queue.Open(ctx, queue.Config{URLs: []string{s.URL()}, Token: testToken, Partitions: 4}, queue.WithMaxDeliver(0))
		if !errors.Is(err, queue.ErrConfig) {
			t.Fatalf("got %v, want ErrConfig", err)
		}
	})
}
