package handlers

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/shard"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor"
)

// PushQueue is the Pusher that notifies users' online devices through the
// push service (im.Push on the presence Logicsvr): the second step of the
// message model, between storing an item and the device pulling it.
//
// Notify never blocks the Deliver that calls it: it records the user's
// newest version per inbox type and, if the user was not already waiting,
// queues the user. Notifies for a user that arrive while it waits are
// folded into one, with the newest version: a device syncs everything
// newer than its key whatever the notify says, so one notify is as good
// as many. The waiting users are bounded (MaxWaiting); past the bound a
// notify is dropped and counted (im.push.dropped).
//
// A few workers send the notifies. Ready users wake one worker, not one
// each: the worker takes every user waiting, up to a batch (shard's
// MaxBatchUsers), and wakes another for any it leaves; a batch write
// (DeliverMany's members) queues all its users under one lock with one
// wake-up, so that a fan-out's notifies leave together. The worker
// groups their notifies by the presence instance each user routes to
// (shard.BatchIndexes over the push client's routing, as DeliverMany
// groups its members) and sends one Push.NotifyMany per group: under load one RPC, and one Gateway.PushMany per gateway behind
// it, carries many notifies instead of one each. Batches form only from
// what is already waiting, never by waiting for more, so a lone notify
// goes at once, as Push.Notify, and pays nothing for the batching. A
// presence that predates NotifyMany answers unimplemented; the queue then
// sends one Notify per user and type, and keeps doing so for noManyFor
// before it tries NotifyMany again, so that not every batch pays a
// refused call first. Meanwhile a worker takes one user at a time: a
// batch sent one by one by one worker would leave the others idle.
//
// Refusals stay per user, whatever the batch: a notify the push service
// refuses for a passing reason (overloaded, unavailable, out of time) is
// queued again after a short pause, up to pushAttempts times, because the
// device has no other prompt to sync until the user's next message, which
// may be minutes away; only then is it dropped and counted. A dropped
// notify costs latency, never data: the device finds the item with its
// next sync, which the next notify or its next reconnection triggers.
type PushQueue struct {
	push  im.PushClient
	route svrkit.KeyRouter // the push client's, nil: one instance
	log   *slog.Logger
	// noManyUntil is when NotifyMany is next tried (unix nanoseconds)
	// after presence answered it unimplemented.
	noManyUntil atomic.Int64

	mu      sync.Mutex
	waiting map[uint64]*pending
	ready   []uint64      // the waiting users, oldest first
	kick    chan struct{} // capacity 1: users are ready and no worker was told
	quit    chan struct{}
	done    sync.WaitGroup
}

// pending is what waits for one user: the newest version per SyncType-1,
// and how many times a push of them has been refused.
type pending struct {
	versions [3]uint64
	attempt  int
}

// Push queue sizing.
const (
	MaxWaiting  = 1 << 16
	PushWorkers = 8
	pushTimeout = 2 * time.Second
	// pushAttempts bounds the pushes of one notify; the pauses between
	// them grow from pushRetryPause (20, 40, 80 ms): long enough for an
	// overloaded presence to relax its admission, short against a
	// message's delivery time.
	pushAttempts   = 4
	pushRetryPause = 20 * time.Millisecond
	// maxPushBatch bounds the users one worker takes at once, and
	// maxNotifyMany the notifies of one NotifyMany (presence.proto's
	// limit).
	maxPushBatch  = shard.MaxBatchUsers
	maxNotifyMany = shard.MaxBatchUsers
	// noManyFor is how long the queue sends Notify only after presence
	// answered NotifyMany unimplemented: long enough that an old presence
	// costs few refused calls, short enough that an upgraded one is soon
	// used.
	noManyFor = time.Minute
)

// NewPushQueue starts the workers of a queue pushing through push, the
// push service's client (a key-routed one: its routing groups the
// batches). Close stops them.
func NewPushQueue(push svrkit.Invoker, log *slog.Logger) *PushQueue {
	q := &PushQueue{
		push:    im.NewPushClient(push),
		route:   shard.Router(push),
		log:     log,
		waiting: map[uint64]*pending{},
		kick:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
	}
	for range PushWorkers {
		q.done.Add(1)
		go q.work()
	}
	return q
}

