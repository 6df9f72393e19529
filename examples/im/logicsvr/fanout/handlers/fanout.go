// Package handlers implements the fanout Logicsvr (idl/im/fanout.proto):
// the group fan-out worker. NewFanoutWorker is the constructor its
// generated main calls; it starts a consumer of the GROUP_FANOUT queue
// that runs until the Logicsvr shuts down.
//
// # What one queue item does
//
// An item (package examples/im/internal/groups) names a group G and a seq
// S of its log, and asks that every entry of G up to S be in its members'
// inboxes. The worker reads the log from the group's fanned seq on
// (GroupData.ReadLog, which returns the entries with the group's record,
// read together), writes each entry into the inbox of each member at the
// entry's seq (the record says who: see package groupdata's handlers), one
// entry after the other, then moves the fanned seq past the entries done
// (GroupData.SetFanned), and acknowledges the item once the fanned seq has
// reached S. An item whose S is fanned already (a redelivery, a repeated
// publish, an item whose entries an earlier item covered) is acknowledged
// at once.
//
// # Exactly once per member
//
// Each inbox write goes through MessageData.DeliverMany with the dedup id
// "g:<group>:<seq>" (unique per user, the same for every member and on
// every attempt), into the MESSAGES inbox for a message and the GROUPS
// inbox for a change. The inbox stores a dedup id once per user, so
// whatever was written before a crash, a failed write or a redelivery,
// writing the entry again to every member leaves each member with it
// exactly once. DeliverMany notifies each member's online devices of a
// new item (messagedata's Pusher), and not of a repeat. A change also
// updates the user index (UserGroups) of the members it added or removed,
// idempotently by its seq: with UserGroups.ApplyMembershipMany, one call
// per groupdata instance and one storage write per storage instance for
// all of them (a creation names up to 500), since the group's next
// entries wait for it. The group Logicsvr wrote the same entries before
// it answered, so here they are usually found recorded, and nothing is
// written.
//
// # Batches
//
// An entry's members are grouped by the messagedata instance each routes
// to (package shard: a member's writes must reach the instance its own
// calls reach, which holds its cache), and each group is cut into even
// batches of at most "batch" members (default 500, a whole group; fewer
// when the item is large, so that a batch stays within DeliverMany's byte
// limit). messagedata splits a batch again by storage instance, and
// storage writes each part with one fsync: a 500-member group on one
// shard costs one call and one fsync, not 500.
//
// Why whole groups and not smaller batches in parallel (128 before): the
// inbox holds the lock stripes of every user of a batch across its
// commit, and two batches of 128 users almost surely share a stripe, so
// parallel batches to one storage instance ran one after the other, each
// paying its own version allocation and fsync. Four batches took four
// fsyncs in a row, and a slow fsync (after a memtable flush) four times
// over: the slowest fan-outs of a run.
//
// # Order
//
// The queue hands out the items of one group one at a time (they share a
// key), so one group's entries are fanned out by one worker run at a
// time; within a run, entry S+1's writes start only when every write of
// entry S is done. So each member's inbox gets a group's entries in log
// order: all members see a group's messages in the same order, and a
// member's view of a group is never missing an entry a later one depends
// on. Different groups fan out in parallel, as many as the queue has
// partitions; within an entry, the batches run in parallel ("parallel",
// default 4 calls), and all runs together keep at most "max_in_flight"
// calls outstanding (default 16), so a burst of groups does not bury
// messagedata.
//
// # Priority
//
// A fan-out is work already accepted: its sender has its reply. Every
// call of a run (the log reads, the inbox writes, the index updates)
// carries business priority Priority, above the sends', and one user
// priority, the group's, so that an overloaded messagedata or storage
// admits or sheds a whole fan-out at once (see Priority).
//
// # Failures
//
// Any failed write (messagedata or storage restarting, a timeout) fails
// the run: the item is not acknowledged and the queue delivers it again
// after a backoff (100ms, doubling to 10s), for up to an hour, during
// which the group's later entries wait (they are behind it in the queue)
// and other groups, in other partitions, go on. The entries written
// before the failure are written again as repeats. A log entry that does
// not decode cannot be fanned out by any retry: it is skipped and logged,
// so that it cannot stop its group for good.
//
// # Lag
//
// Every second the worker reads the queue's lag (the oldest item not
// acknowledged, and how many there are) and sets the monitor points
// im.fanout.lag_ms and im.fanout.backlog; GetStats returns them with the
// process's counts and the fan-out delay of recent messages (delay.go).
package handlers

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/groups"
	"github.com/svrkit/svrkit/examples/im/internal/shard"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor"
	"github.com/svrkit/svrkit/svrkit/queue"
)

