package lru

import (
	"testing"
	"time"
)

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	c := New[int, string](2, 0)
	c.Put(1, "a")
	c.Put(2, "b")
	c.Get(1) // 2 is now the least recently used
	c.Put(3, "c")
	if _, ok := c.Get(2); ok {
		t.Error("2 survived eviction")
	}
	for k, want := range map[int]string{1: "a", 3: "c"} {
		if v, ok := c.Get(k); !ok || v != want {
			t.Errorf("Get(%d) = %q, %v; want %q", k, v, ok, want)
		}
	}
	c.Put(1, "a2")
	if v, _ := c.Get(1); v != "a2" || c.Len() != 2 {
		t.Errorf("overwrite: %q, len %d", v, c.Len())
	}
	c.Delete(1)
	if _, ok := c.Get(1); ok {
		t.Error("deleted entry found")
	}
}

func TestTTL(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New[string, int](10, time.Second)
	c.now = func() time.Time { return now }
	c.Put("k", 1)
	now = now.Add(999 * time.Millisecond)
	if _, ok := c.Get("k"); !ok {
		t.Fatal("expired early")
	}
	now = now.Add(time.Millisecond)
	if _, ok := c.Get("k"); ok {
		t.Fatal("not expired at its TTL")
	}
	if c.Len() != 0 {
		t.Error("expired entry kept")
	}
}
