package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Handler processes one delivered message. Returning nil acknowledges it;
// returning an error refuses it, and the server delivers it again after the
// consumer's backoff, until WithMaxDeliver deliveries, after which it goes
// to the dead-letter stream with the error as the reason. Permanent(err)
// skips the retries. A panic counts as an error.
//
// ctx expires when the ack wait does (the server is about to deliver the
// message again) or when the consumer stops; the handler should return
// then. Handlers of different partitions run concurrently; within a
// partition one at a time, in publish order.
type Handler func(ctx context.Context, m *Message) error

// Consumer runs a Handler over every partition of the stream. Any number
// of Consumers, in any number of processes, may consume one stream: they
// share the work, and the server still hands each partition out one
// message at a time. Its methods are safe for concurrent use.
type Consumer struct {
	c       *Client
	h       Handler
	opts    consumerOptions
	workers []*partitionWorker

	// handlerCtx is the parent of every handler's context: cancelled when
	// a stop runs out of grace. fetchCtx ends the fetching.
	handlerCtx    context.Context
	cancelHandler context.CancelFunc
	fetchCtx      context.Context
	stopFetching  context.CancelFunc
	done          sync.WaitGroup
	stopOnce      sync.Once

	stats struct{ acked, retried, deadLettered, ackErrors atomic.Uint64 }
}

// Stats are a Consumer's counts since it started, for a monitoring layer
// to read. The backlog is in Client.Lag.
type Stats struct {
	Acked        uint64 // handled and acknowledged
	Retried      uint64 // refused, to be delivered again
	DeadLettered uint64 // moved to the dead-letter stream
	AckErrors    uint64 // acknowledgements that failed to reach the server (the message comes again)
}

// Stats returns the consumer's counts.
func (k *Consumer) Stats() Stats {
	return Stats{
		Acked:        k.stats.acked.Load(),
		Retried:      k.stats.retried.Load(),
		DeadLettered: k.stats.deadLettered.Load(),
		AckErrors:    k.stats.ackErrors.Load(),
	}
}

// consumerName is partition p's durable JetStream consumer. They are
// shared by every Consumer of the stream.
func consumerName(p int) string { return "part-" + strconv.Itoa(p) }

// Consume starts handling the stream's items with h and returns once every
// partition's server-side consumer exists (waiting for the servers until
// ctx is done, DefaultTimeout without a deadline). It runs until Stop or
// the Client's Close. opts override the Client's defaults.
func (c *Client) Consume(ctx context.Context, h Handler, opts ...Option) (*Consumer, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrConfig)
	}
	o, err := c.opts.with(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	k := &Consumer{c: c, h: h, opts: o}
	k.handlerCtx, k.cancelHandler = context.WithCancel(context.Background())
	k.fetchCtx, k.stopFetching = context.WithCancel(k.handlerCtx)
	for p := range c.subjects {
		w := &partitionWorker{k: k, p: p}
		if err := retry(ctx, "create consumer "+consumerName(p), w.bind); err != nil {
			k.cancelHandler()
			return nil, err
		}
		k.workers = append(k.workers, w)
	}
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		k.cancelHandler()
		return nil, ErrClosed
	}
	c.consumers[k] = struct{}{}
	c.mu.Unlock()
	for _, w := range k.workers {
		k.done.Add(1)
		go w.run()
	}
	return k, nil
}

// Stop stops fetching messages and waits for running handlers to return.
// When ctx is done first it cancels their contexts and still waits for
// them to return, then returns ctx's error. Their messages, unless
// acknowledged, are delivered again (at once if the handler returned the
// context's error, else after the ack wait). Calls after the first wait
// as the first did.
func (k *Consumer) Stop(ctx context.Context) error {
	k.stopOnce.Do(func() {
		k.c.mu.Lock()
		delete(k.c.consumers, k)
		k.c.mu.Unlock()
		k.stopFetching()
	})
	finished := make(chan struct{})
	go func() { k.done.Wait(); close(finished) }()
	select {
	case <-finished:
		k.cancelHandler()
		return nil
	case <-ctx.Done():
		k.cancelHandler()
		<-finished
		return ctx.Err()
	}
}

// partitionWorker feeds one partition's messages to the handler, one at a
// time.
type partitionWorker struct {
	k *Consumer
	p int
}