// Config is the fanout Logicsvr's "app" settings.
type Config struct {
	// Queue is the fan-out queue (required).
	Queue groups.QueueConfig `json:"queue"`
	// Batch is the most members one MessageData.DeliverMany call writes
	// (default and at most shard.MaxBatchUsers).
	Batch int `json:"batch,omitempty"`
	// Parallel bounds the DeliverMany calls of one entry in flight
	// (default 4).
	Parallel int `json:"parallel,omitempty"`
	// MaxInFlight bounds the DeliverMany calls of all runs in flight
	// (default 16).
	MaxInFlight int `json:"max_in_flight,omitempty"`
	// AckWait is how long a run may take before the queue hands its item
	// to another worker (default 60s).
	AckWait logicsvr.Duration `json:"ack_wait,omitempty"`
}

// The queue's retry schedule for a failed run: about an hour of retries.
const (
	backoffMin = 100 * time.Millisecond
	backoffMax = 10 * time.Second
	maxDeliver = 400
	// readPage is how many log entries one ReadLog returns.
	readPage = 64
)

// NewFanoutWorker returns the FanoutWorker handler and starts consuming
// the queue. It needs im.GroupData, im.UserGroups and im.MessageData in
// the routing table and the queue in the app config.
func NewFanoutWorker(h *logicsvr.Host) (im.FanoutWorkerServer, error) {
	cfg := Config{AckWait: logicsvr.Duration(time.Minute)}
	if err := h.AppConfig(&cfg); err != nil {
		return nil, err
	}
	if h.InfoOnly() {
		return &Worker{}, nil
	}
	if err := cfg.Queue.Check(h.Config().Dev); err != nil {
		return nil, err
	}
	data, err := h.Client(im.GroupData_ServiceName)
	if err != nil {
		return nil, err
	}
	index, err := h.Client(im.UserGroups_ServiceName)
	if err != nil {
		return nil, err
	}
	messages, err := h.Client(im.MessageData_ServiceName)
	if err != nil {
		return nil, err
	}
	w := New(im.NewGroupDataClient(data), im.NewUserGroupsClient(index), im.NewMessageDataClient(messages), cfg, h.Logger())
	w.route = shard.Router(messages)
	w.indexer.Route = shard.Router(index)
	q := groups.DialQueue(cfg.Queue, "fanout", h.Logger())
	stop := w.Start(q, time.Duration(cfg.AckWait))
	h.OnShutdown(func(ctx context.Context) error {
		err := stop(ctx)
		q.Close()
		return err
	})
	return w, nil
}

// Worker is the fan-out worker and its FanoutWorker handler.
type Worker struct {
	im.UnimplementedFanoutWorkerServer
	data     im.GroupDataClient
	messages im.MessageDataClient
	route    svrkit.KeyRouter // messages' routing (nil: one instance)
	// indexer writes the user index of a change's members.
	indexer  *groups.Index
	batch    int
	parallel int
	slots    chan struct{} // one per DeliverMany call in flight
	log      *slog.Logger

	q *groups.Queue // set by Start

	items, entries, deliveries, retries atomic.Uint64
	delays                              delays
}

