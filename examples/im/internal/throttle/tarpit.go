package throttle

import (
	"context"
	"sync"
	"time"
)

// Tarpit holds refusals before they are answered. A client that hammers a
// refused door in a loop over many connections would otherwise get its
// answers as fast as the server can write them, and keep as many handler
// goroutines running as it has connections: the CPU its refusals burn is
// taken from the legitimate work of the same process (the hashes of real
// logins). Held, each of its connections sends a request per hold, and
// waits on a timer meanwhile, not on a core.
//
// Holds are bounded per key, so a client cannot hold more than that many of
// the method's concurrency slots; refusals over the bound are answered at
// once. It is safe for concurrent use.
type Tarpit struct {
	hold  time.Duration
	limit int
	mu    sync.Mutex
	held  map[string]int
}

// NewTarpit returns a Tarpit that holds a refusal for hold, at most limit
// of one key's at once.
func NewTarpit(hold time.Duration, limit int) *Tarpit {
	return &Tarpit{hold: hold, limit: limit, held: map[string]int{}}
}

// Hold waits for the tarpit's hold (or d, if shorter and positive), unless
// key already has limit refusals held, or ctx ends.
func (t *Tarpit) Hold(ctx context.Context, key string, d time.Duration) {
	if d <= 0 || d > t.hold {
		d = t.hold
	}
	t.mu.Lock()
	if t.held[key] >= t.limit {
		t.mu.Unlock()
		return
	}
	t.held[key]++
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		if t.held[key]--; t.held[key] == 0 {
			delete(t.held, key)
		}
		t.mu.Unlock()
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// Held returns how many of key's refusals are being held.
func (t *Tarpit) Held(key string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.held[key]
}
