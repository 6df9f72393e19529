package throttle

import (
	"testing"
	"time"
)

var account = &Policy{Free: 3, Base: time.Second, Max: 8 * time.Second, Forget: time.Hour, ResetOnSuccess: true}
var source = &Policy{Free: 5, Base: time.Second, Max: time.Minute, Forget: time.Hour}

func newBackoff(now *time.Time) *Backoff {
	b := NewBackoff(100)
	b.now = func() time.Time { return *now }
	return b
}

func TestBackoffDoubles(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	b := newBackoff(&now)
	k := Key{"acct:bob", account}
	fail := func() {
		t.Helper()
		a, wait := b.Admit(k)
		if a == nil {
			t.Fatalf("refused, wait %v", wait)
		}
		a.Fail()
	}
	for range account.Free {
		fail()
	}
	for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		if a, wait := b.Admit(k); a != nil || wait != want {
			t.Fatalf("after %v: admitted %v, wait %v; want refused for %v", now, a != nil, wait, want)
		}
		now = now.Add(want - time.Millisecond)
		if a, _ := b.Admit(k); a != nil {
			t.Fatalf("admitted %v early", time.Millisecond)
		}
		now = now.Add(time.Millisecond)
		fail()
	}
	// Forgotten an hour after the last failure.
	now = now.Add(time.Hour)
	for range account.Free {
		fail()
	}
}

// Attempts in flight count: a burst of parallel guesses gets the free ones
// and no more, and past Free only one attempt runs at a time.
func TestBackoffCountsPending(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	b := newBackoff(&now)
	k := Key{"acct:bob", account}
	var admitted []*Attempt
	for range 10 {
		if a, _ := b.Admit(k); a != nil {
			admitted = append(admitted, a)
		}
	}
	if len(admitted) != account.Free {
		t.Fatalf("%d of a burst of 10 admitted, want %d", len(admitted), account.Free)
	}
	admitted[0].Abandon() // outcome unknown: counts as nothing
	admitted[0].Fail()    // a second end is ignored
	if a, _ := b.Admit(k); a == nil {
		t.Fatal("the abandoned attempt's place was not given back")
	}
}

// An attempt needs every key; a success resets only the keys whose
// policy says so.
func TestBackoffKeysAndSuccess(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	b := newBackoff(&now)
	src := Key{"src:10.0.0.1", source}
	for i := range account.Free {
		a, _ := b.Admit(src, Key{"acct:bob", account})
		if a == nil {
			t.Fatalf("attempt %d refused", i)
		}
		a.Fail()
	}
	if a, _ := b.Admit(src, Key{"acct:bob", account}); a != nil {
		t.Fatal("bob's account not throttled")
	}
	// Another account from the same source: the source has failures to spare.
	a, _ := b.Admit(src, Key{"acct:carol", account})
	if a == nil {
		t.Fatal("carol refused")
	}
	a.Succeed()
	for range 2 {
		a, _ = b.Admit(src, Key{"acct:dave", account})
		a.Fail()
	}
	// The source is at its Free (5) now, whatever the account: the
	// success did not reset it.
	if a, _ := b.Admit(src, Key{"acct:erin", account}); a != nil {
		t.Fatal("source not throttled after 5 failures and a success")
	}
	// A success under a resetting key does reset it.
	now = now.Add(time.Hour)
	k := Key{"cookie:1", account}
	for range account.Free - 1 {
		a, _ := b.Admit(k)
		a.Fail()
	}
	a, _ = b.Admit(k)
	a.Succeed()
	for range account.Free {
		a, _ := b.Admit(k)
		if a == nil {
			t.Fatal("failures survived a success")
		}
		a.Fail()
	}
}
