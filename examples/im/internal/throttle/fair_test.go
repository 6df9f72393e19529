package throttle

import (
	"context"
	"errors"
	"testing"
	"time"
)

// waitHeld waits until key has n attempts holding or waiting.
func waitHeld(t *testing.T, f *Fair, key string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for f.Held(key) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d, want %d", key, f.Held(key), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Waiters are served one per key in turn: a newcomer waits behind one
// attempt of each busy key, not behind a key's whole backlog.
func TestFairRoundRobin(t *testing.T) {
	f := NewFair(1)
	ctx := context.Background()
	first, err := f.Acquire(ctx, "attacker", 10)
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 10)
	start := func(key string) {
		go func() {
			release, err := f.Acquire(ctx, key, 10)
			if err != nil {
				order <- "error " + err.Error()
				return
			}
			order <- key
			release()
		}()
	}
	for range 5 {
		start("attacker")
	}
	waitHeld(t, f, "attacker", 6)
	start("bob")
	waitHeld(t, f, "bob", 1)
	first()
	if got := <-order; got != "attacker" {
		t.Fatalf("first served %q, want the attacker's oldest waiter", got)
	}
	if got := <-order; got != "bob" {
		t.Fatalf("second served %q, want bob, whose turn came before the attacker's backlog", got)
	}
	for range 4 {
		if got := <-order; got != "attacker" {
			t.Fatalf("served %q", got)
		}
	}
	waitHeld(t, f, "attacker", 0)
}

func TestFairLimitAndCancel(t *testing.T) {
	f := NewFair(1)
	ctx := context.Background()
	held, _ := f.Acquire(ctx, "a", 2)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := f.Acquire(cctx, "a", 2)
		done <- err
	}()
	waitHeld(t, f, "a", 2)
	if _, err := f.Acquire(ctx, "a", 2); !errors.Is(err, ErrBusy) {
		t.Fatalf("third attempt of a: %v, want ErrBusy", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled waiter: %v", err)
	}
	waitHeld(t, f, "a", 1)
	held()
	// The slot is free again, and no waiter is left behind.
	release, err := f.Acquire(ctx, "b", 1)
	if err != nil {
		t.Fatal(err)
	}
	release()
	waitHeld(t, f, "a", 0)
	waitHeld(t, f, "b", 0)
}

// A waiter handed a slot just as its context ends passes the slot on.
func TestFairGrantRacingCancel(t *testing.T) {
	for range 200 {
		f := NewFair(1)
		held, _ := f.Acquire(context.Background(), "a", 5)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan func(), 1)
		go func() {
			r, _ := f.Acquire(ctx, "b", 5)
			done <- r
		}()
		waitHeld(t, f, "b", 1)
		go cancel()
		held()
		if r := <-done; r != nil {
			r()
		}
		r, err := f.Acquire(context.Background(), "c", 1)
		if err != nil {
			t.Fatal(err)
		}
		r()
	}
}
