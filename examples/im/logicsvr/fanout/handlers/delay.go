package handlers

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Fan-out delay: how long after a group message was stored (its
// sent_unix_ms, stamped by groupdata when it appended the message) the
// last of its members' inbox writes was durable. That is the time a group
// send's reply does not wait for, and the figure group chat is judged by
// ("the last member has it within ..."): the worker is the one place that
// knows when the last write of an entry returned, so it measures it there
// rather than have 500 clients poll for it.
//
// delays keeps the most recent ones, with when each was measured, so that
// GetStats can answer quantiles over a window (an imload run) without the
// caller resetting anything. The clock is the machine's wall clock, the
// same groupdata's stamp used when both run on one machine; across
// machines, clock skew adds to the figure.

// delayRing is how many recent delays are kept: a few minutes of a busy
// worker, a long benchmark of one group.
const delayRing = 1 << 16

type delaySample struct {
	at    time.Time
	delay time.Duration
}

// delays is a ring of recent delay samples. It is safe for concurrent
// use.
type delays struct {
	mu   sync.Mutex
	ring []delaySample
	next int
	full bool
}

func (d *delays) record(at time.Time, delay time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ring == nil {
		d.ring = make([]delaySample, delayRing)
	}
	d.ring[d.next] = delaySample{at, delay}
	d.next++
	if d.next == len(d.ring) {
		d.next, d.full = 0, true
	}
}

// DelayQuantiles are quantiles of the fan-out delay.
type DelayQuantiles struct {
	Count         int
	P50, P99, Max time.Duration
}

// since returns the quantiles of the delays measured at or after t.
func (d *delays) since(t time.Time) DelayQuantiles {
	d.mu.Lock()
	n := d.next
	if d.full {
		n = len(d.ring)
	}
	var ds []time.Duration
	for _, s := range d.ring[:n] {
		if !s.at.Before(t) {
			ds = append(ds, s.delay)
		}
	}
	d.mu.Unlock()
	if len(ds) == 0 {
		return DelayQuantiles{}
	}
	slices.Sort(ds)
	// The nearest-rank quantile: the smallest delay with at least q of
	// them at or below it.
	at := func(q float64) time.Duration { return ds[max(0, int(math.Ceil(q*float64(len(ds))))-1)] }
	return DelayQuantiles{Count: len(ds), P50: at(0.50), P99: at(0.99), Max: ds[len(ds)-1]}
}
