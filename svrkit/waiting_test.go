package svrkit_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/svrkit/svrkit/svrkit"
)

// A handler waiting on an outgoing call is counted as waiting for the
// whole call, and no longer once it has the answer: the worker pool's CPU
// check leaves such workers out (workers.go).
func TestWorkerWaitingOnOutgoingCall(t *testing.T) {
	back := &testService{started: make(chan struct{})} // Sleep blocks until the test reads
	bs := startServer(t, back)
	front := &testService{next: newClient(t, bs.Addr().String()), nextMethod: methodByCmd(cmdSleep)}
	fs := startServer(t, front)
	c := newClient(t, fs.Addr().String())

	done := make(chan error, 1)
	go func() {
		done <- c.Invoke(ctxTimeout(t, 10*time.Second), methodByCmd(cmdRelay), &emptypb.Empty{}, new(durationpb.Duration))
	}()
	waitFor := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for svrkit.WaitingWorkers(fs) != want {
			if time.Now().After(deadline) {
				t.Fatalf("waiting workers %d, want %d", svrkit.WaitingWorkers(fs), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(1) // Relay's handler is in its call to back
	if n := svrkit.WaitingWorkers(bs); n != 0 {
		t.Fatalf("back counts %d waiting workers; its handler calls nothing", n)
	}
	<-back.started
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor(0)
}
