// Package latency records latencies in log-linear histograms, the way the
// benchmark and load tools of this repository report percentiles: no
// allocation and no lock per sample, so each recording goroutine owns one
// and they are merged afterwards.
package latency

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records latencies in log-linear buckets, as HDR histograms do:
// values below 128ns are exact, and every power-of-two range above is split
// into 64 buckets, so a recorded value is known to within 1/64 (1.6%) of
// itself up to about 2^40 ns (18 minutes); longer values land in the last
// bucket. Recording is an index computation and an increment — no
// allocation, no lock — so each caller goroutine owns one and the harness
// merges them after the measured window.
type Histogram struct {
	counts [histBuckets]uint32
	total  uint64
}

const (
	histSubBits = 7                // values below 1<<histSubBits are exact
	histSub     = 1 << histSubBits // 128
	histHalf    = histSub / 2      // buckets per power of two above histSub
	histMaxBits = 40               // values are kept up to 2^40 ns
	histBuckets = histSub + (histMaxBits-histSubBits)*histHalf
)

// histIndex returns the bucket of v nanoseconds.
func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	n := bits.Len64(v) // > histSubBits
	if n > histMaxBits {
		return histBuckets - 1
	}
	shift := n - histSubBits
	top := v >> uint(shift) // in [histHalf, histSub)
	return histSub + (shift-1)*histHalf + int(top-histHalf)
}

// histBounds returns the smallest value of bucket i and its width.
func histBounds(i int) (lo, width uint64) {
	if i < histSub {
		return uint64(i), 1
	}
	j := i - histSub
	shift := j/histHalf + 1
	top := uint64(j%histHalf + histHalf)
	return top << uint(shift), 1 << uint(shift)
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[histIndex(v)]++
	h.total++
}

// Count returns how many latencies were recorded.
func (h *Histogram) Count() uint64 { return h.total }

// Reset empties the histogram for the next cell.
func (h *Histogram) Reset() { *h = Histogram{} }

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
}

// Quantile returns the latency below or at which a fraction q of the
// recorded latencies fall: the value of rank ceil(q·n) in sorted order (the
// nearest-rank definition), reported as the middle of its bucket. It returns
// 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen >= rank {
			lo, w := histBounds(i)
			return time.Duration(lo + w/2)
		}
	}
	return 0 // unreachable: seen reaches total
}
