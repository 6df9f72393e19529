// Package queue is svrkit's durable asynchronous queue: work a service
// accepts now and does after its reply, such as writing a group message
// into each member's inbox. A publisher's call returns once the item is
// stored; consumers handle items with explicit acknowledgement, get them
// again after a crash or a timeout, see the items of one key in order, and
// find the ones that never succeed in a dead-letter stream with the reason.
//
//	q, err := queue.Open(ctx, queue.Config{URLs: urls, Token: token, Stream: "FANOUT"})
//	r, err := q.Publish(ctx, groupID, payload)            // stored: on disk, or on a quorum
//	k, err := q.Consume(ctx, func(ctx context.Context, m *queue.Message) error {
//		return fanOut(ctx, m.Key(), m.Payload())   // nil acks; an error retries later
//	})
//	lag, err := q.Lag(ctx)                                // backlog, in flight, oldest age
//
// # Engine
//
// The queue is NATS JetStream, used as it is: JetStream stores the items
// (file storage), replicates them (Raft, per stream), drops duplicate
// publishes (Nats-Msg-Id within a window), tracks every consumer's
// position and acknowledgements and redelivers what is not acknowledged.
// This package adds none of that; it is a thin layer that fixes one way of
// using JetStream (subjects, stream and consumer settings) so that every
// svrkit service gets the same guarantees, plus what JetStream leaves to
// its clients: the partitioning of keys, retries with backoff, and the
// dead-letter stream. On one machine the server runs embedded (package
// svrkit/queue/embedded, the queuesvr service that svrkit up starts); a
// program that outgrows one machine points Config.URLs at a NATS cluster
// and sets Replicas to 3, with no code change.
//
// # Data flow
//
// A stream named S has subjects svrkit.queue.S.p.0 to .p.N-1, one per
// partition, with work-queue retention: an item is deleted once
// acknowledged. Publish hashes the key (FNV-1a) to a partition, sends the
// item to that subject with the id in Nats-Msg-Id and the key in a header,
// and waits for JetStream's acknowledgement (PubAck). Each partition has
// one durable pull consumer on the server, part-P, filtered to its subject,
// with explicit acks and at most one message in flight. A Consumer runs one
// goroutine per partition that pulls one message, runs the handler,
// acknowledges or refuses it, and pulls the next. Dead letters go to a
// second stream, S_DEAD.
//
// # Order
//
// Items of one key are handled one at a time, in the order their Publish
// calls returned; items of different partitions are handled in parallel.
// The mechanism is the server's: each partition's consumer has
// MaxAckPending 1, so JetStream delivers a partition's next item only once
// the previous one is acknowledged (or dead-lettered), and a refused or
// timed-out item is delivered again before any later one. Because the
// server enforces it, order holds across consumer processes (all share the
// partition consumers) and across their crashes.
//
// The alternatives were worse. Client-side sequencing over a larger window
// breaks on redelivery: item n fails, item n+1 of the same key is already
// being handled. A consumer per key does not scale to millions of groups.
// Ordered (ephemeral) consumers have no acknowledgements at all.
//
// The price is head-of-line blocking: a slow or failing item holds back
// every key of its partition until it succeeds or is dead-lettered, and a
// partition handles at most one item per handler run plus one round trip.
// Partitions are the unit of parallelism: choose Config.Partitions above
// the number of handlers that should run at once. The count is fixed when
// the stream is created (changing it would move keys between partitions
// mid-stream); Open refuses a client configured with another.
//
// One caveat: a handler that outlives its ack wait is not stopped (its
// context is cancelled; it should return). The server has by then
// delivered the item again, possibly elsewhere, and the key's next item
// may start while the stale run finishes. Set WithAckWait above the
// handler's worst case.
//
// # Delivery guarantees
//
// Delivery is at least once. An item is handled again when its handler
// failed, when it ran past the ack wait, when its process died before the
// acknowledgement reached the server, and when a publisher retried with a
// new id. Each item carries a unique id (Message.ID, the same on every
// delivery); a handler whose effects must happen once records the id with
// them, or makes them idempotent by other means (IM inbox writes are keyed
// by message id). A publisher that retries after an error or a crash uses
// PublishWithID with the same id: within Config.DuplicateWindow the server
// stores it once. Publish itself retries internally, with the same id,
// while a cluster elects a leader.
//
// "Acknowledged" (Publish returned nil) means:
//
//   - Replicas 1 (one server): written to the server's file store. It
//     survives the server process dying. It survives the machine dying only
//     once fsync'd: at once with the server's sync-always setting, else
//     within its sync interval (queuesvr's -sync).
//   - Replicas 3: stored by a quorum (two of three servers), so it survives
//     the loss of any one server, disk included.
//
// Publish returning an error does not mean the item was not stored (the
// acknowledgement may have been lost); it means the caller does not know.
//
// # Failures and dead letters
//
// A handler's error refuses the item: it is delivered again after the
// consumer's backoff (WithBackoff, doubling per delivery). After
// WithMaxDeliver deliveries, or at once for an error wrapped by Permanent,
// the item is copied to the S_DEAD stream with its id, key, delivery count
// and the error as the reason, and then acknowledged on S. A delivery that
// got no answer at all (the handler hung, the process died) counts too:
// the delivery after the last is dead-lettered without calling the handler.
// This is done here rather than with JetStream's own MaxDeliver, which
// stops redelivering and keeps no reason, only an advisory nobody may read.
// The copy carries an id derived from the item's, so a crash between copy
// and acknowledgement stores it once. Client.DeadLetters reads them.
//
// # Lag
//
// Client.Lag reads, from the servers, each partition's backlog (stored,
// not acknowledged), what is in flight, how much of it is redelivered, the
// oldest item's age and the dead-letter count; Consumer.Stats counts what
// one consumer acknowledged, retried and dead-lettered. Both are for a
// monitoring layer to read on a period; neither is pushed anywhere.
//
// # What it does not do
//
// No exactly-once handling (see above), no transactions with other
// storage, no priorities, no delayed publish, no consumer groups that each
// see every item (work-queue retention: a second independent pipeline is a
// second stream).
package queue
