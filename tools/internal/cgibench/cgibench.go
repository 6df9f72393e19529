// Package cgibench measures a Logicsvr's HTTP CGI front against connect-go
// serving the same method over HTTP/1.1, side by side in one run.
//
// # What is compared
//
// Both servers serve hello.Greeter/SayHello (examples/hello) with the same
// handler body, at the same Connect unary route POST /hello.Greeter/SayHello,
// on HTTP/1.1 keep-alive connections, in protobuf JSON and in binary
// protobuf:
//
//   - logicsvr: a full logicsvr.Host as a generated main builds it — the
//     svrkit/cgi front behind the host's middleware and interceptors:
//     request ids, per-method Prometheus metrics, the concurrency guard, the
//     panic guard and the IDL timeout (SayHello's 1s), which the host
//     enforces by running the handler on its own goroutine;
//   - connect: connect.NewUnaryHandler from connectrpc.com/connect with
//     default options, on a plain net/http server.
//
// So the Logicsvr does strictly more per call than connect-go; the ratio
// says what that costs or saves.
//
// # How
//
// Each server runs in its own process (the benchmark binary re-executed
// with -serve), so the load generator's garbage collector and goroutines do
// not run inside the server. A cell is one system × encoding × number of
// concurrent callers: a warm-up, then a measured window in which each caller
// sends its next request as soon as the previous answer is read (closed
// loop) over its own keep-alive connection. Every latency is kept and
// sorted for exact percentiles. The whole matrix is repeated Runs times,
// systems interleaved within each run so that a noisy moment hits both, and
// the median of each figure over the runs is reported.
//
// On a small machine the load generator competes with the server for CPU;
// that is the same for both systems, so the ratio is the robust figure.
package cgibench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/hello"
)

// Systems are the servers compared, in table order.
var Systems = []string{"logicsvr", "connect"}

// Encodings are the request encodings measured.
var Encodings = []string{"json", "proto"}

// Route is the path both servers serve the method at.
const Route = "/hello.Greeter/SayHello"

// Config is one benchmark run.
type Config struct {
	Callers  []int         // concurrent callers per cell
	Duration time.Duration // measured window per cell
	Warmup   time.Duration // unmeasured warm-up per cell
	Runs     int           // repetitions of the matrix; medians are reported
	NameSize int           // bytes in the request's name field
	// Addrs maps a system to the address of its running server.
	Addrs map[string]string
	// Progress, if set, gets one line per measured cell.
	Progress io.Writer
}

// DefaultConfig is what the command runs without flags.
func DefaultConfig() Config {
	return Config{Callers: []int{1, 16, 64}, Duration: 2 * time.Second, Warmup: 300 * time.Millisecond, Runs: 3, NameSize: 16}
}

// Result is the median figures of one cell.
type Result struct {
	System   string
	Encoding string
	Callers  int
	RPS      float64
	P50, P99 time.Duration
	Errors   int // failed requests, summed over runs
}

// sample is one measured window.
type sample struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
}

// Run measures every cell and returns the medians, ordered by encoding,
// callers, system.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	bodies, err := requestBodies(cfg.NameSize)
	if err != nil {
		return nil, err
	}
	type key struct {
		sys, enc string
		callers  int
	}
	samples := map[key][]sample{}
	for run := 0; run < cfg.Runs; run++ {
		for _, enc := range Encodings {
			for _, n := range cfg.Callers {
				for _, sys := range Systems {
					addr := cfg.Addrs[sys]
					if addr == "" {
						return nil, fmt.Errorf("no address for %s", sys)
					}
					s, err := measure(ctx, "http://"+addr+Route, enc, bodies[enc], n, cfg.Warmup, cfg.Duration)
					if err != nil {
						return nil, fmt.Errorf("%s %s %d callers: %w", sys, enc, n, err)
					}
					k := key{sys, enc, n}
					samples[k] = append(samples[k], s)
					if cfg.Progress != nil {
						fmt.Fprintf(cfg.Progress, "run %d/%d  %-8s %-5s %4d callers  %9.0f req/s  p50 %-9v p99 %-9v errors %d\n",
							run+1, cfg.Runs, sys, enc, n, s.rps, s.p50, s.p99, s.errors)
					}
				}
			}
		}
	}
	var out []Result
	for _, enc := range Encodings {
		for _, n := range cfg.Callers {
			for _, sys := range Systems {
				ss := samples[key{sys, enc, n}]
				r := Result{System: sys, Encoding: enc, Callers: n}
				var rps []float64
				var p50, p99 []time.Duration
				for _, s := range ss {
					rps = append(rps, s.rps)
					p50 = append(p50, s.p50)
					p99 = append(p99, s.p99)
					r.Errors += s.errors
				}
				r.RPS, r.P50, r.P99 = median(rps), median(p50), median(p99)
				out = append(out, r)
			}
		}
	}
	return out, nil
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// requestBodies encodes the same request in both encodings.
func requestBodies(nameSize int) (map[string][]byte, error) {
	req := &hello.HelloRequest{Name: strings.Repeat("n", max(nameSize, 1))}
	j, err := protojson.Marshal(req)
	if err != nil {
		return nil, err
	}
	p, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{"json": j, "proto": p}, nil
}

