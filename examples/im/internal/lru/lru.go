// Package lru is the bounded read cache of the IM data-access services
// (accountdata, contactdata, messagedata): a map with least-recently-used
// eviction and an optional time-to-live per entry.
//
// It is only a container. Coherence is the caller's: each data-access
// service writes through (updates the entry after the store acknowledged a
// write), and is the only writer of its data, because svrkit routes every
// call about a user to the same instance. The TTL bounds how long an entry
// can be stale when that assumption breaks (routing changed, a second writer
// appeared).
//
// The LRU itself is hashicorp/golang-lru's simplelru; this package adds the
// lock and the TTL, checked when an entry is read. The library's own
// expiring cache (expirable.LRU) was the other candidate and is not used:
// each one starts a goroutine that never exits and wakes every TTL/100 to
// sweep, so every cache a test or a restarted handler makes leaks one, and
// messagedata's 2s TTL would wake it 50 times a second to find, mostly,
// nothing. BenchmarkCache compares the two.
package lru

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Cache maps K to V, keeping at most its capacity of entries. It is safe
// for concurrent use.
type Cache[K comparable, V any] struct {
	mu  sync.Mutex
	ttl time.Duration
	now func() time.Time
	lru *simplelru.LRU[K, entry[V]]
}

type entry[V any] struct {
	val     V
	expires time.Time // zero: never
}

// New returns a cache of at most size entries (at least 1), each valid for
// ttl after it was stored (0: until evicted).
func New[K comparable, V any](size int, ttl time.Duration) *Cache[K, V] {
	l, err := simplelru.NewLRU[K, entry[V]](max(size, 1), nil)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return &Cache[K, V]{ttl: ttl, now: time.Now, lru: l}
}

// Get returns the value of k, if present and not expired.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lru.Get(k)
	if !ok {
		var zero V
		return zero, false
	}
	if !e.expires.IsZero() && !c.now().Before(e.expires) {
		c.lru.Remove(k)
		var zero V
		return zero, false
	}
	return e.val, true
}

// Put stores v under k, evicting the least recently used entry if full.
func (c *Cache[K, V]) Put(k K, v V) {
	e := entry[V]{val: v}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ttl > 0 {
		e.expires = c.now().Add(c.ttl)
	}
	c.lru.Add(k, e)
}

// Delete removes k.
func (c *Cache[K, V]) Delete(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Remove(k)
}

// Len returns the number of entries, expired ones included.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
