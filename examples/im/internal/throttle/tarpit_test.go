package throttle

import (
	"context"
	"testing"
	"time"
)

// A refusal is held, at most limit of one key's at once; the rest, and
// those of a canceled call, are answered at once.
func TestTarpit(t *testing.T) {
	tp := NewTarpit(time.Hour, 2)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for range 2 {
		go func() { tp.Hold(ctx, "a", 0); done <- struct{}{} }()
	}
	deadline := time.Now().Add(10 * time.Second)
	for tp.Held("a") != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d held, want 2", tp.Held("a"))
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	tp.Hold(context.Background(), "a", 0) // over the limit: at once
	tp.Hold(context.Background(), "b", time.Millisecond)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("over the limit, held %v", d)
	}
	cancel()
	<-done
	<-done
	if tp.Held("a") != 0 {
		t.Fatalf("%d still held after cancel", tp.Held("a"))
	}
}
