package queue_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svrkit/svrkit/svrkit/queue"
)

// TestConsumeAcknowledges: an item whose handler returned nil is gone: a
// consumer started later gets nothing, and the lag is zero.
func TestConsumeAcknowledges(t *testing.T) {
	s := newServer(t)
	c := open(t, s, queue.Config{Partitions: 3})
	for i := range 9 {
		publish(t, c, fmt.Sprint("k", i), fmt.Sprint(i))
	}
	var rec recorder
	k := consume(t, c, func(ctx context.Context, m *queue.Message) error { rec.add(m); return nil })
	waitFor(t, 10*time.Second, "9 items", func() bool { return k.Stats().Acked == 9 })
	lagZero(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := k.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	var again recorder
	consume(t, open(t, s, queue.Config{Partitions: 3}), func(ctx context.Context, m *queue.Message) error { again.add(m); return nil })
	publish(t, c, "k0", "marker") // delivered after anything unacknowledged in k0's partition
	waitFor(t, 10*time.Second, "the marker", func() bool { return again.len() >= 1 })
	if got := again.all(); len(got) != 1 || got[0].payload != "marker" {
		t.Fatalf("second consumer got %+v; want only the marker", got)
	}
	for _, g := range rec.all() {
		if g.deliveries != 1 {
			t.Errorf("item %s delivered %d times", g.payload, g.deliveries)
		}
	}
}

// TestExplicitAckAndNak: a handler may settle its message itself: Ack
// waits for the server, Nak(delay) has it delivered again after delay.
func TestExplicitAckAndNak(t *testing.T) {
	s := newServer(t)
	c := open(t, s, queue.Config{Partitions: 1})
	publish(t, c, "k", "x")
	var rec recorder
	const delay = 300 * time.Millisecond
	k := consume(t, c, func(ctx context.Context, m *queue.Message) error {
		rec.add(m)
		if m.Deliveries() == 1 {
			return m.Nak(delay)
		}
		if err := m.Ack(ctx); err != nil {
			return err
		}
		if err := m.Ack(ctx); err == nil {
			return errors.New("second Ack succeeded")
		}
		return nil
	})
	waitFor(t, 10*time.Second, "ack", func() bool { return k.Stats().Acked+k.Stats().Retried >= 1 && rec.len() >= 2 })
	lagZero(t, c)
	got := rec.all()
	if len(got) != 2 || got[1].deliveries != 2 {
		t.Fatalf("deliveries %+v; want two", got)
	}
	if gap := got[1].at.Sub(got[0].at); gap < delay {
		t.Errorf("delivered again after %v; Nak asked for %v", gap, delay)
	}
}

// TestErrorRedeliversWithBackoff: a handler error has the item delivered
// again, later each time, and it succeeds on the third delivery.
func TestErrorRedeliversWithBackoff(t *testing.T) {
	s := newServer(t)
	c := open(t, s, queue.Config{Partitions: 1})
	publish(t, c, "k", "x")
	var rec recorder
	const min = 100 * time.Millisecond
	k := consume(t, c, func(ctx context.Context, m *queue.Message) error {
		rec.add(m)
		if m.Deliveries() < 3 {
			return errors.New("not yet")
		}
		return nil
	}, queue.WithBackoff(min, time.Second))
	waitFor(t, 10*time.Second, "success", func() bool { return k.Stats().Acked == 1 })
	got := rec.all()
	if len(got) != 3 {
		t.Fatalf("%d deliveries, want 3", len(got))
	}
	if g := got[1].at.Sub(got[0].at); g < min {
		t.Errorf("first retry after %v, backoff %v", g, min)
	}
	if g := got[2].at.Sub(got[1].at); g < 2*min {
		t.Errorf("second retry after %v, backoff %v", g, 2*min)
	}
	if st := k.Stats(); st.Retried != 2 || st.DeadLettered != 0 {
		t.Errorf("stats %+v", st)
	}
}

// hangOnFirst returns a handler that blocks on an item's first delivery,
// ignoring its context, until release is closed (a hung or dying
// process), and records later deliveries.
func hangOnFirst(rec *recorder, hung chan<- struct{}, release <-chan struct{}) queue.Handler {
	var once sync.Once
	return func(ctx context.Context, m *queue.Message) error {
		if m.Deliveries() == 1 {
			once.Do(func() { close(hung) })
			<-release
			return nil
		}
		rec.add(m)
		return nil
	}
}

// TestRedeliveryAfterCrash: a consumer dies holding an item; once the ack
// wait passes, a new consumer gets it.
func TestRedeliveryAfterCrash(t *testing.T) {
	s := newServer(t)
	const ackWait = 500 * time.Millisecond
	dying := open(t, s, queue.Config{Partitions: 1}, queue.WithAckWait(ackWait))
	publish(t, dying, "k", "x")
	hung, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	var rec recorder
	consume(t, dying, hangOnFirst(&rec, hung, release))
	<-hung
	queue.KillConnection(dying)
	crashed := time.Now()

	c := open(t, s, queue.Config{Partitions: 1}, queue.WithAckWait(ackWait))
	consume(t, c, func(ctx context.Context, m *queue.Message) error { rec.add(m); return nil })
	waitFor(t, 10*time.Second, "redelivery", func() bool { return rec.len() >= 1 })
	g := rec.all()[0]
	if g.deliveries != 2 || g.payload != "x" {
		t.Fatalf("got %+v; want the item's second delivery", g)
	}
	if d := g.at.Sub(crashed); d < ackWait/2 {
		t.Errorf("redelivered %v after the crash, before the ack wait (%v)", d, ackWait)
	}
	lagZero(t, c)
}

// hangingPair starts two consumers of a one-partition stream, on two
// clients as two processes would have, with a handler that hangs on an
// item's first delivery (see hangOnFirst); publishes one item; and returns
// once a handler hangs on it. release lets the hung handler return (it is
// called at the end of the test at the latest).
func hangingPair(t *testing.T, opts ...queue.Option) (c *queue.Client, rec *recorder, release func()) {
	t.Helper()
	s := newServer(t)
	c = open(t, s, queue.Config{Partitions: 1}, opts...)
	hung, released := make(chan struct{}), make(chan struct{})
	rec = &recorder{}
	h := hangOnFirst(rec, hung, released)
	consume(t, c, h)
	consume(t, open(t, s, queue.Config{Partitions: 1}, opts...), h)
	var once sync.Once
	release = func() { once.Do(func() { close(released) }) }
	t.Cleanup(release) // before the consumers' Stop, which waits for the handler
	publish(t, c, "k", "x")
	<-hung
	return c, rec, release
}

// TestRedeliveryAfterAckTimeout: a handler that hangs past the ack wait
// loses its item to another consumer, which gets it as a second delivery.
func TestRedeliveryAfterAckTimeout(t *testing.T) {
	c, rec, release := hangingPair(t, queue.WithAckWait(400*time.Millisecond))
	waitFor(t, 10*time.Second, "redelivery to the other consumer", func() bool { return rec.len() >= 1 })
	release()
	if g := rec.all()[0]; g.deliveries != 2 {
		t.Fatalf("got %+v; want the second delivery", g)
	}
	lagZero(t, c)
}

// TestPerKeyOrder: items of one key are handled in publish order, even
// with failures and redeliveries, two consumers and several publishers,
// while different partitions are handled in parallel.
func TestPerKeyOrder(t *testing.T) {
	s := newServer(t)
	const (
		partitions = 4
		keys       = 12
		perKey     = 25
	)
	cfg := queue.Config{Partitions: partitions}
	opts := []queue.Option{queue.WithBackoff(5*time.Millisecond, 20*time.Millisecond), queue.WithMaxDeliver(100)}
	pub := open(t, s, cfg)

	var (
		mu       sync.Mutex
		next     = map[string]int{} // key → the item expected next
		bad      []string
		running  atomic.Int32
		maxRun   atomic.Int32
		handled  atomic.Int32
		failures atomic.Int32
	)
	h := func(ctx context.Context, m *queue.Message) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			old := maxRun.Load()
			if n <= old || maxRun.CompareAndSwap(old, n) {
				break
			}
		}
		var i int
		fmt.Sscan(string(m.Payload()), &i)
		// Fail one first delivery in five: the retry must come before
		// the key's next item.
		if m.Deliveries() == 1 && (i*7+len(m.Key()))%5 == 0 {
			failures.Add(1)
			return errors.New("transient")
		}
		time.Sleep(time.Millisecond) // let partitions overlap
		mu.Lock()
		defer mu.Unlock()
		if i != next[m.Key()] {
			bad = append(bad, fmt.Sprintf("%s: got item %d, want %d", m.Key(), i, next[m.Key()]))
		}
		next[m.Key()] = i + 1
		handled.Add(1)
		return nil
	}
	consume(t, open(t, s, cfg, opts...), h)
	consume(t, open(t, s, cfg, opts...), h)

	var wg sync.WaitGroup
	for k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("group-%d", k)
			for i := range perKey {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := pub.Publish(ctx, key, []byte(fmt.Sprint(i)))
				cancel()
				if err != nil {
					t.Errorf("publish: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	waitFor(t, 30*time.Second, "every item", func() bool { return handled.Load() == keys*perKey })
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("out of order:\n%s", strings.Join(bad[:min(len(bad), 10)], "\n"))
	}
	if failures.Load() == 0 {
		t.Error("no delivery failed; the test did not exercise redelivery")
	}
	if maxRun.Load() < 2 {
		t.Errorf("at most %d handlers ran at once; partitions should run in parallel", maxRun.Load())
	}
}

// TestStopWaitsThenCancels: Stop lets a running handler finish; when its
// context is done first it cancels the handler and the item comes back at
// once to the next consumer.
func TestStopWaitsThenCancels(t *testing.T) {
	s := newServer(t)
	c := open(t, s, queue.Config{Partitions: 1}, queue.WithAckWait(time.Minute))
	publish(t, c, "k", "x")
	started := make(chan struct{})
	k, err := c.Consume(context.Background(), func(ctx context.Context, m *queue.Message) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := k.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop: %v, want DeadlineExceeded", err)
	}
	var rec recorder
	consume(t, c, func(ctx context.Context, m *queue.Message) error { rec.add(m); return nil })
	// Within far less than the one-minute ack wait.
	waitFor(t, 10*time.Second, "the item back", func() bool { return rec.len() == 1 })
}
