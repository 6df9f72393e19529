package beat

import (
	"testing"
	"time"
)

// Wherever it is called from, Until points at a multiple of the period on
// the wall clock, so timers re-armed with it expire together.
func TestUntilPointsAtAMultipleOfThePeriod(t *testing.T) {
	for _, p := range []time.Duration{time.Millisecond, 7 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second} {
		for range 200 {
			before := time.Now().Round(0) // wall clock only, as Until computes
			d := Until(p)
			after := time.Now().Round(0)
			// The instant Until aimed at lies in [before+d, after+d]; a
			// multiple of p must lie there too.
			lo, hi := before.Add(d), after.Add(d)
			if m := hi.Truncate(p); m.Before(lo) {
				t.Fatalf("Until(%v) = %v at %v: no multiple of %v between %v and %v", p, d, before, p, lo, hi)
			}
		}
	}
}

func TestUntilWaitsBetweenHalfAndOneAndAHalfPeriods(t *testing.T) {
	for _, p := range []time.Duration{time.Millisecond, time.Second, 2 * time.Second} {
		for range 100 {
			if d := Until(p); d < p/2 || d > p+p/2 {
				t.Fatalf("Until(%v) = %v, want between %v and %v", p, d, p/2, p+p/2)
			}
		}
	}
	if d := Until(0); d != 0 {
		t.Fatalf("Until(0) = %v, want 0", d)
	}
}
