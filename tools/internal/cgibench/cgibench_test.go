package cgibench

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startServers runs both systems in process on loopback.
func startServers(t *testing.T) map[string]string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := map[string]string{}
	var stopped []chan error
	for _, sys := range Systems {
		ready := make(chan net.Addr, 1)
		done := make(chan error, 1)
		stopped = append(stopped, done)
		go func() { done <- Serve(ctx, sys, "127.0.0.1:0", func(a net.Addr) { ready <- a }) }()
		select {
		case a := <-ready:
			addrs[sys] = a.String()
		case err := <-done:
			t.Fatalf("%s: %v", sys, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not start", sys)
		}
	}
	t.Cleanup(func() {
		cancel()
		for _, d := range stopped {
			select {
			case <-d:
			case <-time.After(15 * time.Second):
				t.Error("server did not stop")
			}
		}
	})
	return addrs
}

// TestSystemsServeTheSameMethod checks that both servers give the same
// answer to the same bytes in both encodings, so the benchmark compares
// like with like.
func TestSystemsServeTheSameMethod(t *testing.T) {
	addrs := startServers(t)
	bodies, err := requestBodies(8)
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range Encodings {
		var answers []string
		for _, sys := range Systems {
			res, err := http.Post("http://"+addrs[sys]+Route, contentTypes[enc], bytes.NewReader(bodies[enc]))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != contentTypes[enc] {
				t.Fatalf("%s %s: %d %q %q", sys, enc, res.StatusCode, res.Header.Get("Content-Type"), b)
			}
			answers = append(answers, string(b))
		}
		if answers[0] != answers[1] || !strings.Contains(answers[0], "Hello, nnnnnnnn!") {
			t.Errorf("%s answers differ or are wrong: %q", enc, answers)
		}
	}
}

func TestRunReportsEveryCell(t *testing.T) {
	addrs := startServers(t)
	cfg := Config{Callers: []int{1, 4}, Duration: 150 * time.Millisecond, Warmup: 20 * time.Millisecond, Runs: 2, NameSize: 16, Addrs: addrs}
	results, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(Systems) * len(Encodings) * len(cfg.Callers); len(results) != want {
		t.Fatalf("%d results, want %d", len(results), want)
	}
	for _, r := range results {
		if r.RPS <= 0 || r.P50 <= 0 || r.P99 < r.P50 || r.Errors != 0 {
			t.Errorf("implausible result %+v", r)
		}
	}
	table := Table(results)
	if n := strings.Count(table, "\n"); n != len(results)+2 {
		t.Errorf("table has %d lines:\n%s", n, table)
	}
	if !strings.Contains(table, "| json | 4 | logicsvr |") || !strings.Contains(table, "1.00×") {
		t.Errorf("table:\n%s", table)
	}
}

func TestMedian(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median = %v", got)
	}
	if got := median([]time.Duration{}); got != 0 {
		t.Errorf("median of nothing = %v", got)
	}
}