// New returns a Worker over its clients; Start runs it.
func New(data im.GroupDataClient, index im.UserGroupsClient, messages im.MessageDataClient, cfg Config, log *slog.Logger) *Worker {
	if cfg.Batch <= 0 {
		cfg.Batch = shard.MaxBatchUsers
	}
	cfg.Batch = min(cfg.Batch, shard.MaxBatchUsers)
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 16
	}
	if log == nil {
		log = slog.Default()
	}
	// The index entries of a change's members: one ApplyMembershipMany
	// per UserGroups instance, each retried while the callee is busy, as
	// the inbox writes are.
	indexer := &groups.Index{Client: index, Parallel: cfg.Parallel, Retry: transient}
	return &Worker{data: data, indexer: indexer, messages: messages, batch: cfg.Batch, parallel: cfg.Parallel,
		slots: make(chan struct{}, cfg.MaxInFlight), log: log}
}

// Start consumes q (once it is open) and samples its lag every second,
// until the returned stop is called: stop lets running fan-outs finish
// until its ctx is done (their items are delivered again otherwise).
func (w *Worker) Start(q *groups.Queue, ackWait time.Duration) (stop func(context.Context) error) {
	w.q = q
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	consumer := make(chan *queue.Consumer, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			c, err := q.Client(ctx)
			if err != nil {
				if ctx.Err() == nil {
					w.log.Error("fan-out queue cannot be opened", "err", err)
				}
				return
			}
			k, err := c.Consume(ctx, w.Handle, queue.WithAckWait(ackWait), queue.WithBackoff(backoffMin, backoffMax),
				queue.WithMaxDeliver(maxDeliver), queue.WithLogger(w.log))
			if err == nil {
				consumer <- k
				return
			}
			w.log.Warn("fan-out queue: cannot consume yet; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if lag, err := w.lag(ctx); err == nil {
				monitor.Set(im.Monitor_FANOUT_LAG_MS_ID, lag.OldestAge.Milliseconds())
				monitor.Set(im.Monitor_FANOUT_BACKLOG_ID, int64(lag.Backlog))
			}
		}
	}()
	return func(sctx context.Context) error {
		cancel()
		wg.Wait()
		select {
		case k := <-consumer:
			return k.Stop(sctx)
		default:
			return nil
		}
	}
}

// lag reads the queue's lag, bounded.
func (w *Worker) lag(ctx context.Context) (queue.Lag, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := w.q.Client(ctx)
	if err != nil {
		return queue.Lag{}, err
	}
	return c.Lag(ctx)
}

// Stats are a Worker's counts since it was made.
type Stats struct {
	Items      uint64 // queue items handled
	Entries    uint64 // log entries fanned out
	Deliveries uint64 // inbox writes made (repeats not counted)
	Retries    uint64 // runs that failed, to be retried
}

// Stats returns the worker's counts.
func (w *Worker) Stats() Stats {
	return Stats{Items: w.items.Load(), Entries: w.entries.Load(), Deliveries: w.deliveries.Load(), Retries: w.retries.Load()}
}

// GetStats implements im.FanoutWorkerServer.
func (w *Worker) GetStats(ctx context.Context, req *im.FanoutStatsRequest) (*im.FanoutStats, error) {
	st := w.Stats()
	q := w.delays.since(time.UnixMilli(req.GetSinceUnixMs()))
	out := &im.FanoutStats{Items: st.Items, Entries: st.Entries, Deliveries: st.Deliveries, Retries: st.Retries,
		DelayCount: uint64(q.Count), DelayP50Ms: ms(q.P50), DelayP99Ms: ms(q.P99), DelayMaxMs: ms(q.Max)}
	if w.q == nil {
		return out, nil
	}
	lag, err := w.lag(ctx)
	if err != nil {
		return nil, svrkit.Errorf(svrkit.Unavailable, "queue lag: %v", err)
	}
	out.Backlog, out.OldestAgeMs, out.DeadLetters = lag.Backlog, lag.OldestAge.Milliseconds(), lag.DeadLetters
	return out, nil
}

