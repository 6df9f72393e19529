package lru

import (
	"container/list"
	"sync"
	"time"
)

// handCache is the cache this package implemented by hand (container/list
// and a map) before it used golang-lru: BenchmarkCache keeps it as a peer,
// so the choice can be checked again.
type handCache[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	now   func() time.Time
	order *list.List // front: most recently used
	items map[K]*list.Element
}

type handEntry[K comparable, V any] struct {
	key     K
	val     V
	expires time.Time // zero: never
}

// New returns a cache of at most size entries (at least 1), each valid for
// ttl after it was stored (0: until evicted).
func newHand[K comparable, V any](size int, ttl time.Duration) *handCache[K, V] {
	return &handCache[K, V]{max: max(size, 1), ttl: ttl, now: time.Now, order: list.New(), items: map[K]*list.Element{}}
}

// Get returns the value of k, if present and not expired.
func (c *handCache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el, ok := c.items[k]
	if !ok {
		return zero, false
	}
	e := el.Value.(*handEntry[K, V])
	if !e.expires.IsZero() && !c.now().Before(e.expires) {
		c.order.Remove(el)
		delete(c.items, k)
		return zero, false
	}
	c.order.MoveToFront(el)
	return e.val, true
}

// Put stores v under k, evicting the least recently used entry if full.
func (c *handCache[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var exp time.Time
	if c.ttl > 0 {
		exp = c.now().Add(c.ttl)
	}
	if el, ok := c.items[k]; ok {
		e := el.Value.(*handEntry[K, V])
		e.val, e.expires = v, exp
		c.order.MoveToFront(el)
		return
	}
	c.items[k] = c.order.PushFront(&handEntry[K, V]{key: k, val: v, expires: exp})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*handEntry[K, V]).key)
	}
}

// Delete removes k.
func (c *handCache[K, V]) Delete(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.order.Remove(el)
		delete(c.items, k)
	}
}

// Len returns the number of entries, expired ones included.
func (c *handCache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
