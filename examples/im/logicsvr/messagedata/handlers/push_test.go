package handlers

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/rpctest"
	"github.com/svrkit/svrkit/examples/im/internal/shard"
	presence "github.com/svrkit/svrkit/examples/im/logicsvr/presence/handlers"
	"github.com/svrkit/svrkit/svrkit"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// oldPush is im.Push as a presence that predates NotifyMany serves it
// (NotifyMany answers unimplemented), on a real svrkit server: it records
// the notifies it takes and the calls it answers. With gate set, every
// call waits for it to close; the first refuse calls of refuseMethod (any
// method when empty) are refused with code.
type oldPush struct {
	im.UnimplementedPushServer
	*pushLog
}

type pushLog struct {
	addr         string
	gate         chan struct{}
	code         svrkit.Code
	refuse       int
	refuseMethod string

	mu      sync.Mutex
	arrived int            // calls that reached the server, gated or not
	calls   map[string]int // calls answered, by method
	refused int
	got     []*im.PushNotifyRequest
}

func (p oldPush) Notify(ctx context.Context, req *im.PushNotifyRequest) (*im.PushNotifyReply, error) {
	return &im.PushNotifyReply{}, p.take(ctx, "Notify", []*im.PushNotifyRequest{req})
}

func (p oldPush) NotifyMany(ctx context.Context, req *im.PushNotifyManyRequest) (*im.PushNotifyManyReply, error) {
	p.mu.Lock()
	p.calls["NotifyMany"]++
	p.mu.Unlock()
	return p.UnimplementedPushServer.NotifyMany(ctx, req)
}

// newPush serves NotifyMany too.
type newPush struct{ oldPush }

func (p newPush) NotifyMany(ctx context.Context, req *im.PushNotifyManyRequest) (*im.PushNotifyManyReply, error) {
	return &im.PushNotifyManyReply{Devices: make([]uint32, len(req.GetNotifies()))}, p.take(ctx, "NotifyMany", req.GetNotifies())
}

func (p *pushLog) take(ctx context.Context, method string, ns []*im.PushNotifyRequest) error {
	p.mu.Lock()
	p.arrived++
	gate := p.gate
	p.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return svrkit.AsError(ctx.Err())
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls[method]++
	if p.refused < p.refuse && (p.refuseMethod == "" || p.refuseMethod == method) {
		p.refused++
		return svrkit.NewError(p.code, "refused")
	}
	for _, n := range ns {
		p.got = append(p.got, proto.Clone(n).(*im.PushNotifyRequest))
	}
	return nil
}

func (p *pushLog) count(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[method]
}

// newest returns the newest version taken per user and type.
func (p *pushLog) newest() map[uint64]map[im.SyncType]uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[uint64]map[im.SyncType]uint64{}
	for _, n := range p.got {
		if out[n.GetUserId()] == nil {
			out[n.GetUserId()] = map[im.SyncType]uint64{}
		}
		out[n.GetUserId()][n.GetNotify().GetType()] = max(out[n.GetUserId()][n.GetNotify().GetType()], n.GetNotify().GetVersion())
	}
	return out
}

// startPush serves each of logs as a presence instance (with NotifyMany
// unless old) and returns a queue pushing to them through one key-routed
// client, and that client's routing.
func startPush(t *testing.T, old bool, logs ...*pushLog) (*PushQueue, svrkit.KeyRouter) {
	t.Helper()
	var addrs []string
	for _, l := range logs {
		l.calls = map[string]int{}
		var impl im.PushServer = newPush{oldPush{pushLog: l}}
		if old {
			impl = oldPush{pushLog: l}
		}
		l.addr = rpctest.Serve(t, func(r svrkit.Registrar) { im.RegisterPushServer(r, impl) })
		addrs = append(addrs, l.addr)
	}
	c := rpctest.Dial(t, strings.Join(addrs, ","))
	q := NewPushQueue(c, quiet)
	t.Cleanup(q.Close)
	return q, shard.Router(c)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func msg(v uint64) *im.SyncItem {
	return &im.SyncItem{Type: im.SyncType_SYNC_TYPE_MESSAGES, Version: v}
}

// busyWorkers gives every worker of q a notify of its own (users 1 to
// PushWorkers), each stuck in p's gate, so that what is notified next
// waits.
func busyWorkers(t *testing.T, q *PushQueue, p *pushLog) {
	t.Helper()
	for u := range PushWorkers {
		// One at a time, so that each worker takes one user.
		q.Notify(context.Background(), uint64(1+u), msg(1))
		waitFor(t, "a worker takes the notify", func() bool {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.arrived == u+1
		})
	}
}

// TestPushQueueFolds: notifies for a user that wait behind a busy push
// service are folded into one per type, with the newest version, and
// Notify never blocks the delivery that calls it.
func TestPushQueueFolds(t *testing.T) {
	p := &pushLog{gate: make(chan struct{})}
	q, _ := startPush(t, false, p)
	busyWorkers(t, q, p)
	// ...and user 100's notifies wait, folding.
	start := time.Now()
	for v := uint64(1); v <= 50; v++ {
		q.Notify(context.Background(), 100, msg(v))
	}
	q.Notify(context.Background(), 100, &im.SyncItem{Type: im.SyncType_SYNC_TYPE_CONTACTS, Version: 7})
	if d := time.Since(start); d > time.Second {
		t.Errorf("51 notifies behind a stuck push service took %v", d)
	}
	close(p.gate)
	waitFor(t, "every notify taken", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.got) == PushWorkers+2 })
	time.Sleep(50 * time.Millisecond) // nothing more comes
	p.mu.Lock()
	defer p.mu.Unlock()
	var forUser []*im.SyncNotify
	for _, r := range p.got {
		if r.GetUserId() == 100 {
			forUser = append(forUser, r.GetNotify())
		}
	}
	if len(p.got) != PushWorkers+2 || len(forUser) != 2 {
		t.Fatalf("%d notifies taken, %v for user 100: want one per type", len(p.got), forUser)
	}
	for _, n := range forUser {
		if n.GetType() == im.SyncType_SYNC_TYPE_MESSAGES && n.GetVersion() != 50 {
			t.Errorf("user 100's messages notify has version %d, want the newest, 50", n.GetVersion())
		}
	}
}