// Handle is the queue handler: it fans out the item's group up to its seq.
func (w *Worker) Handle(ctx context.Context, m *queue.Message) error {
	it, err := groups.DecodeItem(m.Payload())
	if err != nil {
		return queue.Permanent(err)
	}
	if err := w.FanOut(ctx, it); err != nil {
		w.retries.Add(1)
		monitor.Add(im.Monitor_FANOUT_RETRIES_ID, 1)
		w.log.Warn("fan-out failed; the queue will deliver it again", "group", it.Group, "seq", it.Seq,
			"delivery", m.Deliveries(), "err", err)
		return err
	}
	w.items.Add(1)
	return nil
}

// FanOut writes every entry of it.Group above its fanned seq, up to
// it.Seq at least, into the inboxes of its members (see the package doc).
func (w *Worker) FanOut(ctx context.Context, it groups.Item) error {
	ctx = svrkit.WithEntryPriority(ctx, Priority, shard.Key(it.Group))
	req := &im.ReadLogRequest{GroupId: it.Group, AfterFanned: true, Limit: readPage}
	for {
		r, err := w.data.ReadLog(ctx, req)
		if svrkit.CodeOf(err) == svrkit.NotFound {
			w.log.Warn("fan-out of a group that does not exist: dropped", "group", it.Group, "seq", it.Seq)
			return nil
		}
		if err != nil {
			return err
		}
		if req.AfterFanned && r.GetFannedSeq() >= it.Seq {
			return nil // done before: a repeat
		}
		es := r.GetEntries()
		if len(es) == 0 {
			return nil // the log ends before it.Seq: nothing to do
		}
		for _, e := range es {
			if err := w.fanEntry(ctx, it.Group, r.GetRecord(), e); err != nil {
				return err
			}
		}
		last := es[len(es)-1].GetSeq()
		if _, err := w.data.SetFanned(ctx, &im.SetFannedRequest{GroupId: it.Group, Seq: last}); err != nil {
			return err
		}
		if last >= it.Seq || !r.GetMore() {
			return nil
		}
		req = &im.ReadLogRequest{GroupId: it.Group, AfterSeq: last, Limit: readPage}
	}
}

// Priority is the business priority of every call of a fan-out run
// (svrkit's overload control, after DAGOR), made with one user priority
// for the whole run: the group's (its routing key), so that an overloaded
// messagedata or storage gives a whole fan-out one verdict.
//
// Why above the sends (SendText and SendGroupText 210, the voice sends
// 200): a fan-out is the second half of a send already acknowledged, work
// the system has accepted and must finish, while a refused send costs its
// sender a retry and no data. Under overload a server should shed new
// sends first, which also throttles the fan-out they make, and finish the
// fan-outs it accepted. At the sends' own priority (as before) an
// overloaded service shed fan-out and sends alike, and with a user
// priority per member it refused some members of an entry and admitted
// the others: in-order fan-out then waited on the refused member until
// the DAGOR level relaxed, step by step, holding up the group's later
// entries, while new sends kept coming. Why below login (220): a user who
// cannot log in can use nothing, and the fan-out can wait in its durable
// queue; 215 leaves room between the two. Syncs (180) and everything
// below are shed before the fan-out.
const Priority = 215

