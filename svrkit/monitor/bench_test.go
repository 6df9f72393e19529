package monitor

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The peer: prometheus/client_golang's Counter.Add, in the same run. A
// Prometheus counter lives in the process's heap, so it has no
// cross-process form; its 2-process figure runs the same loop in a second
// process as ours does.

func BenchmarkAdd(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Add(testOther, 1)
	}
}

func BenchmarkPrometheusCounterAdd(b *testing.B) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "bench_total"})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.Add(1)
	}
}

// The 2-goroutine figures run GOMAXPROCS goroutines (2 on the benchmark
// machine; -cpu 2 elsewhere) on one ID.

func BenchmarkAddParallel(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			Add(testOther, 1)
		}
	})
}

func BenchmarkPrometheusCounterAddParallel(b *testing.B) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "bench_total"})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Add(1)
		}
	})
}

// The 2-process figures run the loop while a second process runs the same
// loop on the same ID (in its own region, which is how regions work: per
// process, so there is no cross-process cache-line traffic to pay).

func BenchmarkAdd2Processes(b *testing.B) {
	stop := startSpinner(b, "monitor")
	defer stop()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Add(testOther, 1)
	}
}

func BenchmarkPrometheusCounterAdd2Processes(b *testing.B) {
	stop := startSpinner(b, "prometheus")
	defer stop()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "bench_total"})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Add(1)
	}
}

const childEnv = "MONITOR_TEST_CHILD"

// startSpinner starts a child process adding to testOther (or a Prometheus
// counter) in a loop until stopped; it waits until the child is spinning.
func startSpinner(b *testing.B, what string) func() {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=spin:"+what)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		buf := make([]byte, 6)
		_, _ = out.Read(buf)
		close(ready)
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		b.Fatal("spinner did not start")
	}
	return func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
}

// child runs the helper process named by childEnv: "spin:monitor",
// "spin:prometheus" or "add:N" (add N to testOther and exit without any
// cleanup, as a crash would).
func child() int {
	what := os.Getenv(childEnv)
	switch {
	case strings.HasPrefix(what, "spin:"):
		Declare(Decl{ID: testOther, Name: "test.other", Unit: "count", Kind: Counter})
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "spin_total"})
		prom := what == "spin:prometheus"
		fmt.Println("ready")
		// The parent kills us; the loop checks the time now and then so
		// that an orphan stops by itself.
		deadline := time.Now().Add(5 * time.Minute)
		for i := 0; ; i++ {
			if prom {
				c.Add(1)
			} else {
				Add(testOther, 1)
			}
			if i&0xfffff == 0 && time.Now().After(deadline) {
				return 0
			}
		}
	case strings.HasPrefix(what, "add:"):
		n, _ := strconv.Atoi(strings.TrimPrefix(what, "add:"))
		Declare(Decl{ID: testOther, Name: "test.other", Unit: "count", Kind: Counter})
		if err := Open(Options{Service: "child"}); err != nil {
			return 3
		}
		for i := 0; i < n; i++ {
			Add(testOther, 1)
		}
		fmt.Println(Region())
		return 0
	}
	return 2
}

// TestCrashKeepsCounts runs a process that adds and exits without any
// cleanup, and checks that its region still holds every count.
func TestCrashKeepsCounts(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=add:1000")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	path := strings.TrimSpace(string(out))
	if got := readRegion(t, path)["test.other"]; got != 1000 {
		t.Errorf("the exited process's region holds %d, want 1000", got)
	}
}

// BenchmarkAtomicAddFloor is the floor under both: one atomic add on a
// word, with nothing around it.
func BenchmarkAtomicAddFloor(b *testing.B) {
	var x atomic.Int64
	for i := 0; i < b.N; i++ {
		x.Add(1)
	}
}