// burst notifies users first..first+n-1, each a few times, and returns
// each one's newest version.
func burst(q *PushQueue, first uint64, n int) map[uint64]uint64 {
	want := map[uint64]uint64{}
	for round := uint64(1); round <= 3; round++ {
		for u := first; u < first+uint64(n); u++ {
			q.Notify(context.Background(), u, msg(u*10+round))
			want[u] = u*10 + round
		}
	}
	return want
}

// delivered reports whether every user of want has had its newest
// messages version taken by one of logs.
func delivered(want map[uint64]uint64, logs ...*pushLog) bool {
	got := map[uint64]uint64{}
	for _, l := range logs {
		for u, v := range l.newest() {
			got[u] = max(got[u], v[im.SyncType_SYNC_TYPE_MESSAGES])
		}
	}
	for u, v := range want {
		if got[u] != v {
			return false
		}
	}
	return true
}

// TestPushQueueBatchesWhatWaits: notifies for many users that wait behind
// busy workers go as a few NotifyMany, each to the presence instance its
// users route to, and every user's newest version arrives.
func TestPushQueueBatchesWhatWaits(t *testing.T) {
	gate := make(chan struct{})
	a, b := &pushLog{gate: gate}, &pushLog{gate: gate}
	q, route := startPush(t, false, a, b)
	// Users 1..PushWorkers route to a or b: close the gate on both.
	for u := range PushWorkers {
		q.Notify(context.Background(), uint64(1+u), msg(1))
		waitFor(t, "a worker takes the notify", func() bool {
			a.mu.Lock()
			b.mu.Lock()
			defer a.mu.Unlock()
			defer b.mu.Unlock()
			return a.arrived+b.arrived == u+1
		})
	}
	const users = 300
	want := burst(q, 1000, users)
	close(gate)
	waitFor(t, "every user's newest version", func() bool { return delivered(want, a, b) })
	rpcs := 0
	for _, l := range []*pushLog{a, b} {
		rpcs += l.count("Notify") + l.count("NotifyMany")
		for u := range l.newest() {
			if r := route.Route(shard.Key(u)); r != l.addr {
				t.Errorf("user %d's notify went to %s, but the user routes to %s", u, l.addr, r)
			}
		}
	}
	if rpcs -= PushWorkers; rpcs >= users/4 {
		t.Errorf("%d RPCs for the notifies of %d users that waited together: want a few batches", rpcs, users)
	}
	if a.count("NotifyMany") == 0 || b.count("NotifyMany") == 0 {
		t.Errorf("NotifyMany calls: %d to a, %d to b; want some to each", a.count("NotifyMany"), b.count("NotifyMany"))
	}
}

// TestPushQueueBatchWriteLeavesWhole: the notifies of one batch write
// (DeliverMany's members) into an idle queue leave as one NotifyMany, not
// as the first few users one by one, each to a worker woken for it.
func TestPushQueueBatchWriteLeavesWhole(t *testing.T) {
	p := &pushLog{}
	q, _ := startPush(t, false, p)
	const users = 300
	ids := make([]uint64, users)
	items := make([]*im.SyncItem, users)
	want := map[uint64]uint64{}
	for i := range ids {
		ids[i] = uint64(100 + i)
		items[i] = msg(uint64(5 + i))
		want[ids[i]] = uint64(5 + i)
	}
	q.notifyMany(ids, items)
	waitFor(t, "every member's notify", func() bool { return delivered(want, p) })
	if n, m := p.count("Notify"), p.count("NotifyMany"); n != 0 || m != 1 {
		t.Errorf("a batch of %d made %d Notify and %d NotifyMany calls, want one NotifyMany", users, n, m)
	}
}

