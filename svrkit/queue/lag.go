package queue

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Lag is how far the consumers are behind the publishers, read from the
// servers, so any Client of the stream (a monitoring process too) sees the
// same figures whether or not it consumes.
type Lag struct {
	// Backlog is how many items are stored and not yet acknowledged,
	// in flight included.
	Backlog uint64
	// InFlight is how many are delivered and not yet acknowledged: at most
	// one per partition.
	InFlight int
	// Redelivered is how many of those are on their second or later
	// delivery.
	Redelivered int
	// OldestAge is the age of the oldest item not yet acknowledged; zero
	// when Backlog is.
	OldestAge time.Duration
	// DeadLetters is how many items the dead-letter stream holds.
	DeadLetters uint64
	// Partitions holds the same figures per partition, indexed by
	// partition.
	Partitions []PartitionLag
}

// PartitionLag is one partition's share of Lag.
type PartitionLag struct {
	Backlog     uint64
	InFlight    int
	Redelivered int
	OldestAge   time.Duration
}

// Lag reads the queue's lag. It costs a few requests per partition; read
// it every few seconds, not per item.
func (c *Client) Lag(ctx context.Context) (Lag, error) {
	if c.closed.Load() {
		return Lag{}, ErrClosed
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	lag := Lag{Partitions: make([]PartitionLag, len(c.subjects))}
	var info *jetstream.StreamInfo
	err := retry(ctx, "lag", func(ctx context.Context) error {
		var err error
		info, err = c.stream.Info(ctx, jetstream.WithSubjectFilter(c.prefix+".p.*"))
		return err
	})
	if err != nil {
		return Lag{}, err
	}
	now := time.Now()
	for p, subj := range c.subjects {
		pl := &lag.Partitions[p]
		pl.Backlog = info.State.Subjects[subj]
		lag.Backlog += pl.Backlog
		if pl.Backlog == 0 {
			continue
		}
		// Work-queue retention deletes an item when it is acknowledged,
		// and a partition's items are acknowledged in order: the first
		// one stored is the oldest unacknowledged.
		var first *jetstream.RawStreamMsg
		err := retry(ctx, "lag", func(ctx context.Context) error {
			var err error
			first, err = c.stream.GetMsg(ctx, info.State.FirstSeq, jetstream.WithGetMsgSubject(subj))
			return err
		})
		if err == nil {
			pl.OldestAge = max(now.Sub(first.Time), 0)
			lag.OldestAge = max(lag.OldestAge, pl.OldestAge)
		} else if !errors.Is(err, jetstream.ErrMsgNotFound) { // acknowledged meanwhile
			return Lag{}, err
		}
		var ci *jetstream.ConsumerInfo
		err = retry(ctx, "lag", func(ctx context.Context) error {
			cons, err := c.js.Consumer(ctx, c.cfg.Stream, consumerName(p))
			if err == nil {
				ci = cons.CachedInfo()
			}
			return err
		})
		switch {
		case err == nil:
			pl.InFlight, pl.Redelivered = ci.NumAckPending, ci.NumRedelivered
			lag.InFlight += pl.InFlight
			lag.Redelivered += pl.Redelivered
		case !errors.Is(err, jetstream.ErrConsumerNotFound): // none yet: nothing in flight
			return Lag{}, err
		}
	}
	err = retry(ctx, "lag", func(ctx context.Context) error {
		s, err := c.js.Stream(ctx, c.deadStream())
		if err == nil {
			lag.DeadLetters = s.CachedInfo().State.Msgs
		}
		return err
	})
	if err != nil {
		return Lag{}, err
	}
	return lag, nil
}
