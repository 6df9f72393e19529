package svrkit

import (
	"testing"
	"time"
)

// A method's downstream level is the highest of its dependencies' last
// reports: a dependency that relaxes lowers it at once, and a level not
// reported again expires after levelTTL (its slot cleared).
func TestDownstreamLevelFollowsEachDependency(t *testing.T) {
	var d downstreamLevel
	ms := int64(time.Millisecond)
	ttl := int64(levelTTL)
	t0 := 1_000 * ttl
	a, b := depKey(mix64(1), 7), depKey(mix64(2), 7)
	if a == b || depKey(mix64(1), 8) == a {
		t.Fatal("dependency keys collide")
	}
	if d.any() || d.get(t0) != 0 {
		t.Fatal("a new record has a level")
	}
	d.observe(a, 0, t0) // a calm dependency
	if d.any() {
		t.Fatal("observing no level set one")
	}
	d.observe(a, 300, t0)
	d.observe(b, 200, t0+ms)
	if got := d.get(t0 + 2*ms); got != 300 {
		t.Fatalf("level %d, want the higher dependency's 300", got)
	}
	d.observe(a, 0, t0+3*ms) // a relaxed: b's level is what is left
	if got := d.get(t0 + 4*ms); got != 200 {
		t.Fatalf("level %d after the 300 relaxed, want 200", got)
	}
	d.observe(b, 100, t0+5*ms) // b relaxed part of the way
	if got := d.get(t0 + 6*ms); got != 100 {
		t.Fatalf("level %d after b lowered its level, want 100", got)
	}
	// Unchanged reports refresh it, so it lasts levelTTL after the last.
	d.observe(b, 100, t0+5*ms+ttl/2)
	if got := d.get(t0 + 5*ms + ttl - ms); got != 100 {
		t.Fatalf("level %d before the refreshed report expired, want 100", got)
	}
	if got := d.get(t0 + 5*ms + ttl/2 + ttl); got != 0 || d.any() {
		t.Fatalf("level %d (any: %v) levelTTL after the last report, want none", got, d.any())
	}
	// level() reads the real clock.
	d.observe(a, 42, time.Now().UnixNano())
	if got := d.level(); got != 42 {
		t.Fatalf("level() = %d just after a report of 42", got)
	}
}

// With more overloaded dependencies than slots, a new level takes the
// lowest one's slot; a slot that two workers claimed for one dependency
// follows its reports like the other.
func TestDownstreamLevelSlots(t *testing.T) {
	var d downstreamLevel
	t0 := 1_000 * int64(levelTTL)
	for i := range downstreamDeps {
		d.observe(depKey(mix64(uint64(i)), 1), uint32(10*(i+1)), t0)
	}
	d.observe(depKey(mix64(99), 1), 500, t0)
	if got := d.get(t0); got != 500 {
		t.Fatalf("level %d, want the newcomer's 500", got)
	}
	d.observe(depKey(mix64(98), 1), 5, t0) // lower than every slot: dropped
	for i := range d.deps {
		if v := uint16(d.deps[i].val.Load()); v == 10 || v == 5 {
			t.Fatalf("a slot holds %d; the lowest (10) should have given way, and 5 not taken one", v)
		}
	}

	var e downstreamLevel
	k := depKey(mix64(1), 1)
	e.observe(k, 300, t0)
	e.deps[1].dep.Store(k) // a second claim by a racing worker
	e.deps[1].val.Store(e.deps[0].val.Load())
	e.observe(k, 0, t0+int64(time.Millisecond))
	if got := e.get(t0 + int64(time.Millisecond)); got != 0 {
		t.Fatalf("level %d after the dependency relaxed, want 0 from both its slots", got)
	}
}