// fanEntry writes entry e of group into the inbox of each member at its
// seq, and for a change, updates the index of the members it names.
func (w *Worker) fanEntry(ctx context.Context, group uint64, rec *im.GroupRecord, e *im.LogEntry) error {
	var item *im.SyncItem
	switch x := e.GetEntry().GetEntry().(type) {
	case *im.GroupLogEntry_Message:
		item = &im.SyncItem{Type: im.SyncType_SYNC_TYPE_MESSAGES, Item: &im.SyncItem_Message{Message: x.Message}}
	case *im.GroupLogEntry_Change:
		item = &im.SyncItem{Type: im.SyncType_SYNC_TYPE_GROUPS, Item: &im.SyncItem_Group{Group: x.Change}}
	default:
		w.log.Error("group log entry of no known kind: skipped", "group", group, "seq", e.GetSeq())
		return nil
	}
	users := groups.MembersAt(rec, e.GetSeq())
	dedup := groups.MessageDedupID(group, e.GetSeq())
	batches := w.batches(users, proto.Size(item))
	var written atomic.Int64
	err := shard.ForEach(ctx, len(batches), w.parallel, func(ctx context.Context, i int) error {
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { <-w.slots }()
		ids := batches[i]
		var r *im.DeliverManyReply
		err := transient(ctx, func() (err error) {
			r, err = w.messages.DeliverMany(ctx, &im.DeliverManyRequest{UserId: ids[0], UserIds: ids, Item: item, DedupId: dedup})
			return err
		})
		if err != nil {
			return err
		}
		var n int64
		for _, res := range r.GetResults() {
			if !res.GetDuplicate() {
				n++
			}
		}
		written.Add(n)
		w.deliveries.Add(uint64(n))
		monitor.Add(im.Monitor_FANOUT_DELIVERIES_ID, n)
		return nil
	})
	if err != nil {
		return err
	}
	if m := e.GetEntry().GetMessage(); m != nil && written.Load() > 0 {
		now := time.Now()
		d := now.Sub(time.UnixMilli(m.GetSentUnixMs()))
		w.delays.record(now, d)
		monitor.Add(im.Monitor_FANOUT_DELAY_MS_ID, d.Milliseconds())
		monitor.Add(im.Monitor_FANOUT_MESSAGES_ID, 1)
	}
	if ch := e.GetEntry().GetChange(); ch != nil {
		var member bool
		switch ch.GetKind() {
		case im.GroupChange_KIND_CREATED, im.GroupChange_KIND_MEMBERS_ADDED:
			member = true
		case im.GroupChange_KIND_MEMBER_LEFT, im.GroupChange_KIND_MEMBER_REMOVED:
		default:
			w.entries.Add(1)
			monitor.Add(im.Monitor_FANOUT_ENTRIES_ID, 1)
			return nil
		}
		ids := make([]uint64, len(ch.GetMembers()))
		for i, m := range ch.GetMembers() {
			ids[i] = m.GetUserId()
		}
		if err := w.indexer.Apply(ctx, group, ids, member, e.GetSeq()); err != nil {
			return err
		}
	}
	w.entries.Add(1)
	monitor.Add(im.Monitor_FANOUT_ENTRIES_ID, 1)
	return nil
}

// batches cuts users into the member lists of DeliverMany calls: grouped
// by the messagedata instance each routes to, each group cut into even
// parts of at most w.batch members, fewer when itemSize (an upper bound of
// the stored item's bytes) would take a batch over the byte limit.
func (w *Worker) batches(users []uint64, itemSize int) [][]uint64 {
	limit := min(w.batch, max(1, shard.MaxBatchBytes/max(itemSize, 1)))
	return shard.Batches(users, w.route, limit)
}

// transient calls f again, a few times over about a second, while it
// fails with a code that says the callee is busy or restarting (overloaded,
// unavailable, resource_exhausted): one batch refused by an overloaded
// messagedata should cost that batch a pause, not the whole entry's run
// (all its batches repeated when the queue delivers the item again). Other errors, and the last attempt's, are returned.
func transient(ctx context.Context, f func() error) error {
	pause := 20 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := f()
		switch svrkit.CodeOf(err) {
		case svrkit.Overloaded, svrkit.Unavailable, svrkit.ResourceExhausted:
		default:
			return err
		}
		if attempt == 5 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		pause *= 2
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
