package rpcbench

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func startForTest(t *testing.T, name string) System {
	t.Helper()
	sys, err := Start(name, Options{})
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := sys.Close(); err != nil {
			t.Errorf("close %s: %v", name, err)
		}
	})
	return sys
}

// TestEchoes checks that every system really echoes the payload, byte for
// byte, for each size the harness uses and for an empty one.
func TestEchoes(t *testing.T) {
	for _, name := range SystemNames() {
		t.Run(name, func(t *testing.T) {
			sys := startForTest(t, name)
			for _, size := range []int{0, 16, 1024, 16384} {
				payload := make([]byte, size)
				for i := range payload {
					payload[i] = byte(rand.IntN(256))
				}
				call := sys.NewCaller(payload)
				for i := range 3 { // the same caller again reuses its state
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					got, err := call(ctx)
					cancel()
					if err != nil {
						t.Fatalf("size %d call %d: %v", size, i, err)
					}
					if !bytes.Equal(got, payload) {
						t.Fatalf("size %d call %d: echoed %d bytes that differ from the %d sent", size, i, len(got), size)
					}
				}
			}
		})
	}
}

// TestConcurrentCallersGetTheirOwnEcho checks the multiplexing: callers
// sharing connections each get their own payload back.
func TestConcurrentCallersGetTheirOwnEcho(t *testing.T) {
	for _, name := range SystemNames() {
		t.Run(name, func(t *testing.T) {
			sys := startForTest(t, name)
			const callers = 16
			errs := make(chan error, callers)
			for c := range callers {
				payload := bytes.Repeat([]byte{byte(c)}, 100+c)
				call := sys.NewCaller(payload)
				go func() {
					for range 50 {
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						got, err := call(ctx)
						cancel()
						if err == nil && !bytes.Equal(got, payload) {
							err = errWrongEcho
						}
						if err != nil {
							errs <- err
							return
						}
					}
					errs <- nil
				}()
			}
			for range callers {
				select {
				case err := <-errs:
					if err != nil {
						t.Fatal(err)
					}
				case <-time.After(30 * time.Second):
					t.Fatal("callers did not finish within 30s")
				}
			}
		})
	}
}

type echoError string

func (e echoError) Error() string { return string(e) }

const errWrongEcho = echoError("a caller got another caller's payload back")

// TestRunTinyMatrix runs the harness end to end on one tiny cell per
// system and checks what it reports hangs together.
func TestRunTinyMatrix(t *testing.T) {
	rep, err := Run(Config{
		Duration: 100 * time.Millisecond,
		Warmup:   20 * time.Millisecond,
		Runs:     1,
		Sizes:    []int{64},
		Callers:  []int{4},
		Systems:  SystemNames(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 1 {
		t.Fatalf("%d rows, want 1", len(rep.Rows))
	}
	row := rep.Rows[0]
	for _, name := range SystemNames() {
		r := row.Results[name]
		if r == nil {
			t.Fatalf("no result for %s", name)
		}
		m := r.Median
		if m.Errors != 0 {
			t.Errorf("%s: %d errors, first: %s", name, m.Errors, m.FirstError)
		}
		if m.Calls <= 0 || m.ReqPerSec <= 0 {
			t.Errorf("%s: %d calls, %v req/s", name, m.Calls, m.ReqPerSec)
		}
		if !(m.P50 > 0 && m.P50 <= m.P99 && m.P99 <= m.P999) {
			t.Errorf("%s: percentiles out of order: p50 %v p99 %v p999 %v", name, m.P50, m.P99, m.P999)
		}
		if r.Runs[0].Calls != m.Calls {
			t.Errorf("%s: one run's median differs from the run", name)
		}
	}
	want := row.Results["svrkit"].Median.ReqPerSec / row.Results["grpc"].Median.ReqPerSec
	if row.SvrkitOverGRPC != want {
		t.Errorf("svrkit/grpc = %v, want %v", row.SvrkitOverGRPC, want)
	}
	if m := row.Results["ceiling"].Median; m.FrameworkAllocsPerCall != m.AllocsPerCall {
		t.Errorf("ceiling framework allocs %v differ from total %v, but it uses no protobuf", m.FrameworkAllocsPerCall, m.AllocsPerCall)
	}
	pc := rep.ProtoCost[64]
	if m := row.Results["grpc"].Median; math.Abs(m.AllocsPerCall-m.FrameworkAllocsPerCall-pc.Allocs) > 1e-9 {
		t.Errorf("grpc framework allocs: total %v - framework %v != proto cost %v", m.AllocsPerCall, m.FrameworkAllocsPerCall, pc.Allocs)
	}
}
