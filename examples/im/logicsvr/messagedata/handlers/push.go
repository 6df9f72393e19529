package handlers

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor"
)

// PushQueue is the Pusher that notifies users' online devices through the
// push service (im.Push on the presence Logicsvr): the second step of the
// message model, between storing an item and the device pulling it.
//
// Notify never blocks the Deliver that calls it: it records the user's
// newest version per inbox type and, if the user was not already waiting,
// queues the user; a few workers send one Push.Notify per waiting user and
// type. Notifies for a user that arrive while it waits are folded into
// one, with the newest version: a device syncs everything newer than its
// key whatever the notify says, so one notify is as good as many. The
// waiting users are bounded (MaxWaiting); past the bound a notify is
// dropped and counted (im.push.dropped). A notify the push service
// refuses for a passing reason (overloaded, unavailable, out of time) is
// queued again after a short pause, up to pushAttempts times, because the
// device has no other prompt to sync until the user's next message, which
// may be minutes away; only then is it dropped and counted. A dropped
// notify costs latency, never data: the device finds the item with its
// next sync, which the next notify or its next reconnection triggers.
type PushQueue struct {
	push im.PushClient
	log  *slog.Logger

	mu      sync.Mutex
	waiting map[uint64]*pending
	ready   chan uint64
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
)

// NewPushQueue starts the workers of a queue pushing through push. Close
// stops them.
func NewPushQueue(push im.PushClient, log *slog.Logger) *PushQueue {
	q := &PushQueue{
		push:    push,
		log:     log,
		waiting: map[uint64]*pending{},
		ready:   make(chan uint64, MaxWaiting),
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
	t := int(item.GetType()) - 1
	if t < 0 || t >= 3 {
		return
	}
	monitor.Add(im.Monitor_PUSH_NOTIFIES_ID, 1)
	var v [3]uint64
	v[t] = item.GetVersion()
	q.queue(user, v, 0)
}

// queue folds versions into what waits for user, and queues the user if
// it was not waiting. attempt is the number of refused pushes behind
// these versions (0 for a new notify); a user's entry keeps the lowest,
// since a new notify deserves its own full set of attempts.
func (q *PushQueue) queue(user uint64, versions [3]uint64, attempt int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.waiting[user]
	if p == nil {
		if len(q.waiting) >= MaxWaiting {
			monitor.Add(im.Monitor_PUSH_DROPPED_ID, 1)
			return
		}
		p = &pending{attempt: attempt}
		q.waiting[user] = p
		q.ready <- user // cannot block: at most MaxWaiting users wait
	}
	p.attempt = min(p.attempt, attempt)
	for i, v := range versions {
		p.versions[i] = max(p.versions[i], v)
	}
}

func (q *PushQueue) work() {
	defer q.done.Done()
	for {
		var user uint64
		select {
		case <-q.quit:
			return
		case user = <-q.ready:
		}
		q.mu.Lock()
		p := q.waiting[user]
		delete(q.waiting, user)
		q.mu.Unlock()
		var again [3]uint64
		retry := false
		for t, version := range p.versions {
			if version == 0 {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
			_, err := q.push.Notify(ctx, &im.PushNotifyRequest{UserId: user, Notify: &im.SyncNotify{Type: im.SyncType(t + 1), Version: version}})
			cancel()
			switch {
			case err == nil:
			case p.attempt+1 < pushAttempts && passing(err):
				again[t], retry = version, true
			default:
				monitor.Add(im.Monitor_PUSH_DROPPED_ID, 1)
				q.log.Debug("messagedata: push", "user", user, "attempt", p.attempt+1, "err", err)
			}
		}
		if retry {
			attempt := p.attempt + 1
			time.AfterFunc(pushRetryPause<<(attempt-1), func() {
				select {
				case <-q.quit:
				default:
					q.queue(user, again, attempt)
				}
			})
		}
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
