package rpcbench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkEcho runs the harness's matrix under testing.B:
// BenchmarkEcho/<system>/<size>/<callers>. b.N calls are shared by the
// callers, so ns/op is wall time per call at that concurrency (the inverse
// of throughput) and allocs/op counts client, server and protobuf together.
// For the latency percentiles and the side-by-side table use
// `go run ./tools/rpcbench`.
func BenchmarkEcho(b *testing.B) {
	for _, name := range SystemNames() {
		b.Run(name, func(b *testing.B) {
			sys, err := Start(name, Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				if err := sys.Close(); err != nil {
					b.Error(err)
				}
			})
			for _, size := range DefaultConfig().Sizes {
				for _, callers := range DefaultConfig().Callers {
					b.Run(fmt.Sprintf("%d/%d", size, callers), func(b *testing.B) {
						benchEcho(b, sys, size, callers)
					})
				}
			}
		})
	}
}

func benchEcho(b *testing.B, sys System, size, callers int) {
	payload := make([]byte, size)
	calls := make([]Caller, callers)
	for i := range calls {
		calls[i] = sys.NewCaller(payload)
	}
	ctx := context.Background()
	// One call per caller first, so connections are open before timing.
	for _, call := range calls {
		if _, err := call(ctx); err != nil {
			b.Fatal(err)
		}
	}
	var left atomic.Int64
	left.Store(int64(b.N))
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.SetBytes(int64(2 * size))
	b.ResetTimer()
	for _, call := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				if _, err := call(ctx); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}
