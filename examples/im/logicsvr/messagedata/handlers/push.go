package handlers

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/svrkit/svrkit/examples/im"
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
// dropped and counted (im.push.dropped), as is one the push service does
// not take. A dropped notify costs latency, never data: the device finds
// the item with its next sync, which the next notify or its next
// reconnection triggers.
type PushQueue struct {
	push im.PushClient
	log  *slog.Logger

	mu      sync.Mutex
	waiting map[uint64]*[3]uint64 // user → newest version per SyncType-1
	ready   chan uint64
	quit    chan struct{}
	done    sync.WaitGroup
}

// Push queue sizing.
const (
	MaxWaiting  = 1 << 16
	PushWorkers = 8
	pushTimeout = 2 * time.Second
)

// NewPushQueue starts the workers of a queue pushing through push. Close
// stops them.
func NewPushQueue(push im.PushClient, log *slog.Logger) *PushQueue {
	q := &PushQueue{
		push:    push,
		log:     log,
		waiting: map[uint64]*[3]uint64{},
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
	q.mu.Lock()
	defer q.mu.Unlock()
	v := q.waiting[user]
	if v == nil {
		if len(q.waiting) >= MaxWaiting {
			monitor.Add(im.Monitor_PUSH_DROPPED_ID, 1)
			return
		}
		v = &[3]uint64{}
		q.waiting[user] = v
		q.ready <- user // cannot block: at most MaxWaiting users wait
	}
	v[t] = max(v[t], item.GetVersion())
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
		v := q.waiting[user]
		delete(q.waiting, user)
		q.mu.Unlock()
		for t, version := range v {
			if version == 0 {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
			_, err := q.push.Notify(ctx, &im.PushNotifyRequest{UserId: user, Notify: &im.SyncNotify{Type: im.SyncType(t + 1), Version: version}})
			cancel()
			if err != nil {
				monitor.Add(im.Monitor_PUSH_DROPPED_ID, 1)
				q.log.Debug("messagedata: push", "user", user, "err", err)
			}
		}
	}
}

// Close stops the workers; notifies still waiting are dropped.
func (q *PushQueue) Close() {
	close(q.quit)
	q.done.Wait()
}
