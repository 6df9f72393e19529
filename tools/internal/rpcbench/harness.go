package rpcbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/tools/internal/latency"
	"github.com/svrkit/svrkit/tools/internal/rpcbench/echopb"
)

// Config is one invocation of the harness.
type Config struct {
	// Duration is each cell's measured window.
	Duration time.Duration
	// Warmup runs each cell's callers unmeasured first, so connections,
	// buffers and pools are at their working size.
	Warmup time.Duration
	// Runs repeats the whole matrix; reported figures are medians over runs.
	Runs int
	// Sizes are the payload sizes in bytes.
	Sizes []int
	// Callers are the numbers of concurrent caller goroutines.
	Callers []int
	// Systems are the stacks to run, by name (see SystemNames).
	Systems []string
	// Options are passed to every system's start.
	Options Options
	// Progress, if set, gets one line per measured cell.
	Progress io.Writer
}

// DefaultConfig is the matrix the issue asks for.
func DefaultConfig() Config {
	return Config{
		Duration: 2 * time.Second,
		Warmup:   500 * time.Millisecond,
		Runs:     3,
		Sizes:    []int{16, 1024, 16384},
		Callers:  []int{1, 64, 1024},
		Systems:  DefaultSystems(),
	}
}

// Sample is what one system did in one cell of one run, or the medians of
// those over runs.
type Sample struct {
	Calls     int64         `json:"calls"`
	Errors    int64         `json:"errors"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	ReqPerSec float64       `json:"req_per_sec"`
	P50       time.Duration `json:"p50_ns"`
	P99       time.Duration `json:"p99_ns"`
	P999      time.Duration `json:"p999_ns"`
	// AllocsPerCall and BytesPerCall count everything the process
	// allocated in the window — client, server, protobuf, runtime — per
	// successful call.
	AllocsPerCall float64 `json:"allocs_per_call"`
	BytesPerCall  float64 `json:"bytes_per_call"`
	// FrameworkAllocsPerCall and FrameworkBytesPerCall are the same with
	// the protobuf messages' own allocations (see ProtoCost) subtracted,
	// for the stacks that use protobuf; they equal the totals otherwise.
	FrameworkAllocsPerCall float64 `json:"framework_allocs_per_call"`
	FrameworkBytesPerCall  float64 `json:"framework_bytes_per_call"`
	// CPUPerCall is the process's CPU time (user and system, client and
	// server together) in the window per successful call. On a machine
	// other work keeps busy, throughput falls with the CPU share the
	// benchmark gets; CPU per call mostly does not, which makes it the
	// steadier figure for comparing two builds.
	CPUPerCall time.Duration `json:"cpu_per_call_ns"`
	// FirstError is the first failed call's error, if any.
	FirstError string `json:"first_error,omitempty"`
}

// Result is one system in one cell: the medians and every run's sample.
type Result struct {
	System  string   `json:"system"`
	Size    int      `json:"size"`
	Callers int      `json:"callers"`
	Median  Sample   `json:"median"`
	Runs    []Sample `json:"runs"`
}

// Row is one cell of the matrix: one payload size and caller count, with
// every system's result and the ratios the targets are stated in.
type Row struct {
	Size    int                `json:"size"`
	Callers int                `json:"callers"`
	Results map[string]*Result `json:"results"`
	// SvrkitOverGRPC and SvrkitOverCeiling are the ratios of median
	// requests per second; NaN (null in JSON) when a side was not run.
	SvrkitOverGRPC    float64 `json:"-"`
	SvrkitOverCeiling float64 `json:"-"`
}

// Report is a whole invocation's outcome.
type Report struct {
	Machine Machine `json:"machine"`
	// Config echoes the matrix that was run.
	DurationNS int64    `json:"duration_ns"`
	WarmupNS   int64    `json:"warmup_ns"`
	Runs       int      `json:"runs"`
	Systems    []string `json:"systems"`
	// ProtoCost is the per-call allocation of the protobuf messages
	// alone, by payload size, subtracted to get framework figures.
	ProtoCost map[int]Cost `json:"proto_cost"`
	Rows      []*Row       `json:"rows"`
}

// Cost is an allocation figure per call.
type Cost struct {
	Allocs float64 `json:"allocs"`
	Bytes  float64 `json:"bytes"`
}

// Run starts every configured system, runs the matrix cfg.Runs times and
// returns the medians. Within a run, the systems take turns cell by cell,
// so a noisy stretch of the machine hurts them alike.
func Run(cfg Config) (*Report, error) {
	if cfg.Runs < 1 {
		cfg.Runs = 1
	}
	if len(cfg.Systems) == 0 {
		cfg.Systems = DefaultSystems()
	}
	entries := make([]system, len(cfg.Systems))
	for i, name := range cfg.Systems {
		s, err := lookupSystem(name)
		if err != nil {
			return nil, err
		}
		entries[i] = s
	}
	rep := &Report{
		Machine:    DescribeMachine(),
		DurationNS: int64(cfg.Duration),
		WarmupNS:   int64(cfg.Warmup),
		Runs:       cfg.Runs,
		Systems:    cfg.Systems,
		ProtoCost:  make(map[int]Cost),
	}
	for _, size := range cfg.Sizes {
		rep.ProtoCost[size] = ProtoCost(size)
	}

	started := make([]System, len(entries))
	defer func() {
		for _, s := range started {
			if s != nil {
				s.Close()
			}
		}
	}()
	for i, e := range entries {
		s, err := e.start(cfg.Options)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", e.name, err)
		}
		started[i] = s
	}

	maxCallers := 0
	for _, c := range cfg.Callers {
		maxCallers = max(maxCallers, c)
	}
	hists := make([]latency.Histogram, maxCallers)

	type key struct {
		size, callers int
		system        string
	}
	samples := make(map[key][]Sample)
	cells := len(cfg.Sizes) * len(cfg.Callers) * len(entries)
	done := 0
	for run := 1; run <= cfg.Runs; run++ {
		for _, size := range cfg.Sizes {
			for _, callers := range cfg.Callers {
				for i, e := range entries {
					s, err := measure(started[i], size, callers, cfg.Warmup, cfg.Duration, hists[:callers])
					if err != nil {
						return nil, fmt.Errorf("%s size=%d callers=%d: %w", e.name, size, callers, err)
					}
					s.FrameworkAllocsPerCall, s.FrameworkBytesPerCall = s.AllocsPerCall, s.BytesPerCall
					if e.proto {
						pc := rep.ProtoCost[size]
						s.FrameworkAllocsPerCall -= pc.Allocs
						s.FrameworkBytesPerCall -= pc.Bytes
					}
					k := key{size, callers, e.name}
					samples[k] = append(samples[k], s)
					done++
					if cfg.Progress != nil {
						fmt.Fprintf(cfg.Progress, "run %d/%d  cell %d/%d  %-8s size=%-5d callers=%-4d  %9.0f req/s  p99 %-8s  %5.1f allocs/call%s\n",
							run, cfg.Runs, done, cells*cfg.Runs, e.name, size, callers,
							s.ReqPerSec, fmtDuration(s.P99), s.AllocsPerCall, errNote(s))
					}
				}
			}
		}
	}

	for _, size := range cfg.Sizes {
		for _, callers := range cfg.Callers {
			row := &Row{Size: size, Callers: callers, Results: make(map[string]*Result)}
			for _, e := range entries {
				runs := samples[key{size, callers, e.name}]
				row.Results[e.name] = &Result{System: e.name, Size: size, Callers: callers, Median: MedianSample(runs), Runs: runs}
			}
			row.SvrkitOverGRPC = row.ratio("svrkit", "grpc")
			row.SvrkitOverCeiling = row.ratio("svrkit", "ceiling")
			rep.Rows = append(rep.Rows, row)
		}
	}
	return rep, nil
}

func errNote(s Sample) string {
	if s.Errors == 0 {
		return ""
	}
	return fmt.Sprintf("  %d errors, first: %s", s.Errors, s.FirstError)
}

// ratio returns a's median req/s over b's, NaN if either is missing or b
// made no calls.
func (r *Row) ratio(a, b string) float64 {
	ra, rb := r.Results[a], r.Results[b]
	if ra == nil || rb == nil {
		return nan
	}
	return Ratio(ra.Median.ReqPerSec, rb.Median.ReqPerSec)
}

// callerState is one caller goroutine's tally, padded so that neighbours'
// counters do not share a cache line.
type callerState struct {
	errors   int64
	firstErr error
	_        [48]byte
}

// measure runs one cell: callers goroutines in a closed loop on sys, a
// warm-up, then the measured window. hists (one per caller) are reset and
// reused across cells so that recording never allocates.
func measure(sys System, size, callers int, warmup, window time.Duration, hists []latency.Histogram) (Sample, error) {
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i*7 + 1)
	}
	calls := make([]Caller, callers)
	for i := range calls {
		calls[i] = sys.NewCaller(payload)
		hists[i].Reset()
	}
	states := make([]callerState, callers)

	const (
		phaseWarmup = iota
		phaseMeasure
		phaseStop
	)
	var phase atomic.Int32
	var wg sync.WaitGroup
	ctx := context.Background()

	runtime.GC()
	for i := range callers {
		wg.Add(1)
		go func(call Caller, h *latency.Histogram, st *callerState) {
			defer wg.Done()
			for phase.Load() != phaseStop {
				t0 := time.Now()
				_, err := call(ctx)
				d := time.Since(t0)
				// A call counts if it completed inside the window, the
				// same window the allocation figures cover.
				if phase.Load() != phaseMeasure {
					continue
				}
				if err != nil {
					if st.errors == 0 {
						st.firstErr = err
					}
					st.errors++
					continue
				}
				h.Record(d)
			}
		}(calls[i], &hists[i], &states[i])
	}

	time.Sleep(warmup)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0 := processCPU()
	t0 := time.Now()
	phase.Store(phaseMeasure)
	time.Sleep(window)
	phase.Store(phaseStop)
	elapsed := time.Since(t0)
	cpu1 := processCPU()
	runtime.ReadMemStats(&m1)

	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		return Sample{}, errors.New("callers still blocked in calls 30s after the window closed")
	}

	var all latency.Histogram
	s := Sample{Elapsed: elapsed}
	for i := range callers {
		all.Merge(&hists[i])
		s.Errors += states[i].errors
		if s.FirstError == "" && states[i].firstErr != nil {
			s.FirstError = states[i].firstErr.Error()
		}
	}
	s.Calls = int64(all.Count())
	s.ReqPerSec = float64(s.Calls) / elapsed.Seconds()
	s.P50, s.P99, s.P999 = all.Quantile(0.50), all.Quantile(0.99), all.Quantile(0.999)
	if s.Calls > 0 {
		s.AllocsPerCall = float64(m1.Mallocs-m0.Mallocs) / float64(s.Calls)
		s.BytesPerCall = float64(m1.TotalAlloc-m0.TotalAlloc) / float64(s.Calls)
		s.CPUPerCall = (cpu1 - cpu0) / time.Duration(s.Calls)
	}
	return s, nil
}

// ProtoCost measures what the protobuf messages of one echo call allocate
// by themselves, with no RPC stack around them: the server decoding the
// request into a new message (the message and a copy of the payload), the
// handler building its response, and the client decoding the response into
// a new message (again the message and a copy). Encoding is done with
// MarshalAppend into reused buffers, which allocates nothing: a stack that
// encodes into fresh buffers pays for that choice in its framework figures.
func ProtoCost(size int) Cost {
	payload := make([]byte, size)
	req := &echopb.EchoRequest{Payload: payload}
	var reqBuf, respBuf []byte
	one := func() {
		reqBuf, _ = proto.MarshalOptions{}.MarshalAppend(reqBuf[:0], req)
		in := new(echopb.EchoRequest)
		if err := proto.Unmarshal(reqBuf, in); err != nil {
			panic(err)
		}
		out := echo(in)
		respBuf, _ = proto.MarshalOptions{}.MarshalAppend(respBuf[:0], out)
		resp := new(echopb.EchoResponse)
		if err := proto.Unmarshal(respBuf, resp); err != nil {
			panic(err)
		}
	}
	one() // size the buffers
	const n = 2000
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range n {
		one()
	}
	runtime.ReadMemStats(&m1)
	return Cost{
		Allocs: float64(m1.Mallocs-m0.Mallocs) / n,
		Bytes:  float64(m1.TotalAlloc-m0.TotalAlloc) / n,
	}
}

// MedianSample returns the per-field median of samples: each figure is the
// median of that figure over runs, not the figures of the median run.
func MedianSample(samples []Sample) Sample {
	var m Sample
	if len(samples) == 0 {
		return m
	}
	f := func(get func(Sample) float64) float64 {
		vs := make([]float64, len(samples))
		for i, s := range samples {
			vs[i] = get(s)
		}
		return Median(vs)
	}
	m.Calls = int64(f(func(s Sample) float64 { return float64(s.Calls) }))
	m.Errors = int64(f(func(s Sample) float64 { return float64(s.Errors) }))
	m.Elapsed = time.Duration(f(func(s Sample) float64 { return float64(s.Elapsed) }))
	m.ReqPerSec = f(func(s Sample) float64 { return s.ReqPerSec })
	m.P50 = time.Duration(f(func(s Sample) float64 { return float64(s.P50) }))
	m.P99 = time.Duration(f(func(s Sample) float64 { return float64(s.P99) }))
	m.P999 = time.Duration(f(func(s Sample) float64 { return float64(s.P999) }))
	m.AllocsPerCall = f(func(s Sample) float64 { return s.AllocsPerCall })
	m.BytesPerCall = f(func(s Sample) float64 { return s.BytesPerCall })
	m.FrameworkAllocsPerCall = f(func(s Sample) float64 { return s.FrameworkAllocsPerCall })
	m.FrameworkBytesPerCall = f(func(s Sample) float64 { return s.FrameworkBytesPerCall })
	m.CPUPerCall = time.Duration(f(func(s Sample) float64 { return float64(s.CPUPerCall) }))
	for _, s := range samples {
		if s.FirstError != "" {
			m.FirstError = s.FirstError
			break
		}
	}
	return m
}

// Median returns the median of vs (the mean of the middle two for an even
// count), NaN for none. vs is not modified.
func Median(vs []float64) float64 {
	if len(vs) == 0 {
		return nan
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Ratio returns a/b, NaN when b is not positive.
func Ratio(a, b float64) float64 {
	if !(b > 0) {
		return nan
	}
	return a / b
}

// processCPU returns the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
