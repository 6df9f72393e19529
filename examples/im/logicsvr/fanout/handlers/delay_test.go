package handlers

import (
	"testing"
	"time"
)

func TestDelayQuantiles(t *testing.T) {
	var d delays
	if q := d.since(time.Time{}); q != (DelayQuantiles{}) {
		t.Fatalf("empty: %+v", q)
	}
	t0 := time.Unix(1000, 0)
	for i := 1; i <= 100; i++ {
		d.record(t0.Add(time.Duration(i)*time.Second), time.Duration(i)*time.Millisecond)
	}
	if q := d.since(time.Time{}); q != (DelayQuantiles{Count: 100, P50: 50 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}) {
		t.Errorf("all: %+v", q)
	}
	// Only those measured at or after the window's start.
	if q := d.since(t0.Add(91 * time.Second)); q != (DelayQuantiles{Count: 10, P50: 95 * time.Millisecond, P99: 100 * time.Millisecond, Max: 100 * time.Millisecond}) {
		t.Errorf("last ten: %+v", q)
	}
	// The ring keeps the most recent delayRing.
	for i := range delayRing {
		d.record(t0.Add(time.Hour), time.Duration(i%2)*time.Second)
	}
	if q := d.since(time.Time{}); q.Count != delayRing || q.Max != time.Second || q.P50 != 0 {
		t.Errorf("after wrapping: %+v", q)
	}
}
