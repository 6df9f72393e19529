package svrkit_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svrkit/svrkit/svrkit"
)

// A server whose CPU cannot keep up sheds its low-priority requests with
// Overloaded and keeps serving its high-priority ones; clients learn the
// level from responses and refuse low-priority calls themselves, unsent.
func TestOverloadShedsLowPriorityFirst(t *testing.T) {
	s := startServer(t, &testService{}, svrkit.WithOverloadControl(5*time.Millisecond))
	c := newClient(t, s.Addr().String(), svrkit.WithRetries(0))
	spin := methodByCmd(cmdSpin)

	type tally struct{ ok, overloaded, local, other atomic.Int64 }
	var low, high tally
	stop := make(chan struct{})
	var wg sync.WaitGroup
	call := func(p uint8, tl *tally) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := c.Invoke(ctx, spin, durationpb.New(500*time.Microsecond), new(durationpb.Duration), svrkit.WithPriority(p))
			cancel()
			switch svrkit.CodeOf(err) {
			case svrkit.OK:
				tl.ok.Add(1)
			case svrkit.Overloaded:
				tl.overloaded.Add(1)
				if strings.Contains(err.Error(), "refused locally") {
					tl.local.Add(1)
				}
			default:
				tl.other.Add(1)
				t.Errorf("priority %d: %v", p, err)
			}
		}
	}
	// Far more CPU demand than the machine has: 48 callers of 0.5 ms of
	// CPU each, most of them low priority.
	for i := range 48 {
		wg.Add(1)
		if i%8 == 0 {
			go call(250, &high)
		} else {
			go call(10, &low)
		}
	}
	waitFor(t, func() bool {
		st := s.AdmissionStats()
		return st.Shed[10] > 0 && low.local.Load() > 0
	})
	close(stop)
	waitGroupWithin(t, &wg, 30*time.Second)

	st := s.AdmissionStats()
	t.Logf("low: %d ok, %d overloaded (%d locally); high: %d ok, %d overloaded; server shed %d low, level %d.%d, wait %v",
		low.ok.Load(), low.overloaded.Load(), low.local.Load(), high.ok.Load(), high.overloaded.Load(), st.Shed[10], st.LevelBusiness, st.LevelUser, st.QueueWait)
	if high.overloaded.Load() != 0 {
		t.Errorf("%d high-priority calls were refused while low-priority ones were being shed", high.overloaded.Load())
	}
	if st.Shed[250] != 0 {
		t.Errorf("server shed %d high-priority requests", st.Shed[250])
	}
	if high.ok.Load() == 0 {
		t.Error("no high-priority call succeeded")
	}
}

// An entry's business priority reaches the calls made with its context,
// and the calls a handler makes inherit its request's: a chain is shed
// at the priority of the request that started it.
func TestEntryPriorityIsInherited(t *testing.T) {
	b := startServer(t, &testService{})
	a := startServer(t, &testService{next: newClient(t, b.Addr().String()), nextMethod: methodByCmd(cmdDeadline)})
	c := newClient(t, a.Addr().String())
	ctx := svrkit.WithEntryPriority(ctxTimeout(t, 5*time.Second), 200, "")
	ctx = svrkit.WithEntryPriority(ctx, 0, "alice") // keeps the business priority
	if err := c.Invoke(ctx, methodByCmd(cmdRelay), &emptypb.Empty{}, new(durationpb.Duration)); err != nil {
		t.Fatal(err)
	}
	// Counted when each server's window rolls, within a second.
	waitFor(t, func() bool { return a.AdmissionStats().Admitted[200] == 1 && b.AdmissionStats().Admitted[200] == 1 })
}

