package queue_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/svrkit/svrkit/svrkit/queue"
)

// TestLag: the backlog, what is in flight and the oldest item's age, per
// partition and in total, as any client of the stream sees them.
func TestLag(t *testing.T) {
	s := newServer(t)
	c := open(t, s, queue.Config{Partitions: 2})
	lag := func() queue.Lag {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l, err := c.Lag(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if l := lag(); l.Backlog != 0 || l.OldestAge != 0 || len(l.Partitions) != 2 {
		t.Fatalf("empty queue: %+v", l)
	}
	start := time.Now()
	keys := []string{}
	for i := 0; len(keys) < 5; i++ { // 3 items in partition 0, 2 in partition 1
		k := fmt.Sprint("k", i)
		if p := c.Partition(k); (p == 0 && count(keys, c, 0) < 3) || (p == 1 && count(keys, c, 1) < 2) {
			keys = append(keys, k)
			publish(t, c, k, "x")
		}
	}
	waitFor(t, 5*time.Second, "items to age", func() bool { return time.Since(start) > 50*time.Millisecond })
	l := lag()
	if l.Backlog != 5 || l.Partitions[0].Backlog != 3 || l.Partitions[1].Backlog != 2 || l.InFlight != 0 {
		t.Fatalf("lag %+v; want 3+2 items, none in flight", l)
	}
	if l.OldestAge < 50*time.Millisecond || l.OldestAge > time.Since(start)+time.Second || l.OldestAge < l.Partitions[1].OldestAge {
		t.Fatalf("oldest age %v (partitions %+v), published %v ago", l.OldestAge, l.Partitions, time.Since(start))
	}

	hung, release := make(chan struct{}), make(chan struct{})
	var rec recorder
	var seen recorder
	h := hangOnFirst(&rec, hung, release)
	k := consume(t, c, func(ctx context.Context, m *queue.Message) error {
		if m.Partition() == 0 {
			return h(ctx, m)
		}
		seen.add(m)
		return nil
	})
	<-hung
	waitFor(t, 5*time.Second, "partition 1 drained", func() bool { return seen.len() == 2 })
	waitFor(t, 5*time.Second, "lag to show it", func() bool {
		l := lag()
		return l.Backlog == 3 && l.InFlight == 1 && l.Partitions[0].InFlight == 1 && l.Partitions[1].Backlog == 0 && l.Partitions[1].OldestAge == 0
	})
	close(release)
	waitFor(t, 5*time.Second, "all acknowledged", func() bool { return k.Stats().Acked == 5 })
	// An acknowledgement is sent without waiting for the server, which
	// deletes the item when it gets there: the lag clears a moment after
	// the consumer counts the last one.
	waitFor(t, 5*time.Second, "the lag to clear", func() bool {
		l := lag()
		return l.Backlog == 0 && l.InFlight == 0 && l.OldestAge == 0
	})
}

func count(keys []string, c *queue.Client, p int) int {
	n := 0
	for _, k := range keys {
		if c.Partition(k) == p {
			n++
		}
	}
	return n
}
