package throttle

import (
	"sync"
	"time"

	"github.com/svrkit/svrkit/examples/im/internal/lru"
)

// Policy is how one kind of key is throttled.
type Policy struct {
	// Free is how many failures a key may have before its attempts wait.
	Free int
	// Base is the wait after Free failures; each further failure doubles
	// it, up to Max.
	Base, Max time.Duration
	// Forget drops a key's failures this long after its last one.
	Forget time.Duration
	// ResetOnSuccess drops a key's failures when an attempt under it
	// succeeds.
	ResetOnSuccess bool
}

// delay returns the wait after n failures.
func (p *Policy) delay(n int) time.Duration {
	if n < p.Free {
		return 0
	}
	d := p.Base
	for i := p.Free; i < n && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// Key names what an attempt is throttled under, and how.
type Key struct {
	Name   string
	Policy *Policy
}

// keyState is one key's history.
type keyState struct {
	fails   int
	last    time.Time // of the last failure
	pending int       // attempts admitted and not ended
}

// Backoff throttles attempts by their failures. It is safe for concurrent
// use.
type Backoff struct {
	mu   sync.Mutex
	now  func() time.Time
	keys *lru.Cache[string, *keyState]
}

// NewBackoff returns a Backoff remembering at most size keys.
func NewBackoff(size int) *Backoff {
	return &Backoff{now: time.Now, keys: lru.New[string, *keyState](size, 0)}
}

// Attempt is an admitted attempt; end it with exactly one of Fail, Succeed
// or Abandon (later calls do nothing).
type Attempt struct {
	b      *Backoff
	keys   []Key
	states []*keyState
	ended  bool
}

// Admit admits an attempt under every one of keys, or refuses it and
// returns how long to wait before the next try. An attempt is refused when
// any key refuses it: its failures, counting the attempts in flight, are at
// least the policy's Free, and either an attempt is in flight or the delay
// since its last failure has not passed (past Free, one attempt at a time).
func (b *Backoff) Admit(keys ...Key) (*Attempt, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	states := make([]*keyState, len(keys))
	var wait time.Duration
	for i, k := range keys {
		st, ok := b.keys.Get(k.Name)
		if !ok {
			st = &keyState{}
			b.keys.Put(k.Name, st)
		}
		if st.fails > 0 && now.Sub(st.last) >= k.Policy.Forget {
			st.fails = 0
		}
		states[i] = st
		if st.fails+st.pending < k.Policy.Free {
			continue
		}
		w := k.Policy.Base
		if st.pending == 0 {
			w = st.last.Add(k.Policy.delay(st.fails)).Sub(now)
		}
		wait = max(wait, w)
	}
	if wait > 0 {
		return nil, wait
	}
	for _, st := range states {
		st.pending++
	}
	return &Attempt{b: b, keys: keys, states: states}, 0
}

// Fail ends the attempt as a failure under every key.
func (a *Attempt) Fail() {
	a.end(func(_ Key, st *keyState, now time.Time) {
		st.fails++
		st.last = now
	})
}

// Succeed ends the attempt as a success: keys whose policy says so forget
// their failures.
func (a *Attempt) Succeed() {
	a.end(func(k Key, st *keyState, _ time.Time) {
		if k.Policy.ResetOnSuccess {
			st.fails = 0
		}
	})
}

// Abandon ends an attempt whose outcome is unknown (it failed before the
// password was checked): it counts as nothing.
func (a *Attempt) Abandon() { a.end(func(Key, *keyState, time.Time) {}) }

func (a *Attempt) end(f func(Key, *keyState, time.Time)) {
	if a == nil {
		return
	}
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	if a.ended {
		return
	}
	a.ended = true
	now := a.b.now()
	for i, st := range a.states {
		st.pending--
		f(a.keys[i], st, now)
	}
}