// Notify implements Pusher.
func (q *PushQueue) Notify(_ context.Context, user uint64, item *im.SyncItem) {
	v, ok := versionsOf(item)
	if !ok {
		return
	}
	monitor.Add(im.Monitor_PUSH_NOTIFIES_ID, 1)
	q.queue(user, v, 0)
}

// versionsOf is item's version in the slot of its sync type (SyncType-1),
// as pending keeps them; false for a type the queue does not push.
func versionsOf(item *im.SyncItem) ([3]uint64, bool) {
	var v [3]uint64
	t := int(item.GetType()) - 1
	if t < 0 || t >= len(v) {
		return v, false
	}
	v[t] = item.GetVersion()
	return v, true
}

// notifyMany is Notify for the new items of one batch write (DeliverMany's
// members), queued under one lock with one wake-up, so that a worker finds
// them all waiting and sends them as one batch, not the first one alone.
func (q *PushQueue) notifyMany(users []uint64, items []*im.SyncItem) {
	q.mu.Lock()
	n := 0
	for i, user := range users {
		if v, ok := versionsOf(items[i]); ok {
			q.queueLocked(user, v, 0)
			n++
		}
	}
	q.mu.Unlock()
	monitor.Add(im.Monitor_PUSH_NOTIFIES_ID, int64(n))
	q.wake()
}

// queue folds versions into what waits for user, and queues the user if
// it was not waiting. attempt is the number of refused pushes behind
// these versions (0 for a new notify); a user's entry keeps the lowest,
// since a new notify deserves its own full set of attempts.
func (q *PushQueue) queue(user uint64, versions [3]uint64, attempt int) {
	q.mu.Lock()
	q.queueLocked(user, versions, attempt)
	q.mu.Unlock()
	q.wake()
}

// queueLocked is queue without the lock and the wake-up.
func (q *PushQueue) queueLocked(user uint64, versions [3]uint64, attempt int) {
	p := q.waiting[user]
	if p == nil {
		if len(q.waiting) >= MaxWaiting {
			monitor.Add(im.Monitor_PUSH_DROPPED_ID, 1)
			return
		}
		p = &pending{attempt: attempt}
		q.waiting[user] = p
		q.ready = append(q.ready, user)
	}
	p.attempt = min(p.attempt, attempt)
	for i, v := range versions {
		p.versions[i] = max(p.versions[i], v)
	}
}

// wake tells one idle worker that users are ready, unless one was told
// already and has not looked yet. One signal, not one per user: a worker
// woken per user would take that user alone (the eight workers took the
// first eight members of every fan-out one by one), where one worker
// woken for a batch takes it whole.
func (q *PushQueue) wake() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// take removes and returns the users a worker sends next: all that are
// ready, up to maxPushBatch, or one while presence lacks NotifyMany (a
// batch sent one by one by one worker would leave the others idle), with
// what waits for each. It wakes another worker for any it leaves.
func (q *PushQueue) take() ([]uint64, []*pending) {
	limit := maxPushBatch
	if !q.manyOK() {
		limit = 1
	}
	q.mu.Lock()
	n := min(len(q.ready), limit)
	users := slices.Clone(q.ready[:n])
	q.ready = q.ready[n:]
	if len(q.ready) == 0 {
		q.ready = nil // let a burst's array go
	}
	ps := make([]*pending, n)
	for i, u := range users {
		ps[i] = q.waiting[u]
		delete(q.waiting, u)
	}
	left := len(q.ready) > 0
	q.mu.Unlock()
	if left {
		q.wake()
	}
	return users, ps
}

