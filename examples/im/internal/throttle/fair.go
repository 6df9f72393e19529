package throttle

import (
	"context"
	"errors"
	"sync"
)

// ErrBusy is Fair.Acquire's answer when the key already has its limit of
// attempts running or waiting.
var ErrBusy = errors.New("throttle: too many attempts at once for this key")

// Fair shares n slots among keys: waiters are served one per key in turn
// (round robin), each key's in the order they came. It is safe for
// concurrent use.
type Fair struct {
	mu     sync.Mutex
	free   int
	queues map[string]*fairQueue
	turn   []*fairQueue // keys with waiters, in serving order
}

type fairQueue struct {
	key     string
	held    int // slots held and waiters, the number Acquire's limit bounds
	waiters []*fairWaiter
}

type fairWaiter struct {
	ready   chan struct{} // closed when the slot is handed over
	granted bool
}

// NewFair returns a Fair of n slots (at least 1).
func NewFair(n int) *Fair {
	return &Fair{free: max(n, 1), queues: map[string]*fairQueue{}}
}

// Acquire takes a slot for key, waiting for its turn, and returns the
// function that gives it back. It refuses at once with ErrBusy when key
// already has limit attempts holding or waiting for slots, and gives up
// with ctx's error when ctx ends first.
func (f *Fair) Acquire(ctx context.Context, key string, limit int) (release func(), err error) {
	f.mu.Lock()
	q := f.queues[key]
	if q == nil {
		q = &fairQueue{key: key}
		f.queues[key] = q
	}
	if q.held >= limit {
		f.mu.Unlock()
		return nil, ErrBusy
	}
	q.held++
	release = func() { f.release(q) }
	if f.free > 0 && len(f.turn) == 0 {
		f.free--
		f.mu.Unlock()
		return release, nil
	}
	w := &fairWaiter{ready: make(chan struct{})}
	if len(q.waiters) == 0 {
		f.turn = append(f.turn, q)
	}
	q.waiters = append(q.waiters, w)
	f.mu.Unlock()

	select {
	case <-w.ready:
		return release, nil
	case <-ctx.Done():
	}
	f.mu.Lock()
	if w.granted {
		// Handed a slot as ctx ended: pass it on.
		f.mu.Unlock()
		release()
		return nil, ctx.Err()
	}
	for i, x := range q.waiters {
		if x == w {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			break
		}
	}
	if len(q.waiters) == 0 {
		for i, x := range f.turn {
			if x == q {
				f.turn = append(f.turn[:i], f.turn[i+1:]...)
				break
			}
		}
	}
	q.held--
	f.forget(q)
	f.mu.Unlock()
	return nil, ctx.Err()
}

// release gives q's slot to the next key in turn, or back to the pool.
func (f *Fair) release(q *fairQueue) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q.held--
	f.forget(q)
	if len(f.turn) == 0 {
		f.free++
		return
	}
	next := f.turn[0]
	f.turn = f.turn[1:]
	w := next.waiters[0]
	next.waiters = next.waiters[1:]
	if len(next.waiters) > 0 {
		f.turn = append(f.turn, next) // to the back of the line
	}
	w.granted = true
	close(w.ready)
}

// forget drops an idle key's queue.
func (f *Fair) forget(q *fairQueue) {
	if q.held == 0 && f.queues[q.key] == q {
		delete(f.queues, q.key)
	}
}

// Held returns the attempts key has holding or waiting for slots.
func (f *Fair) Held(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if q := f.queues[key]; q != nil {
		return q.held
	}
	return 0
}
