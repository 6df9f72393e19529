package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// -idle: what the backend costs while nobody uses it. Every process of a
// backend wakes up now and then for its housekeeping, and on a small
// machine each wake-up costs far more than its work (svrkit's internal
// package beat says why), so the idle figure is mostly how often the
// processes wake: both are reported.

// IdleReport is the backend's cost at rest over one window.
type IdleReport struct {
	Mode    string  `json:"mode"` // "idle"
	Seconds float64 `json:"duration_s"`
	// CPUPerSec is every process's CPU time (user + system) per second of
	// the window, in milliseconds; SwitchesPerSec their threads' context
	// switches per second, voluntary and not.
	CPUPerSec      float64                `json:"cpu_ms_per_s"`
	SwitchesPerSec float64                `json:"context_switches_per_s"`
	ByProcess      map[string]IdleProcess `json:"by_process"`
}

// IdleProcess is one process's share of an IdleReport.
type IdleProcess struct {
	CPUPerSec      float64 `json:"cpu_ms_per_s"`
	SwitchesPerSec float64 `json:"context_switches_per_s"`
}

// RunIdle reads the processes' CPU time and context switches, waits d (or
// until ctx ends), and reads them again. A process that is gone at either
// reading is left out.
func RunIdle(ctx context.Context, ps processes, d time.Duration) (*IdleReport, error) {
	cpu0, sw0 := ps.cpuTimes(), ps.switches()
	start := time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(d):
	}
	cpu1, sw1 := ps.cpuTimes(), ps.switches()
	secs := time.Since(start).Seconds()
	rep := &IdleReport{Mode: "idle", Seconds: secs, ByProcess: map[string]IdleProcess{}}
	spent, _ := cpuSpent(cpu0, cpu1)
	for name, c := range spent {
		b, ok0 := sw0[name]
		a, ok1 := sw1[name]
		if !ok0 || !ok1 {
			continue
		}
		p := IdleProcess{CPUPerSec: float64(c.Milliseconds()) / secs, SwitchesPerSec: float64(max(a-b, 0)) / secs}
		rep.ByProcess[name] = p
		rep.CPUPerSec += p.CPUPerSec
		rep.SwitchesPerSec += p.SwitchesPerSec
	}
	return rep, nil
}

// switches returns each process's context switches so far, summed over
// its threads; a process that is gone is left out.
func (ps processes) switches() map[string]int64 {
	out := map[string]int64{}
	for name, pid := range ps {
		if n, err := processSwitches(pid); err == nil {
			out[name] = n
		}
	}
	return out
}

// processSwitches adds up voluntary_ctxt_switches and
// nonvoluntary_ctxt_switches of every thread of pid. A thread that ends
// between two readings takes its count with it, so a process whose threads
// come and go reads a little low.
func processSwitches(pid int) (int64, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("/proc/%d/task: no threads", pid)
	}
	var n int64
	for _, path := range tasks {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // the thread ended
		}
		for line := range strings.Lines(string(b)) {
			name, v, ok := strings.Cut(line, ":")
			if !ok || !strings.HasSuffix(name, "ctxt_switches") {
				continue
			}
			if c, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				n += c
			}
		}
	}
	return n, nil
}

func printIdleReport(w io.Writer, r *IdleReport) {
	fmt.Fprintf(w, "\nthe backend at rest, %.1fs\n\n", r.Seconds)
	fmt.Fprintf(w, "| process | CPU, ms per second | context switches per second |\n| --- | ---: | ---: |\n")
	for _, name := range slices.Sorted(maps.Keys(r.ByProcess)) {
		p := r.ByProcess[name]
		fmt.Fprintf(w, "| %s | %.1f | %.0f |\n", name, p.CPUPerSec, p.SwitchesPerSec)
	}
	fmt.Fprintf(w, "| **all** | **%.1f** | **%.0f** |\n", r.CPUPerSec, r.SwitchesPerSec)
}
