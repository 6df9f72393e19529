package main

import (
	"testing"
	"time"
)

func TestBootstrapMedianBracketsTheMedian(t *testing.T) {
	xs := []float64{0.90, 0.95, 1.10, 0.97, 1.02, 0.88, 0.93, 1.05, 0.99, 0.91, 0.96, 1.00}
	lo, hi := bootstrapMedian(xs, 2000)
	if !(lo <= 0.965 && 0.965 <= hi) || lo < 0.88 || hi > 1.10 || lo >= hi {
		t.Fatalf("interval [%v, %v] for median 0.965 of %v", lo, hi, xs)
	}
	if lo2, hi2 := bootstrapMedian(xs, 2000); lo2 != lo || hi2 != hi {
		t.Fatalf("the same figures gave [%v, %v], then [%v, %v]", lo, hi, lo2, hi2)
	}
	// Four times the rounds, the same spread: a narrower interval.
	var many []float64
	for range 4 {
		many = append(many, xs...)
	}
	if mlo, mhi := bootstrapMedian(many, 2000); mhi-mlo >= hi-lo {
		t.Fatalf("48 rounds gave [%v, %v], no narrower than 12 rounds' [%v, %v]", mlo, mhi, lo, hi)
	}
}

func TestProcessCPUPerCallCountsEveryCell(t *testing.T) {
	rep := new(report)
	rep.processCPU = 3 * time.Second
	for range 2 {
		var r cellResult
		r.Median.Calls = 500_000
		rep.Rows = append(rep.Rows, reportRow{Results: map[string]cellResult{"svrkit": r}})
	}
	if got := rep.processCPUPerCall(); got != 3000 {
		t.Fatalf("3 s over 1,000,000 calls: got %v ns per call, want 3000", got)
	}
	if got := new(report).processCPUPerCall(); got != 0 {
		t.Fatalf("a report without calls: got %v, want 0", got)
	}
}