// bind creates or updates the partition's durable consumer. MaxAckPending
// 1 is the ordering: the server delivers the partition's next message only
// once the previous one is acknowledged or dead-lettered, whoever consumes.
// MaxDeliver is unlimited on the server because this package counts
// deliveries itself, to dead-letter with a reason rather than let the
// server drop a message silently.
func (w *partitionWorker) bind(ctx context.Context) error {
	o := w.k.opts
	_, err := w.k.c.js.CreateOrUpdateConsumer(ctx, w.k.c.cfg.Stream, jetstream.ConsumerConfig{
		Durable:       consumerName(w.p),
		Description:   "svrkit/queue partition " + strconv.Itoa(w.p),
		FilterSubject: w.k.c.subjects[w.p],
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.ackWait,
		MaxDeliver:    -1,
		MaxAckPending: 1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		var api *jetstream.APIError
		if errors.As(err, &api) && api.Code == 400 {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
		return err
	}
	return nil
}

func (w *partitionWorker) run() {
	defer w.k.done.Done()
	log := w.k.opts.logger
	wait := 50 * time.Millisecond
	for w.k.fetchCtx.Err() == nil {
		// One message per pull: the server sends no second message of the
		// partition before this one is settled anyway, and a worker busy
		// in a handler leaves no pull request open, so that a redelivery
		// after an ack timeout goes to a consumer that is free.
		p, err := newPuller(w.k.c.nc, w.k.c.cfg.Stream, consumerName(w.p))
		if err == nil {
			err = w.drain(p)
			p.close()
		}
		if w.k.fetchCtx.Err() != nil || w.k.c.closed.Load() {
			return
		}
		log.Warn("queue: consumer interrupted; resuming", "stream", w.k.c.cfg.Stream, "partition", w.p, "err", err)
		select {
		case <-w.k.fetchCtx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
		// The consumer may have been deleted: create it again (if it
		// still exists, it keeps its state).
		ctx, cancel := context.WithTimeout(w.k.fetchCtx, attemptTimeout)
		if err := w.bind(ctx); err != nil {
			log.Warn("queue: cannot re-create consumer", "stream", w.k.c.cfg.Stream, "partition", w.p, "err", err)
		}
		cancel()
	}
}

// drain handles messages until pulling fails or fetching stops.
func (w *partitionWorker) drain(p *puller) error {
	for {
		msg, err := p.next(w.k.fetchCtx)
		if err != nil {
			return err
		}
		w.deliver(msg)
	}
}

// deliver runs the handler on one message and settles it.
func (w *partitionWorker) deliver(msg *nats.Msg) {
	k := w.k
	meta, err := msg.Metadata()
	if err != nil { // not a JetStream delivery; cannot happen on a pull consumer
		k.opts.logger.Error("queue: undecodable delivery", "stream", k.c.cfg.Stream, "partition", w.p, "err", err)
		_ = msg.NakWithDelay(k.opts.backoffMin)
		return
	}
	m := &Message{msg: msg, payload: msg.Data, partition: w.p, seq: meta.Sequence.Stream,
		deliveries: int(meta.NumDelivered), published: meta.Timestamp}
	m.id, m.key = decodeItem(msg.Header, m.seq)
	if m.deliveries > k.opts.maxDeliver {
		// The last deliveries ended without an answer: a handler hung
		// past the ack wait, its process died, or its consumer stopped.
		w.deadLetter(m, fmt.Sprintf("delivered %d times, the last without an answer (a handler hung past the ack wait, its process died, or its consumer stopped)", m.deliveries-1))
		return
	}
	ctx, cancel := context.WithTimeout(k.handlerCtx, k.opts.ackWait)
	err = safeCall(ctx, k.h, m)
	stopped := k.handlerCtx.Err() != nil
	cancel()
	if how := m.settled.Load(); how != unsettled { // the handler called Ack or Nak
		if how == settledAck {
			k.stats.acked.Add(1)
		} else {
			k.stats.retried.Add(1)
		}
		if err != nil {
			k.opts.logger.Warn("queue: handler settled its message and then failed", "id", m.id, "err", err)
		}
		return
	}
	switch {
	case err == nil:
		m.settled.Store(settledAck)
		if err := msg.Ack(); err != nil {
			k.stats.ackErrors.Add(1)
			k.opts.logger.Warn("queue: ack failed; the message will come again", "id", m.id, "err", err)
			return
		}
		k.stats.acked.Add(1)
	case stopped:
		// The consumer is stopping: let another one have it now.
		_ = msg.Nak()
		k.stats.retried.Add(1)
	case isPermanent(err) || m.deliveries >= k.opts.maxDeliver:
		w.deadLetter(m, err.Error())
	default:
		_ = msg.NakWithDelay(k.opts.backoff(m.deliveries))
		k.stats.retried.Add(1)
	}
}

// backoff is the delay before delivery n+1 after n failed deliveries.
func (o *consumerOptions) backoff(n int) time.Duration {
	d := o.backoffMin
	for i := 1; i < n && d < o.backoffMax; i++ {
		d *= 2
	}
	return min(d, o.backoffMax)
}

// safeCall runs the handler, turning a panic into an error.
func safeCall(ctx context.Context, h Handler, m *Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return h(ctx, m)
}

// deadLetter copies the message to the dead-letter stream, then
// acknowledges it on its own. If the copy fails it refuses the message
// instead, to try again later; a copy made twice (a crash between the two
// steps) is stored once, as its id is derived from the item's.
func (w *partitionWorker) deadLetter(m *Message, reason string) {
	k := w.k
	d := DeadLetter{ID: m.id, Key: m.key, Payload: m.payload, Reason: reason, Deliveries: m.deliveries,
		Partition: m.partition, Seq: m.seq, Published: m.published}
	ctx, cancel := context.WithTimeout(k.handlerCtx, k.opts.ackWait)
	defer cancel()
	_, err := k.c.publish(ctx, "dead-letter "+m.id, k.c.dead, encodeDeadLetter(d), m.payload)
	if err != nil {
		k.opts.logger.Error("queue: cannot dead-letter; will retry", "id", m.id, "err", err)
		_ = m.msg.NakWithDelay(k.opts.backoffMin)
		k.stats.retried.Add(1)
		return
	}
	m.settled.Store(settledAck)
	if err := m.msg.Ack(); err != nil {
		k.stats.ackErrors.Add(1)
		k.opts.logger.Warn("queue: ack of a dead-lettered message failed; it will come again", "id", m.id, "err", err)
		return
	}
	k.stats.deadLettered.Add(1)
	k.opts.logger.Warn("queue: message dead-lettered", slog.String("stream", k.c.cfg.Stream), slog.String("id", m.id),
		slog.String("key", m.key), slog.Int("deliveries", m.deliveries), slog.String("reason", reason))
}
