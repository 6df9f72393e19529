package seq

import (
	"context"
	"sync/atomic"
	"testing"
)

// BenchmarkAllocate measures Next with the default Step: almost always a
// map lookup under the segment mutex, one fsync'd raise per 10000.
func BenchmarkAllocate(b *testing.B) {
	ctx := context.Background()
	db := openKV(b, b.TempDir())
	a := New(db, Options{})
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		user := next.Add(1)
		for pb.Next() {
			if _, err := a.Next(ctx, user, 3); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
