package storagetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/svrkit"
)

// BenchmarkReplicas compares the storage service as one store and as a
// Raft group of 3 replicas (in this process, on loopback, each with its own
// directory), in the same run: KV writes (a Put, committed by a majority)
// and linearizable reads (a Get, confirmed by a heartbeat round), over
// svrkit RPC through the routed client, 8 callers at once. It reports
// p50 and p99 latency beside ns/op; a call the overload control sheds
// (svrkit.Overloaded, refused unsent) is retried and counted as "shed".
//
//	go test ./examples/im/internal/storagetest -run '^$' -bench Replicas -benchtime 3s -count 5
func BenchmarkReplicas(b *testing.B) {
	value := make([]byte, 200)
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			st := Start(b, b.TempDir(), &Options{Replicas: n}).Storage(b)
			ctx := context.Background()
			// Until a leader serves.
			deadline := time.Now().Add(30 * time.Second)
			for {
				if _, err := st.Put(ctx, &im.KVPutRequest{UserId: 1, Key: []byte("warm"), Value: value, AnyVersion: true}); err == nil {
					break
				} else if time.Now().After(deadline) {
					b.Fatal(err)
				}
			}
			b.Run("put", func(b *testing.B) {
				measure(b, func(user uint64, i int) error {
					_, err := st.Put(ctx, &im.KVPutRequest{UserId: user, Key: []byte("k"), Value: value, AnyVersion: true})
					return err
				})
			})
			b.Run("get", func(b *testing.B) {
				measure(b, func(user uint64, i int) error {
					_, err := st.Get(ctx, &im.KVGetRequest{UserId: 1, Key: []byte("warm")})
					return err
				})
			})
		})
	}
}

// measure runs op from 8 goroutines and reports p50 and p99 latency.
func measure(b *testing.B, op func(user uint64, i int) error) {
	var mu sync.Mutex
	var lat []time.Duration
	var next atomic.Uint64
	var shed atomic.Int64
	b.SetParallelism(4) // × GOMAXPROCS 2
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		user := next.Add(1)
		var mine []time.Duration
		for i := 0; pb.Next(); i++ {
			t0 := time.Now()
			err := op(user, i)
			for svrkit.CodeOf(err) == svrkit.Overloaded {
				shed.Add(1)
				err = op(user, i)
			}
			if err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(shed.Load()), "shed")
}
