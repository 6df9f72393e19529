package svrkit

import (
	"context"
	"errors"
	"testing"
	"time"
	"unsafe"
)

func TestCallCtx(t *testing.T) {
	bg := context.Background()
	t.Run("deadline without Done", func(t *testing.T) {
		c := &callCtx{parent: bg, deadline: time.Now().Add(20 * time.Millisecond), hasDeadline: true}
		if c.Err() != nil {
			t.Fatal("expired early")
		}
		time.Sleep(30 * time.Millisecond)
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err = %v", c.Err())
		}
		select {
		case <-c.Done():
		default:
			t.Fatal("Done not closed after expiry")
		}
	})
	t.Run("deadline fires Done", func(t *testing.T) {
		c := &callCtx{parent: bg, deadline: time.Now().Add(20 * time.Millisecond), hasDeadline: true}
		select {
		case <-c.Done():
		case <-time.After(2 * time.Second):
			t.Fatal("Done never closed")
		}
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err = %v", c.Err())
		}
	})
	t.Run("derived context follows cancel", func(t *testing.T) {
		c := &callCtx{parent: bg}
		child, stop := context.WithCancel(c)
		defer stop()
		vchild := context.WithValue(child, "k", "v")
		c.cancel(context.Canceled)
		select {
		case <-vchild.Done():
		case <-time.After(2 * time.Second):
			t.Fatal("derived context not canceled")
		}
	})
	t.Run("parent stop propagates", func(t *testing.T) {
		parent, stop := context.WithCancel(bg)
		c := &callCtx{parent: parent}
		done := c.Done()
		stop()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatal("server stop did not cancel the call")
		}
	})
	t.Run("AfterFunc stop", func(t *testing.T) {
		c := &callCtx{parent: bg}
		ran := make(chan struct{}, 1)
		stop := c.AfterFunc(func() { ran <- struct{}{} })
		if !stop() {
			t.Fatal("stop returned false before the context ended")
		}
		c.end()
		select {
		case <-ran:
			t.Fatal("stopped func ran")
		case <-time.After(20 * time.Millisecond):
		}
	})
	t.Run("values", func(t *testing.T) {
		m := &MethodDesc{FullName: "/a.B/C"}
		c := &callCtx{parent: context.WithValue(bg, "outer", 1), md: Metadata{"k": "v"}, method: m}
		if IncomingMetadata(c)["k"] != "v" || MethodFromContext(c) != m || c.Value("outer") != 1 {
			t.Fatal("values lost")
		}
	})
}

// The call context is allocated for every call: a field that pushes it
// into the next size class (224 bytes) costs every call, so it has to be
// worth that.
func TestCallCtxSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(callCtx{}); n > 208 {
		t.Fatalf("callCtx is %d bytes, past the 208-byte size class", n)
	}
}
