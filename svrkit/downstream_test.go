package svrkit

import (
	"testing"
	"time"
)

// A downstream level holds for the epoch it was reported in and the next,
// keeps the highest report, and is gone (its slot cleared) after that.
func TestDownstreamLevelLastsOneToTwoEpochs(t *testing.T) {
	var d downstreamLevel
	ttl := int64(levelTTL)
	t0 := 1_000 * ttl // the start of an epoch
	if d.any() || d.get(t0) != 0 {
		t.Fatal("a new record has a level")
	}
	d.observe(0, t0) // a calm dependency reports nothing
	if d.any() {
		t.Fatal("observing level 0 set a slot")
	}
	d.observe(300, t0+1)
	d.observe(200, t0+2) // lower, same epoch: kept at 300
	if got := d.get(t0 + ttl/2); got != 300 {
		t.Fatalf("level %d in the epoch of the report, want 300", got)
	}
	d.observe(100, t0+ttl+1) // next epoch: its own slot
	if got := d.get(t0 + ttl + 2); got != 300 {
		t.Fatalf("level %d in the next epoch, want the previous one's 300", got)
	}
	if got := d.get(t0 + 2*ttl + 1); got != 100 {
		t.Fatalf("level %d two epochs on, want the last epoch's 100", got)
	}
	if got := d.get(t0 + 3*ttl + 1); got != 0 || d.any() {
		t.Fatalf("level %d (slots set: %v) three epochs on, want none", got, d.any())
	}
	// level() reads the real clock.
	d.observe(42, time.Now().UnixNano())
	if got := d.level(); got != 42 {
		t.Fatalf("level() = %d just after a report of 42", got)
	}
}