func (q *PushQueue) work() {
	defer q.done.Done()
	for {
		select {
		case <-q.quit:
			return
		case <-q.kick:
		}
		users, ps := q.take()
		if len(users) == 0 {
			continue // another worker took them
		}
		var ns []*im.PushNotifyRequest
		var of []int // ns[j] is for users[of[j]]
		for i, p := range ps {
			for t, version := range p.versions {
				if version != 0 {
					ns = append(ns, &im.PushNotifyRequest{UserId: users[i], Notify: &im.SyncNotify{Type: im.SyncType(t + 1), Version: version}})
					of = append(of, i)
				}
			}
		}
		q.settle(users, ps, ns, of, q.send(ns))
	}
}

// manyOK reports whether NotifyMany is to be tried: presence has not
// answered it unimplemented within noManyFor.
func (q *PushQueue) manyOK() bool { return time.Now().UnixNano() >= q.noManyUntil.Load() }

// send pushes ns, one NotifyMany per presence instance (several at once),
// and returns each notify's error.
func (q *PushQueue) send(ns []*im.PushNotifyRequest) []error {
	errs := make([]error, len(ns))
	users := make([]uint64, len(ns))
	for j, n := range ns {
		users[j] = n.GetUserId()
	}
	batches := shard.BatchIndexes(users, q.route, maxNotifyMany)
	_ = shard.ForEach(context.Background(), len(batches), len(batches), func(_ context.Context, k int) error {
		q.sendBatch(ns, batches[k], errs)
		return nil
	})
	return errs
}

// sendBatch pushes the notifies ns[idx...], which route to one presence
// instance, and records their errors in errs. One notify goes as Notify,
// which every presence knows; so do all while presence lacks NotifyMany.
func (q *PushQueue) sendBatch(ns []*im.PushNotifyRequest, idx []int, errs []error) {
	if len(idx) > 1 && q.manyOK() {
		batch := shard.Pick(ns, idx)
		ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
		_, err := q.push.NotifyMany(ctx, &im.PushNotifyManyRequest{UserId: batch[0].GetUserId(), Notifies: batch})
		cancel()
		if svrkit.CodeOf(err) != svrkit.Unimplemented {
			for _, j := range idx {
				errs[j] = err
			}
			return
		}
		q.noManyUntil.Store(time.Now().Add(noManyFor).UnixNano())
		q.log.Info("messagedata: presence lacks Push.NotifyMany; notifying one by one", "for", noManyFor)
	}
	for _, j := range idx {
		ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
		_, errs[j] = q.push.Notify(ctx, ns[j])
		cancel()
	}
}

// settle handles the outcome of ns, the notifies of users (ns[j] is for
// users[of[j]], errs[j] its error), per user: what was refused for a
// passing reason is queued again after a pause, unless the user's
// attempts are spent; the rest of what failed is dropped and counted.
func (q *PushQueue) settle(users []uint64, ps []*pending, ns []*im.PushNotifyRequest, of []int, errs []error) {
	again := make([][3]uint64, len(users))
	retry := make([]bool, len(users))
	for j, err := range errs {
		i := of[j]
		switch {
		case err == nil:
		case ps[i].attempt+1 < pushAttempts && passing(err):
			again[i][ns[j].GetNotify().GetType()-1], retry[i] = ns[j].GetNotify().GetVersion(), true
		default:
			monitor.Add(im.Monitor_PUSH_DROPPED_ID, 1)
			q.log.Debug("messagedata: push", "user", users[i], "attempt", ps[i].attempt+1, "err", err)
		}
	}
	for i, user := range users {
		if !retry[i] {
			continue
		}
		attempt, versions := ps[i].attempt+1, again[i]
		time.AfterFunc(pushRetryPause<<(attempt-1), func() {
			select {
			case <-q.quit:
			default:
				q.queue(user, versions, attempt)
			}
		})
	}
}

// passing reports whether a push failed for a reason that may be gone in
// a moment: the push service shed it, was restarting, or ran out of time.
func passing(err error) bool {
	switch svrkit.CodeOf(err) {
	case svrkit.Overloaded, svrkit.Unavailable, svrkit.ResourceExhausted, svrkit.DeadlineExceeded:
		return true
	}
	return false
}

// Close stops the workers; notifies still waiting are dropped.
func (q *PushQueue) Close() {
	close(q.quit)
	q.done.Wait()
}