var contentTypes = map[string]string{"json": "application/json", "proto": "application/proto"}

// measure runs one cell: n closed-loop callers, each on its own keep-alive
// connection.
func measure(ctx context.Context, url, enc string, body []byte, n int, warmup, window time.Duration) (sample, error) {
	tr := &http.Transport{
		MaxIdleConnsPerHost: n,
		MaxConnsPerHost:     n,
		DisableCompression:  true,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	ct := contentTypes[enc]

	var (
		start     = time.Now()
		measureAt = start.Add(warmup)
		stopAt    = measureAt.Add(window)
		mu        sync.Mutex
		lats      []time.Duration
		errs      int
		firstErr  error
		wg        sync.WaitGroup
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			localErrs := 0
			var lastErr error
			var buf bytes.Buffer // reused: the load generator should not add garbage
			for ctx.Err() == nil {
				t0 := time.Now()
				// Past the window, a caller still finishes one measured
				// request if it has none: on a loaded machine one slow
				// request can span a short window and leave a cell empty.
				if !t0.Before(stopAt) && (len(local) > 0 || localErrs > 0) {
					break
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", ct)
				res, err := client.Do(req)
				if err == nil {
					buf.Reset()
					_, err = buf.ReadFrom(res.Body)
					res.Body.Close()
					if err == nil && res.StatusCode != http.StatusOK {
						err = fmt.Errorf("HTTP %d: %.200s", res.StatusCode, buf.Bytes())
					}
				}
				t1 := time.Now()
				if t0.Before(measureAt) {
					continue
				}
				if err != nil {
					localErrs++
					lastErr = err
					continue
				}
				local = append(local, t1.Sub(t0))
			}
			mu.Lock()
			lats = append(lats, local...)
			errs += localErrs
			if lastErr != nil && firstErr == nil {
				firstErr = lastErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return sample{}, err
	}
	if len(lats) == 0 {
		if firstErr == nil {
			firstErr = errors.New("no request completed")
		}
		return sample{}, firstErr
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	return sample{
		rps:    float64(len(lats)) / window.Seconds(),
		p50:    lats[len(lats)*50/100],
		p99:    lats[min(len(lats)*99/100, len(lats)-1)],
		errors: errs,
	}, nil
}

// Table renders results as a markdown table with the logicsvr/connect
// throughput ratio per cell.
func Table(results []Result) string {
	var b strings.Builder
	b.WriteString("| encoding | callers | system | req/s | p50 | p99 | req/s vs connect |\n")
	b.WriteString("|---|---:|---|---:|---:|---:|---:|\n")
	base := map[string]float64{}
	for _, r := range results {
		if r.System == "connect" {
			base[fmt.Sprint(r.Encoding, r.Callers)] = r.RPS
		}
	}
	for _, r := range results {
		ratio := "—"
		if c := base[fmt.Sprint(r.Encoding, r.Callers)]; c > 0 {
			ratio = fmt.Sprintf("%.2f×", r.RPS/c)
		}
		errs := ""
		if r.Errors > 0 {
			errs = fmt.Sprintf(" (%d errors)", r.Errors)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %.0f%s | %s | %s | %s |\n",
			r.Encoding, r.Callers, r.System, r.RPS, errs, fmtDur(r.P50), fmtDur(r.P99), ratio)
	}
	return b.String()
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
}
