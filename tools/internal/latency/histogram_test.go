package latency

import (
	"math"
	"testing"
	"time"
)

func TestHistogramExactBelow128ns(t *testing.T) {
	var h Histogram
	for v := 0; v < 100; v++ {
		h.Record(time.Duration(v))
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.01, 0}, {0.50, 49}, {0.99, 98}, {1, 99},
	}
	for _, tt := range tests {
		if got := h.Quantile(tt.q); got != tt.want {
			t.Errorf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
}

func TestHistogramQuantilesWithinPrecision(t *testing.T) {
	// 1..100000 µs, once each: the value of rank k is k µs.
	var h Histogram
	const n = 100000
	for v := 1; v <= n; v++ {
		h.Record(time.Duration(v) * time.Microsecond)
	}
	if h.Count() != n {
		t.Fatalf("Count = %d, want %d", h.Count(), n)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := math.Ceil(q*n) * float64(time.Microsecond)
		got := float64(h.Quantile(q))
		if rel := math.Abs(got-want) / want; rel > 1.0/64 {
			t.Errorf("Quantile(%v) = %v, want %v within 1/64 (off by %.2f%%)", q, time.Duration(got), time.Duration(want), rel*100)
		}
	}
}

func TestHistogramBucketsCoverEveryValue(t *testing.T) {
	// Every value lands in a bucket whose bounds contain it, and buckets
	// are contiguous and increasing.
	prevHi := uint64(0)
	for i := 0; i < histBuckets-1; i++ {
		lo, w := histBounds(i)
		if lo != prevHi {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		for _, v := range []uint64{lo, lo + w/2, lo + w - 1} {
			if got := histIndex(v); got != i {
				t.Fatalf("histIndex(%d) = %d, want %d", v, got, i)
			}
		}
		prevHi = lo + w
	}
	if got := histIndex(math.MaxUint64); got != histBuckets-1 {
		t.Errorf("histIndex(max) = %d, want the last bucket %d", got, histBuckets-1)
	}
}

func TestHistogramMergeAndSkew(t *testing.T) {
	// 990 fast calls and 10 slow ones in two histograms: p50 and p99 are
	// fast, p999 is slow.
	var a, b, all Histogram
	for range 990 {
		a.Record(100 * time.Microsecond)
	}
	for range 10 {
		b.Record(50 * time.Millisecond)
	}
	all.Merge(&a)
	all.Merge(&b)
	near := func(got, want time.Duration) bool {
		return math.Abs(float64(got-want)) <= float64(want)/64
	}
	if got := all.Quantile(0.99); !near(got, 100*time.Microsecond) {
		t.Errorf("p99 = %v, want ~100µs", got)
	}
	if got := all.Quantile(0.999); !near(got, 50*time.Millisecond) {
		t.Errorf("p999 = %v, want ~50ms", got)
	}
	var empty Histogram
	if got := empty.Quantile(0.5); got != 0 {
		t.Errorf("empty p50 = %v, want 0", got)
	}
}

func TestHistogramRecordDoesNotAllocate(t *testing.T) {
	h := new(Histogram)
	if n := testing.AllocsPerRun(1000, func() { h.Record(123 * time.Microsecond) }); n != 0 {
		t.Errorf("Record allocates %v times", n)
	}
}
