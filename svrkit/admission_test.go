package svrkit

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// feed records n arrivals of (business, user) on shard 0 and returns how
// many were admitted.
func feed(a *admission, business, user uint8, n int) int {
	ok := 0
	for range n {
		if a.admit(0, admissionKey(business, user, 0, 0)) {
			ok++
		}
	}
	return ok
}

// window feeds one window of mixed traffic — business priorities 50, 128
// and 200, every user priority — with the given queuing time, then rolls
// it, and returns what each business priority got admitted.
func window(a *admission, wait time.Duration) map[uint8]int {
	got := map[uint8]int{}
	for _, b := range []uint8{50, 128, 200} {
		for u := uint8(1); u <= 127; u++ {
			got[b] += feed(a, b, u, 2)
		}
	}
	// Every admitted request started, after wait: the server keeps up
	// with what it admits.
	for _, n := range got {
		for range n {
			waited(a, int64(wait))
		}
	}
	a.roll(time.Now().UnixNano())
	return got
}

// waited records that an admitted request waited d nanoseconds for a
// worker, as the pool does when a worker takes it.
func waited(a *admission, d int64) {
	a.pool.mu.Lock()
	a.pool.waitedLocked(d)
	a.pool.mu.Unlock()
}

func newTestAdmission() *admission {
	return newAdmission(20*time.Millisecond, 1, newWorkerPool(func(*callCtx) {}, time.Minute, new(atomic.Int64)))
}

// While overloaded the level rises window after window, shedding the
// lowest business priority first and, within one, the lowest user
// priorities; once calm it falls again, more slowly.
func TestAdmissionLevelMoves(t *testing.T) {
	a := newTestAdmission()
	var levels []uint32
	// Overloaded until business 50 is shed entirely.
	for a.level.Load()>>7 < 128 {
		window(a, 50*time.Millisecond)
		l := a.level.Load()
		if len(levels) > 0 && l <= levels[len(levels)-1] {
			t.Fatalf("level did not rise in an overloaded window: %v then %d", levels, l)
		}
		levels = append(levels, l)
		if len(levels) > 200 {
			t.Fatalf("business 50 still admitted after 200 overloaded windows: %v", levels)
		}
	}
	got := window(a, 50*time.Millisecond)
	if got[50] != 0 || got[200] != 127*2 {
		t.Fatalf("admitted per business priority %v: want none of 50 and all of 200", got)
	}
	// Within business 128, the lowest user priorities went first.
	lvl := a.level.Load()
	for u := uint8(1); u <= 127; u++ {
		admitted := uint32(admissionKey(128, u, 0, 0)) >= lvl
		if admitted != (u >= uint8(lvl&0x7f)) && lvl>>7 == 128 {
			t.Fatalf("user %d: admitted=%v at level %d.%d", u, admitted, lvl>>7, lvl&0x7f)
		}
	}

	// Calm: the level falls, by at least one key per window, until all
	// is admitted.
	prev := a.level.Load()
	windows := 0
	for a.level.Load() > 0 {
		window(a, time.Millisecond)
		if l := a.level.Load(); l >= prev {
			t.Fatalf("level did not fall in a calm window: %d -> %d", prev, l)
		} else {
			prev = l
		}
		windows++
		if windows > 1000 {
			t.Fatal("level never returned to 0")
		}
	}
	if windows < 5 {
		t.Fatalf("relaxed from full shedding in %d windows; relaxing should be slower than shedding", windows)
	}
}

// The most important requests are never all refused, however long the
// overload lasts.
func TestAdmissionNeverRefusesEverything(t *testing.T) {
	a := newTestAdmission()
	for range 500 {
		window(a, time.Second)
	}
	if got := window(a, time.Second); got[200] == 0 {
		t.Fatalf("everything refused: %v", got)
	}
}

// All of one user's requests of one business priority get the same
// verdict within an hour's salt, whatever the request ids.
func TestAdmissionOneVerdictPerUser(t *testing.T) {
	a := newTestAdmission()
	for range 20 {
		window(a, 50*time.Millisecond)
	}
	// Users' priorities follow the hour's salt, so enough of them that
	// both verdicts show in any hour (at the level 128.125 this reaches,
	// 2,000 users leave about 47 admitted).
	shed, admitted := 0, 0
	for user := range 2000 {
		key := fmt.Sprint("user-", user)
		verdict := map[bool]int{}
		for call := range 10 {
			ok := uint32(admissionKey(128, userPriority(key), uint32(call), 0)) >= a.level.Load()
			verdict[ok]++
		}
		if len(verdict) != 1 {
			t.Fatalf("%s got both verdicts: %v", key, verdict)
		}
		if verdict[true] > 0 {
			admitted++
		} else {
			shed++
		}
	}
	if shed == 0 || admitted == 0 {
		t.Fatalf("level %d.%d shed %d and admitted %d of 2000 users; want some of each", a.level.Load()>>7, a.level.Load()&0x7f, shed, admitted)
	}
}

