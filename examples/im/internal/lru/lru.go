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
package lru

import (
	"container/list"
	"sync"
	"time"
)

// Cache maps K to V, keeping at most its capacity of entries. It is safe
// for concurrent use.
type Cache[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	now   func() time.Time
	order *list.List // front: most recently used
	items map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key     K
	val     V
	expires time.Time // zero: never
}

// New returns a cache of at most size entries (at least 1), each valid for
// ttl after it was stored (0: until evicted).
func New[K comparable, V any](size int, ttl time.Duration) *Cache[K, V] {
	return &Cache[K, V]{max: max(size, 1), ttl: ttl, now: time.Now, order: list.New(), items: map[K]*list.Element{}}
}

// Get returns the value of k, if present and not expired.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el, ok := c.items[k]
	if !ok {
		return zero, false
	}
	e := el.Value.(*entry[K, V])
	if !e.expires.IsZero() && !c.now().Before(e.expires) {
		c.order.Remove(el)
		delete(c.items, k)
		return zero, false
	}
	c.order.MoveToFront(el)
	return e.val, true
}

// Put stores v under k, evicting the least recently used entry if full.
func (c *Cache[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var exp time.Time
	if c.ttl > 0 {
		exp = c.now().Add(c.ttl)
	}
	if el, ok := c.items[k]; ok {
		e := el.Value.(*entry[K, V])
		e.val, e.expires = v, exp
		c.order.MoveToFront(el)
		return
	}
	c.items[k] = c.order.PushFront(&entry[K, V]{key: k, val: v, expires: exp})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*entry[K, V]).key)
	}
}

// Delete removes k.
func (c *Cache[K, V]) Delete(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.order.Remove(el)
		delete(c.items, k)
	}
}

// Len returns the number of entries, expired ones included.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
