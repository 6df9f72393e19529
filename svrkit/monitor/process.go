package monitor

import (
	"context"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/svrkit/svrkit/svrkit/internal/beat"
	"github.com/svrkit/svrkit/svrkit/monitor/internal/shm"
)

// SampleProcess records the process's vital signs every period until ctx
// ends, as framework points labelled with the region's service:
//
//	svrkit.process.cpu_ms{service="send"}       counter: CPU time used, user and system
//	svrkit.process.gc_cycles{service="send"}    counter: garbage collections
//	svrkit.process.goroutines{service="send"}   gauge
//	svrkit.process.heap_bytes{service="send"}   gauge: live heap objects
//	svrkit.process.rss_bytes{service="send"}    gauge: resident memory (Linux)
//	svrkit.process.open_fds{service="send"}     gauge (Linux)
//	svrkit.process.up{service="send"}           gauge: 1 per live process
//
// Gauges of a process that exits stop counting, so up summed over a
// machine is how many processes of the service run there. It returns at
// once; the sampling runs in its own goroutine.
func SampleProcess(ctx context.Context, period time.Duration) {
	if !ensureRegion() {
		return
	}
	svc := Service()
	pt := func(name string, kind Kind, unit string) *shm.Slot {
		return named(SeriesName("svrkit.process."+name, "service", svc), kind, unit)
	}
	p := &processPoints{
		cpu: pt("cpu_ms", Counter, "ms"), gc: pt("gc_cycles", Counter, "count"),
		goroutines: pt("goroutines", Gauge, "count"), heap: pt("heap_bytes", Gauge, "bytes"),
		rss: pt("rss_bytes", Gauge, "bytes"), fds: pt("open_fds", Gauge, "count"), up: pt("up", Gauge, "count"),
		samples: []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}},
	}
	p.sample()
	go func() {
		t := time.NewTimer(beat.Until(period)) // on the process's beat
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				p.sample()
				t.Reset(beat.Until(period))
			}
		}
	}()
}

type processPoints struct {
	cpu, gc, goroutines, heap, rss, fds, up *shm.Slot
	samples                                 []metrics.Sample
	lastCPU, lastGC                         int64
}

func set(s *shm.Slot, v int64) {
	if s != nil {
		s.Value.Store(v)
		s.Flags.Or(shm.FlagSet)
	}
}

func add(s *shm.Slot, n int64) {
	if s != nil && n > 0 {
		s.Value.Add(n)
	}
}

func (p *processPoints) sample() {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		cpu := (ru.Utime.Sec+ru.Stime.Sec)*1000 + int64(ru.Utime.Usec+ru.Stime.Usec)/1000
		add(p.cpu, cpu-p.lastCPU)
		p.lastCPU = cpu
	}
	metrics.Read(p.samples)
	if p.samples[0].Value.Kind() == metrics.KindUint64 {
		set(p.heap, int64(p.samples[0].Value.Uint64()))
	}
	if p.samples[1].Value.Kind() == metrics.KindUint64 {
		gc := int64(p.samples[1].Value.Uint64())
		add(p.gc, gc-p.lastGC)
		p.lastGC = gc
	}
	set(p.goroutines, int64(runtime.NumGoroutine()))
	set(p.up, 1)
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if pages, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				set(p.rss, pages*int64(os.Getpagesize()))
			}
		}
	}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		set(p.fds, int64(len(ents)))
	}
}