// With no arrivals below the level (clients refused them locally), a calm
// window lowers it by a small step, not to zero at once.
func TestAdmissionRelaxesSlowlyWithoutData(t *testing.T) {
	a := newTestAdmission()
	a.level.Store(uint32(admissionKey(128, 64, 0, 0)))
	before := a.level.Load()
	for u := uint8(64); u <= 127; u++ {
		feed(a, 128, u, 3)
	}
	a.roll(time.Now().UnixNano())
	if after := a.level.Load(); after == 0 || before-after > 2 {
		t.Fatalf("level %d -> %d in one calm window without data below it", before, after)
	}
}

// A flood far above what the workers start is cut to the service rate in
// one window, not 5% at a time.
func TestAdmissionCutsToServiceRate(t *testing.T) {
	a := newTestAdmission()
	admitted := 0
	for u := uint8(1); u <= 127; u++ {
		admitted += feed(a, 128, u, 8)
	}
	for range admitted / 4 { // the workers started a quarter of them
		waited(a, int64(100*time.Millisecond))
	}
	a.roll(time.Now().UnixNano())
	next := 0
	for u := uint8(1); u <= 127; u++ {
		next += feed(a, 128, u, 8)
	}
	if next > admitted/4 {
		t.Fatalf("after a window that started %d of %d, the next admits %d", admitted/4, admitted, next)
	}
	if next < admitted/8 {
		t.Fatalf("admits %d after a window that started %d: cut far below the service rate", next, admitted/4)
	}
}

// Calm windows in a row relax the level by a step that doubles, so a level
// raised by a transient comes back in a few windows even when clients
// refuse everything below it themselves; a few stragglers far below the
// level do not drop it to them at once.
func TestAdmissionRelaxAccelerates(t *testing.T) {
	a := newTestAdmission()
	for _, b := range []uint8{50, 128, 200} { // the business priorities in use
		feed(a, b, 64, 1)
	}
	a.roll(time.Now().UnixNano())
	a.level.Store(uint32(admissionKey(200, 64, 0, 0)))
	var steps []uint32
	for w := 0; a.level.Load() > uint32(admissionKey(50, 127, 0, 0)); w++ {
		if w == 12 {
			t.Fatalf("level still %d.%d after %d calm windows without data below it: steps %v",
				a.level.Load()>>7, a.level.Load()&0x7f, w, steps)
		}
		before := a.level.Load()
		for u := uint8(1); u <= 127; u++ {
			if uint32(admissionKey(200, u, 0, 0)) >= before {
				feed(a, 200, u, 3)
			}
		}
		if w == 0 {
			feed(a, 50, 1, 1) // a straggler from a client that did not know the level
		}
		a.roll(time.Now().UnixNano())
		steps = append(steps, before-a.level.Load())
		if w == 0 && a.level.Load() < uint32(admissionKey(200, 1, 0, 0)) {
			t.Fatalf("one straggler at 50.1 dropped the level from 200.64 to %d.%d", a.level.Load()>>7, a.level.Load()&0x7f)
		}
	}
}

// Calls dropped unrun because their deadline passed in the queue are not
// service: the rate an overloaded server admits next excludes them.
func TestAdmissionServiceRateExcludesExpired(t *testing.T) {
	a := newTestAdmission()
	admitted := 0
	for u := uint8(1); u <= 127; u++ {
		admitted += feed(a, 128, u, 8)
	}
	for range admitted / 2 { // half started, and half of those had expired
		waited(a, int64(100*time.Millisecond))
	}
	a.expired.Add(uint64(admitted / 4))
	a.roll(time.Now().UnixNano())
	next := 0
	for u := uint8(1); u <= 127; u++ {
		next += feed(a, 128, u, 8)
	}
	if next > admitted/4 {
		t.Fatalf("after a window that ran %d of %d (and dropped %d expired), the next admits %d", admitted/4, admitted, admitted/4, next)
	}
}

// One overloaded window after a long quiet is a blip: the next calm window
// drops the level to 0 at once. A second spike soon after, or a spike of
// two windows, relaxes step by step as usual.
func TestAdmissionDropsAfterABlip(t *testing.T) {
	a := newTestAdmission()
	for range blipWindows {
		window(a, 0)
	}
	window(a, 100*time.Millisecond)
	if a.level.Load() == 0 {
		t.Fatal("an overloaded window left the level at 0")
	}
	window(a, 0)
	if lvl := a.level.Load(); lvl != 0 {
		t.Fatalf("level %d.%d after a blip and a calm window, want 0", lvl>>7, lvl&0x7f)
	}

	window(a, 100*time.Millisecond) // another, right after
	window(a, 0)
	if a.level.Load() == 0 {
		t.Fatal("a spike right after a blip dropped the level at once")
	}

	b := newTestAdmission()
	for range blipWindows {
		window(b, 0)
	}
	window(b, 100*time.Millisecond)
	window(b, 100*time.Millisecond)
	window(b, 0)
	if b.level.Load() == 0 {
		t.Fatal("two overloaded windows in a row, then one calm one, dropped the level at once")
	}
}
