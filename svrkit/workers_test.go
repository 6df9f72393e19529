package svrkit

import "testing"

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
	if n := len(p.queue) - p.head; n != 1 {
		t.Fatalf("%d calls queued, want 1", n)
	}
	if c := cap(p.queue); c > 16 {
		t.Fatalf("queue capacity %d after 100000 calls with at most 2 queued", c)
	}
}
