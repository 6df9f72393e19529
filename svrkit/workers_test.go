package svrkit

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// A queue that never quite empties under steady load must not grow with
// the number of calls that passed through it.
func TestWorkerQueueStaysBounded(t *testing.T) {
	p := &workerPool{}
	calls := make([]callCtx, 3)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pushLocked(&calls[0])
	for i := range 100000 {
		p.pushLocked(&calls[1+i%2])
		if p.takeLocked() == nil {
			t.Fatalf("take %d: empty queue", i)
		}
	}
	if p.queued != 1 {
		t.Fatalf("%d calls queued, want 1", p.queued)
	}
	if c := cap(p.lanes[0].buf); c > 16 {
		t.Fatalf("queue capacity %d after 100000 calls with at most 2 queued", c)
	}
}

// With overload control the queue hands out the highest business priority
// first and keeps each priority's calls in arrival order.
func TestWorkerQueueByPriority(t *testing.T) {
	p := &workerPool{byPriority: true}
	var calls []*callCtx
	for i, b := range []uint8{50, 200, 0, 200, 50, 255} {
		cc := &callCtx{prio: callPriority{business: b}, reqID: uint32(i)}
		calls = append(calls, cc)
		p.pushLocked(cc)
	}
	var got []uint32
	for cc := p.takeLocked(); cc != nil; cc = p.takeLocked() {
		got = append(got, cc.reqID)
	}
	want := []uint32{5, 1, 3, 2, 0, 4} // 255, 200 ×2, unset (128), 50 ×2
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("taken %v, want %v", got, want)
	}
	if p.queued != 0 || p.ready != [4]uint64{} {
		t.Fatalf("empty queue still counts %d calls, lanes %x", p.queued, p.ready)
	}
}

// A call the CPU check kept from waking a worker (it counted busy workers
// that were in fact blocked) still runs: the pool looks at the queue again
// once the reading is stale.
func TestWorkerRecheckRunsHeldCall(t *testing.T) {
	ran := make(chan uint32, 1)
	p := newWorkerPool(func(cc *callCtx) { ran <- cc.reqID }, time.Minute, new(atomic.Int64))
	p.byPriority = true
	t.Cleanup(p.stop)
	now := time.Now().UnixNano()
	p.mu.Lock()
	p.busy = p.procs // workers in calls that will never come back
	p.schedAt, p.schedBusy = now, true
	p.pushLocked(&callCtx{reqID: 6}) // a backlog
	p.mu.Unlock()
	p.submit(&callCtx{reqID: 7, queuedAt: now})
	p.mu.Lock()
	searching, armed := p.searching, p.armed
	p.mu.Unlock()
	if searching != 0 || !armed {
		t.Fatalf("after a busy reading: %d workers searching, recheck armed %v; want 0 and true", searching, armed)
	}
	for _, want := range []uint32{6, 7} {
		select {
		case id := <-ran:
			if id != want {
				t.Fatalf("ran call %d, want %d", id, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("call %d still held 5s after the CPU check", want)
		}
	}
}

// A handler with several outgoing calls out at once (its goroutines') is
// one worker waiting, not one per call, until the last comes back.
func TestWorkerWaitingCountsWorkersNotCalls(t *testing.T) {
	s := &Server{workers: newWorkerPool(func(*callCtx) {}, time.Minute, new(atomic.Int64))}
	a, b := &callCtx{conn: &serverConn{s: s}}, &callCtx{conn: &serverConn{s: s}}
	waiting := func() int64 { return s.workers.waiting.Load() }
	a.callOut()
	a.callOut()
	b.callOut()
	if n := waiting(); n != 2 {
		t.Fatalf("two handlers with three calls out: %d workers waiting, want 2", n)
	}
	a.callBack()
	if n := waiting(); n != 2 {
		t.Fatalf("a handler with one of two calls back: %d workers waiting, want 2", n)
	}
	a.callBack()
	b.callBack()
	if n := waiting(); n != 0 {
		t.Fatalf("every call back: %d workers waiting, want 0", n)
	}
}