// TestPushQueueLoneNotifyAtOnce: a notify into an idle queue goes at once,
// alone, as Notify: batching waits for nothing.
func TestPushQueueLoneNotifyAtOnce(t *testing.T) {
	p := &pushLog{}
	q, _ := startPush(t, false, p)
	start := time.Now()
	q.Notify(context.Background(), 7, msg(3))
	waitFor(t, "the notify", func() bool { return delivered(map[uint64]uint64{7: 3}, p) })
	if d := time.Since(start); d > time.Second {
		t.Errorf("a lone notify took %v", d)
	}
	if n, m := p.count("Notify"), p.count("NotifyMany"); n != 1 || m != 0 {
		t.Errorf("a lone notify made %d Notify and %d NotifyMany calls, want one Notify", n, m)
	}
}

// TestPushQueueWithoutNotifyMany: a presence that predates NotifyMany
// answers it unimplemented; the queue falls back to Notify per user,
// delivers every notify, and does not ask again for a while.
func TestPushQueueWithoutNotifyMany(t *testing.T) {
	p := &pushLog{gate: make(chan struct{})}
	q, _ := startPush(t, true, p)
	busyWorkers(t, q, p)
	want := burst(q, 1000, 100)
	close(p.gate)
	waitFor(t, "every user's newest version", func() bool { return delivered(want, p) })
	tried := p.count("NotifyMany")
	if tried == 0 || tried > PushWorkers {
		t.Errorf("NotifyMany tried %d times, want once per worker at most", tried)
	}
	// A second burst, behind busy workers again, does not try it.
	gate := make(chan struct{})
	p.mu.Lock()
	p.gate, p.arrived = gate, 0
	p.mu.Unlock()
	busyWorkers(t, q, p)
	want = burst(q, 2000, 100)
	close(gate)
	waitFor(t, "every user's newest version", func() bool { return delivered(want, p) })
	if n := p.count("NotifyMany"); n != tried {
		t.Errorf("NotifyMany tried %d more times within noManyFor", n-tried)
	}
}

// TestPushQueueRetriesPassingRefusals: a notify the push service sheds
// (overloaded) is pushed again after a pause, so the device still hears of
// its message; a refusal that will not pass (permission denied) is not
// repeated, and a notify that keeps being shed stops after pushAttempts.
// In a batch, each user is retried on its own account.
func TestPushQueueRetriesPassingRefusals(t *testing.T) {
	// idle waits until p has answered nothing for longer than the
	// longest pause (the pauses add up to 20+40+80 ms).
	idle := func(p *pushLog) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		last, since := -1, time.Now()
		for time.Since(since) < time.Second {
			if time.Now().After(deadline) {
				t.Fatal("the queue kept pushing")
			}
			p.mu.Lock()
			c := p.calls["Notify"] + p.calls["NotifyMany"]
			p.mu.Unlock()
			if c != last {
				last, since = c, time.Now()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for _, tc := range []struct {
		name          string
		code          svrkit.Code
		refuse        int
		calls, taken  int
		retriedExactV bool
	}{
		{"shed twice", svrkit.Overloaded, 2, 3, 1, true},
		{"always shed", svrkit.Overloaded, 100, pushAttempts, 0, false},
		{"permission denied", svrkit.PermissionDenied, 100, 1, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &pushLog{code: tc.code, refuse: tc.refuse}
			q, _ := startPush(t, false, p)
			q.Notify(context.Background(), 1, msg(9))
			idle(p)
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.calls["Notify"] != tc.calls || len(p.got) != tc.taken {
				t.Errorf("%d calls, %d taken; want %d calls, %d taken", p.calls["Notify"], len(p.got), tc.calls, tc.taken)
			}
			if tc.retriedExactV && len(p.got) == 1 && p.got[0].GetNotify().GetVersion() != 9 {
				t.Errorf("the retried notify has version %d, want 9", p.got[0].GetNotify().GetVersion())
			}
		})
	}
	t.Run("a shed batch", func(t *testing.T) {
		p := &pushLog{gate: make(chan struct{}), code: svrkit.Overloaded, refuse: 1, refuseMethod: "NotifyMany"}
		q, _ := startPush(t, false, p)
		busyWorkers(t, q, p)
		want := burst(q, 1000, 50)
		close(p.gate)
		waitFor(t, "every user's newest version, after the refusal", func() bool { return delivered(want, p) })
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.refused != 1 {
			t.Errorf("%d calls refused, want the first NotifyMany", p.refused)
		}
	})
}

// The queue cuts its batches at presence's limit, a constant of its own so
// that messagedata does not link presence.
func TestNotifyManyLimitMatchesPresence(t *testing.T) {
	if maxNotifyMany != presence.MaxNotifyMany {
		t.Fatalf("the push queue sends up to %d notifies per NotifyMany, presence takes %d", maxNotifyMany, presence.MaxNotifyMany)
	}
}
