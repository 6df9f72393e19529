package session

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/svrkit"
)

// accounts is a StateFunc over a map, counting fetches; a missing user is
// not_found, and err (when set) answers every fetch.
type accounts struct {
	mu      sync.Mutex
	states  map[uint64]*im.SessionState
	err     error
	fetches int
	// during, when set, runs inside a fetch: a revocation racing it.
	during func()
}

func (a *accounts) state(_ context.Context, user uint64) (*im.SessionState, error) {
	a.mu.Lock()
	a.fetches++
	st, err, during := a.states[user], a.err, a.during
	a.during = nil
	a.mu.Unlock()
	if during != nil {
		during()
	}
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, svrkit.NewError(svrkit.NotFound, "no user")
	}
	return st, nil
}

func (a *accounts) set(user uint64, st *im.SessionState) {
	a.mu.Lock()
	a.states[user] = st
	a.mu.Unlock()
}

// newChecker returns a Checker over a (every user has a fresh account when
// a is nil) with the signer's clock.
func newChecker(s *Signer, a *accounts) *Checker {
	state := StateFunc(func(context.Context, uint64) (*im.SessionState, error) { return &im.SessionState{}, nil })
	if a != nil {
		state = a.state
	}
	c := NewChecker(s, state)
	c.now = s.now
	return c
}

// clockedChecker returns a Checker over the accounts states and the
// signer of its tokens, both on a clock the test moves.
func clockedChecker(t *testing.T, states map[uint64]*im.SessionState) (*Checker, *Signer, *accounts, *time.Time) {
	t.Helper()
	clock := time.Unix(1_700_000_000, 0)
	s := newSigner(t, "secret", clock)
	s.now = func() time.Time { return clock }
	a := &accounts{states: states}
	return newChecker(s, a), s, a, &clock
}

func TestRevoked(t *testing.T) {
	st := &im.SessionState{Counter: 7, Floor: 3, Devices: []*im.DeviceFloor{{DeviceId: "phone", Floor: 6}}}
	for _, tc := range []struct {
		device  string
		counter uint64
		want    bool
	}{
		{"laptop", 2, true},  // below the account's floor
		{"laptop", 3, false}, // at it
		{"laptop", 7, false},
		{"phone", 5, true}, // below its device's floor
		{"phone", 6, false},
	} {
		if got := Revoked(st, Claims{DeviceID: tc.device, Counter: tc.counter}); got != tc.want {
			t.Errorf("Revoked(%s, counter %d) = %v, want %v", tc.device, tc.counter, got, tc.want)
		}
	}
}

// The Checker refuses revoked tokens, reads an account's state at most
// once per RevocationTTL, and sees a revocation once that has passed.
func TestCheckerRevocation(t *testing.T) {
	c, s, a, clock := clockedChecker(t, map[uint64]*im.SessionState{9: {Counter: 4}})
	now := *clock

	phone, _, _ := s.Issue(9, "phone", 4, time.Hour)
	laptop, _, _ := s.Issue(9, "laptop", 4, time.Hour)
	ghost, _, _ := s.Issue(10, "phone", 0, time.Hour)
	check := func(what, tok string, want error) {
		t.Helper()
		if _, err := c.Token(context.Background(), tok); err != want {
			t.Fatalf("%s: Caller = %v, want %v", what, err, want)
		}
	}
	check("phone", phone, nil)
	check("laptop", laptop, nil)
	if a.fetches != 1 {
		t.Fatalf("%d fetches for two checks of one account within RevocationTTL, want 1", a.fetches)
	}
	check("a token of an account that does not exist", ghost, ErrInvalid)

	// The phone logs out: counter 5, the phone's floor 5.
	a.set(9, &im.SessionState{Counter: 5, Devices: []*im.DeviceFloor{{DeviceId: "phone", Floor: 5}}})
	*clock = now.Add(RevocationTTL - time.Millisecond)
	check("phone, within the staleness bound", phone, nil)
	*clock = now.Add(RevocationTTL)
	check("phone, after the staleness bound", phone, ErrRevoked)
	check("laptop, after the phone's logout", laptop, nil)
	newPhone, _, _ := s.Issue(9, "phone", 5, time.Hour)
	check("phone, logged in again", newPhone, nil)

	// A password change: floor 6 for every device.
	a.set(9, &im.SessionState{Counter: 6, Floor: 6})
	c.Forget(9)
	check("laptop, after a password change (forgotten)", laptop, ErrRevoked)
	check("new phone token, after a password change", newPhone, ErrRevoked)

	// No state to be had: refuse, do not guess.
	a.mu.Lock()
	a.err = svrkit.NewError(svrkit.Unavailable, "accountdata restarting")
	a.mu.Unlock()
	c.Forget(9)
	if _, err := c.Token(context.Background(), laptop); svrkit.CodeOf(err) != svrkit.Unavailable {
		t.Fatalf("Caller while the state cannot be read = %v, want unavailable", err)
	}
}

// A state read before a revocation was stored, and answered after it, is
// dropped RevocationTTL after the read began: the bound holds however slow
// the answer.
func TestCheckerExpiresFromFetchStart(t *testing.T) {
	c, s, a, clock := clockedChecker(t, map[uint64]*im.SessionState{9: {Counter: 1}})
	now := *clock
	tok, _, _ := s.Issue(9, "phone", 1, time.Hour)
	a.during = func() {
		// The revocation lands, and the answer (of the old state, read
		// before it) takes most of the bound to arrive.
		a.set(9, &im.SessionState{Counter: 2, Floor: 2})
		*clock = now.Add(RevocationTTL - time.Millisecond)
	}
	if _, err := c.Token(context.Background(), tok); err != nil {
		t.Fatalf("first check: %v", err)
	}
	*clock = now.Add(RevocationTTL)
	if _, err := c.Token(context.Background(), tok); err != ErrRevoked {
		t.Fatalf("RevocationTTL after the fetch began: %v, want ErrRevoked", err)
	}
}
