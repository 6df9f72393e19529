package lru

import (
	"testing"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
)

// benchCache is what the benchmarks drive: Cache and its peers.
type benchCache interface {
	Get(k uint64) (int, bool)
	Put(k uint64, v int)
}

// expirableLRU is golang-lru's own expiring cache, the peer Cache did not
// choose (see the package doc).
type expirableLRU struct{ *expirable.LRU[uint64, int] }

func (e expirableLRU) Put(k uint64, v int) { e.Add(k, v) }

// The data services' settings: a 30s TTL (accountdata, contactdata).
const benchTTL = 30 * time.Second

var benchPeers = []struct {
	name string
	make func(size int) benchCache
}{
	{"lru", func(size int) benchCache { return New[uint64, int](size, benchTTL) }},
	{"expirable", func(size int) benchCache { return expirableLRU{expirable.NewLRU[uint64, int](size, nil, benchTTL)} }},
	{"handwritten", func(size int) benchCache { return newHand[uint64, int](size, benchTTL) }},
}

// BenchmarkCache compares Cache with its peers on what the data services
// do: reads that hit (a user's record or sync state), writes that evict
// (a cache full of users), and both from every core at once.
func BenchmarkCache(b *testing.B) {
	const size = 1 << 16
	for _, p := range benchPeers {
		b.Run("op=get/peer="+p.name, func(b *testing.B) {
			c := p.make(size)
			for k := range uint64(size) {
				c.Put(k, int(k))
			}
			b.ReportAllocs()
			var k uint64
			for b.Loop() {
				if _, ok := c.Get(k % size); !ok {
					b.Fatal("miss")
				}
				k++
			}
		})
		b.Run("op=put-evicting/peer="+p.name, func(b *testing.B) {
			c := p.make(size)
			b.ReportAllocs()
			var k uint64
			for b.Loop() {
				c.Put(k, int(k))
				k++
			}
		})
		b.Run("op=parallel-mix/peer="+p.name, func(b *testing.B) {
			c := p.make(size)
			for k := range uint64(size / 2) {
				c.Put(k, int(k))
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var k uint64
				for pb.Next() {
					k = k*6364136223846793005 + 1442695040888963407
					if k%10 == 0 {
						c.Put(k%size, 1)
					} else {
						c.Get(k % size)
					}
				}
			})
		})
	}
}
