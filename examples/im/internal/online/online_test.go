package online

import (
	"sync"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
)

func TestCount(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	d := New(time.Minute, im.Monitor_ONLINE_DEVICES_ID)
	d.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	d.start.Do(func() {}) // no publishing goroutine in this test
	d.Seen(1, "phone")
	d.Seen(1, "tablet")
	d.Seen(2, "phone")
	d.Seen(1, "phone") // the same device again
	if n := d.Count(); n != 3 {
		t.Errorf("online %d, want 3", n)
	}
	mu.Lock()
	now = now.Add(45 * time.Second)
	mu.Unlock()
	d.Seen(2, "phone")
	mu.Lock()
	now = now.Add(30 * time.Second)
	mu.Unlock()
	if n := d.Count(); n != 1 {
		t.Errorf("online %d after a minute, want 1 (only the device seen since)", n)
	}
}