// A level learnt at the bottom of a chain climbs it: when the basic
// service sheds a priority, the entry service refuses that priority for
// the method that calls it — unrun, and then its clients refuse it
// themselves, unsent — while its other methods still serve it. Once the
// basic service recovers, the method serves that priority again.
func TestDownstreamLevelClimbsTheChain(t *testing.T) {
	basic := startServer(t, &testService{}, svrkit.WithOverloadControl(5*time.Millisecond))
	load := newClient(t, basic.Addr().String(), svrkit.WithRetries(0))
	entry := startServer(t, &testService{next: newClient(t, basic.Addr().String(), svrkit.WithRetries(0)), nextMethod: methodByCmd(cmdSpin)})
	c := newClient(t, entry.Addr().String(), svrkit.WithRetries(0))
	relay, echo := methodByCmd(cmdRelay), methodByCmd(cmdEcho)

	// Far more CPU demand than the machine has, at business priority 10.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_ = load.Invoke(ctx, methodByCmd(cmdSpin), durationpb.New(500*time.Microsecond), new(durationpb.Duration), svrkit.WithPriority(10))
				cancel()
			}
		}()
	}
	stopLoad := sync.OnceFunc(func() { close(stop); waitGroupWithin(t, &wg, 30*time.Second) })
	defer stopLoad()

	// Relay at business priority 5, below all of the load: once the basic
	// service sheds it, the entry learns it and so does its client.
	var seen []string
	waitFor(t, func() bool {
		err := c.Invoke(ctxTimeout(t, 10*time.Second), relay, &emptypb.Empty{}, new(durationpb.Duration), svrkit.WithPriority(5))
		if svrkit.CodeOf(err) == svrkit.Overloaded && (len(seen) == 0 || seen[len(seen)-1] != err.Error()) {
			seen = append(seen, err.Error())
		}
		return svrkit.CodeOf(err) == svrkit.Overloaded && strings.Contains(err.Error(), "a service this method calls") &&
			strings.Contains(err.Error(), "refused locally")
	})
	t.Logf("refusals seen by the entry's client, in order: %q", seen)
	if st := entry.AdmissionStats(); st.LevelBusiness != 0 || st.LevelUser != 0 {
		t.Errorf("the entry's own level is %d.%d; only its dependency was overloaded", st.LevelBusiness, st.LevelUser)
	}
	// The entry's other method still serves the same priority.
	if err := c.Invoke(ctxTimeout(t, 10*time.Second), echo, wrapperspb.Bytes([]byte("x")), new(wrapperspb.BytesValue), svrkit.WithPriority(5)); err != nil {
		t.Fatalf("echo at priority 5 while relay's dependency sheds it: %v", err)
	}

	stopLoad()
	waitFor(t, func() bool {
		err := c.Invoke(ctxTimeout(t, 10*time.Second), relay, &emptypb.Empty{}, new(durationpb.Duration), svrkit.WithPriority(5))
		return err == nil
	})
}

// A method relaxes with its dependency: the first answer that reports the
// dependency's lower level lowers the method's, so the priorities it
// refused are served again at once, not a second or two later. (A level
// held for its last second would keep refusing them after every tier below
// had relaxed, and tier by tier the delays add up along a chain.)
func TestDownstreamLevelRelaxesWithItsDependency(t *testing.T) {
	basic := startServer(t, &testService{}, svrkit.WithOverloadControl(time.Second))
	entry := startServer(t, &testService{next: newClient(t, basic.Addr().String(), svrkit.WithRetries(0)), nextMethod: methodByCmd(cmdEcho)})
	c := newClient(t, entry.Addr().String(), svrkit.WithRetries(0))
	relay := methodByCmd(cmdRelay)
	call := func(prio uint8) error {
		return c.Invoke(ctxTimeout(t, 10*time.Second), relay, &emptypb.Empty{}, new(durationpb.Duration), svrkit.WithPriority(prio))
	}

	// In order: each new level is learnt from a call above it (200), and
	// the calls after that one must already see it.
	for _, step := range []struct {
		level, prio uint8
		served      bool
	}{
		{100, 200, true}, {100, 50, false},
		{20, 200, true}, {20, 50, true}, {20, 10, false},
		{0, 200, true}, {0, 10, true},
	} {
		svrkit.SetAdmissionLevel(basic, step.level, 0)
		err := call(step.prio)
		if step.served && err != nil {
			t.Fatalf("relay at %d while its dependency refuses below %d: %v", step.prio, step.level, err)
		}
		if !step.served && svrkit.CodeOf(err) != svrkit.Overloaded {
			t.Fatalf("relay at %d while its dependency refuses below %d: %v, want overloaded", step.prio, step.level, err)
		}
	}
}
