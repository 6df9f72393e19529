package queue_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/svrkit/svrkit/svrkit/queue"
)

func deadLetters(t *testing.T, c *queue.Client, want int) []queue.DeadLetter {
	t.Helper()
	var got []queue.DeadLetter
	waitFor(t, 10*time.Second, fmt.Sprint(want, " dead letters"), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		got, err = c.DeadLetters(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(got) >= want
	})
	return got
}

// TestDeadLetterAfterMaxDeliver: an item that fails every delivery goes to
// the dead-letter stream with the handler's error after MaxDeliver
// deliveries, is acknowledged on its own, and stops blocking its key.
func TestDeadLetterAfterMaxDeliver(t *testing.T) {
	s := newServer(t)
	c := open(t, s, queue.Config{Partitions: 1}, queue.WithMaxDeliver(3), queue.WithBackoff(10*time.Millisecond, 20*time.Millisecond))
	bad := publish(t, c, "k", "poison")
	publish(t, c, "k", "fine")
	var rec recorder
	k := consume(t, c, func(ctx context.Context, m *queue.Message) error {
		rec.add(m)
		if string(m.Payload()) == "poison" {
			return fmt.Errorf("cannot decode item %d\nsecond line", m.Deliveries())
		}
		return nil
	})
	waitFor(t, 10*time.Second, "the next item", func() bool { return k.Stats().Acked == 1 })
	lagZero(t, c)
	got := rec.all()
	if len(got) != 4 || got[2].deliveries != 3 || got[3].payload != "fine" {
		t.Fatalf("deliveries %+v; want poison three times, then fine", got)
	}
	dl := deadLetters(t, c, 1)
	d := dl[0]
	if len(dl) != 1 || d.ID != bad.ID || d.Key != "k" || string(d.Payload) != "poison" || d.Deliveries != 3 ||
		d.Seq != bad.Seq || d.Reason != "cannot decode item 3 second line" || d.Published.IsZero() || d.Died.Before(d.Published) {
		t.Fatalf("dead letters %+v", dl)
	}
	if st := k.Stats(); st.DeadLettered != 1 || st.Retried != 2 {
		t.Errorf("stats %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if lag, err := c.Lag(ctx); err != nil || lag.DeadLetters != 1 {
		t.Errorf("lag %+v, %v; want one dead letter", lag, err)
	}
	if more, err := c.DeadLetters(ctx, d.DeadSeq, 10); err != nil || len(more) != 0 {
		t.Errorf("after the last: %v, %v", more, err)
	}
}

// TestDeadLetterPermanentAndPanic: Permanent skips the retries; a panic is
// a failure like any other.
func TestDeadLetterPermanentAndPanic(t *testing.T) {
	s := newServer(t)
	c := open(t, s, queue.Config{Partitions: 2}, queue.WithMaxDeliver(2), queue.WithBackoff(10*time.Millisecond, 10*time.Millisecond))
	publish(t, c, "a", "permanent")
	publish(t, c, "b", "panic")
	consume(t, c, func(ctx context.Context, m *queue.Message) error {
		if string(m.Payload()) == "panic" {
			panic("handler bug")
		}
		return queue.Permanent(errors.New("unknown group"))
	})
	dl := deadLetters(t, c, 2)
	reasons := map[string]queue.DeadLetter{}
	for _, d := range dl {
		reasons[string(d.Payload)] = d
	}
	if d := reasons["permanent"]; d.Deliveries != 1 || d.Reason != "permanent: unknown group" {
		t.Errorf("permanent: %+v", d)
	}
	if d := reasons["panic"]; d.Deliveries != 2 || !strings.HasPrefix(d.Reason, "handler panicked: handler bug") {
		t.Errorf("panic: %+v", d)
	}
	lagZero(t, c)
}

// TestDeadLetterAfterHangs: an item whose deliveries all time out (its
// handler hangs, or its process dies) is dead-lettered on the delivery
// after the last, without calling a handler again.
func TestDeadLetterAfterHangs(t *testing.T) {
	c, rec, release := hangingPair(t, queue.WithMaxDeliver(1), queue.WithAckWait(300*time.Millisecond))
	dl := deadLetters(t, c, 1)
	release()
	if d := dl[0]; d.Deliveries != 2 || !strings.Contains(d.Reason, "without an answer") {
		t.Fatalf("dead letter %+v", d)
	}
	if rec.len() != 0 {
		t.Fatalf("handler called again: %+v", rec.all())
	}
	lagZero(t, c)
}
