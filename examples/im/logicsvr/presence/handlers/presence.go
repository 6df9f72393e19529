// Package handlers implements the presence Logicsvr (idl/im/presence.proto):
// Presence, the table of which gateway holds which (user, device), and
// Push, which notifies a user's online devices through those gateways.
// NewPresence and NewPush are the constructors its generated main calls;
// they share one table per host.
//
// # The table and its expiry
//
// Entries live in memory, one per (user, device): the connection's id and
// the gateway (its RPC address and boot id) that holds it. They are only
// as good as their gateway's lease: every gateway renews a lease on every
// presence instance every few seconds (Lease); an entry whose gateway's
// lease has run out, or whose gateway has since started again with another
// boot id, is dead — ignored at once, removed by the next sweep. So a
// crashed gateway's entries disappear within one lease (app config
// "lease", default 10s), without a message per connection. A gateway that
// restarts on the same address announces its new boot id with its first
// Lease or Connect, which kills the old run's entries at once.
//
// Presence itself keeps nothing on disk: a restarted instance starts
// empty with a new boot id, and every gateway, seeing the new id in its
// next Lease reply, registers its connections again and asks them to sync
// (logicsvr/gateway), which repairs the notifies lost meanwhile.
//
// # Push
//
// Notify finds the user's live entries, groups them by gateway and calls
// each gateway's Push with the targets (in parallel when there are
// several). Targets a gateway no longer holds come back as gone and are
// removed. A gateway that cannot be reached is skipped: its entries go
// with its lease. Notify answers how many connections took the notify; it
// is best effort and never fails for an offline user.
//
// NotifyMany does the same for a batch of notifies (messagedata's push
// queue sends the ones that waited together), with the targets of the
// whole batch grouped by gateway: one Gateway.PushMany per gateway, not
// one Push per notify, so that a batch costs as many RPCs as it touches
// gateways. A gateway that predates PushMany answers unimplemented and
// gets one Push per notify instead.
//
// Push and Presence are served by the same Logicsvr and routed alike (by
// user id over the same endpoints), so a user's notify lands on the
// instance holding the user's entries.
package handlers

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"slices"
	"sync"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/shard"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor"
)

// Config is the presence Logicsvr's "app" settings.
type Config struct {
	// Lease is how long a gateway's lease lasts from its last renewal
	// (default 10s); gateways renew at a quarter of it.
	Lease logicsvr.Duration `json:"lease,omitempty"`
}

// GatewayInvoker returns a client of the gateway at addr (its RPC
// address): logicsvr.Host.EndpointClient in production.
type GatewayInvoker func(addr string) (svrkit.Invoker, error)

// Table is the presence table. It is safe for concurrent use.
type Table struct {
	boot     uint64
	lease    time.Duration
	now      func() time.Time
	gateways GatewayInvoker

	mu     sync.Mutex
	users  map[uint64]map[string]entry // user → device → entry
	leases map[string]gatewayLease     // gateway address → lease
}

type entry struct {
	conn    uint64
	gateway string
	boot    uint64
	since   int64 // unix ms
}

type gatewayLease struct {
	boot    uint64
	expires time.Time
}

// NewTable returns an empty table whose gateways are reached with gw.
func NewTable(cfg Config, gw GatewayInvoker) *Table {
	var b [8]byte
	_, _ = rand.Read(b[:])
	lease := time.Duration(cfg.Lease)
	if lease <= 0 {
		lease = 10 * time.Second
	}
	return &Table{
		boot:     binary.BigEndian.Uint64(b[:]) | 1,
		lease:    lease,
		now:      time.Now,
		gateways: gw,
		users:    map[uint64]map[string]entry{},
		leases:   map[string]gatewayLease{},
	}
}

// tables holds each host's table, so that the two constructors share one.
var tables sync.Map // *logicsvr.Host → *Table

func tableOf(h *logicsvr.Host) (*Table, error) {
	if t, ok := tables.Load(h); ok {
		return t.(*Table), nil
	}
	var cfg Config
	if err := h.AppConfig(&cfg); err != nil {
		return nil, err
	}
	t := NewTable(cfg, func(addr string) (svrkit.Invoker, error) {
		return h.EndpointClient(im.Gateway_ServiceName, addr)
	})
	actual, loaded := tables.LoadOrStore(h, t)
	if !loaded && !h.InfoOnly() {
		ctx, stop := context.WithCancel(context.Background())
		go t.sweepEvery(ctx, t.lease/2)
		h.OnShutdown(func(context.Context) error { stop(); tables.Delete(h); return nil })
	}
	return actual.(*Table), nil
}

// NewPresence returns the Presence handler.
func NewPresence(h *logicsvr.Host) (im.PresenceServer, error) {
	t, err := tableOf(h)
	if err != nil {
		return nil, err
	}
	return &presenceServer{t: t}, nil
}

// NewPush returns the Push handler.
func NewPush(h *logicsvr.Host) (im.PushServer, error) {
	t, err := tableOf(h)
	if err != nil {
		return nil, err
	}
	return &pushServer{t: t}, nil
}

// renewLocked records that gateway (run boot) is alive now. t.mu held.
func (t *Table) renewLocked(gateway string, boot uint64) {
	t.leases[gateway] = gatewayLease{boot: boot, expires: t.now().Add(t.lease)}
}

// aliveLocked reports whether e's gateway run still holds a lease.
func (t *Table) aliveLocked(e entry, now time.Time) bool {
	l, ok := t.leases[e.gateway]
	return ok && l.boot == e.boot && now.Before(l.expires)
}

// Connect records a connection; it returns the live entry it replaced on
// another connection, if any.
func (t *Table) Connect(user uint64, device string, conn uint64, gateway string, boot uint64) (replaced entry, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.renewLocked(gateway, boot)
	devs := t.users[user]
	if devs == nil {
		devs = map[string]entry{}
		t.users[user] = devs
	}
	prev, had := devs[device]
	devs[device] = entry{conn: conn, gateway: gateway, boot: boot, since: t.now().UnixMilli()}
	if had && prev.conn != conn && t.aliveLocked(prev, t.now()) {
		return prev, true
	}
	return entry{}, false
}

// Disconnect forgets (user, device) if its entry is conn.
func (t *Table) Disconnect(user uint64, device string, conn uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	devs := t.users[user]
	if e, ok := devs[device]; ok && e.conn == conn {
		delete(devs, device)
		if len(devs) == 0 {
			delete(t.users, user)
		}
		return true
	}
	return false
}

// Lease renews a gateway's lease.
func (t *Table) Lease(gateway string, boot uint64) {
	t.mu.Lock()
	t.renewLocked(gateway, boot)
	t.mu.Unlock()
}

// Lookup returns the user's live entries.
func (t *Table) Lookup(user uint64) []*im.PresenceEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var out []*im.PresenceEntry
	for dev, e := range t.users[user] {
		if t.aliveLocked(e, now) {
			out = append(out, &im.PresenceEntry{
				Target:      &im.LinkTarget{UserId: user, DeviceId: dev, ConnId: e.conn},
				Gateway:     e.gateway,
				SinceUnixMs: e.since,
			})
		}
	}
	return out
}

// Sweep removes dead entries and expired leases, and returns how many
// entries remain.
func (t *Table) Sweep() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	n := 0
	for user, devs := range t.users {
		for dev, e := range devs {
			if !t.aliveLocked(e, now) {
				delete(devs, dev)
			}
		}
		if len(devs) == 0 {
			delete(t.users, user)
		}
		n += len(devs)
	}
	for gw, l := range t.leases {
		if !now.Before(l.expires) {
			delete(t.leases, gw)
		}
	}
	return n
}

func (t *Table) sweepEvery(ctx context.Context, d time.Duration) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.Sweep()
		}
	}
}

// Notify pushes n to the user's live devices and returns how many
// connections took it: NotifyMany of one notify, which asks each gateway
// with one Push.
func (t *Table) Notify(ctx context.Context, user uint64, n *im.SyncNotify) uint32 {
	return t.NotifyMany(ctx, []*im.PushNotifyRequest{{UserId: user, Notify: n}})[0]
}

// pushTo asks one gateway to push to its targets and forgets those it no
// longer holds.
func (t *Table) pushTo(ctx context.Context, gw string, targets []*im.LinkTarget, n *im.SyncNotify) uint32 {
	inv, err := t.gateways(gw)
	var r *im.GatewayPushReply
	if err == nil {
		r, err = im.NewGatewayClient(inv).Push(ctx, &im.GatewayPushRequest{Targets: targets, Notify: n})
	}
	if err != nil {
		// The gateway is down or cut off: its lease will end and its
		// entries with it. The devices sync when they reconnect.
		monitor.Add(im.Monitor_PUSH_DROPPED_ID, int64(len(targets)))
		return 0
	}
	t.forgetGone(targets, r.GetGone())
	return r.GetPushed()
}

// forgetGone removes the entries of targets whose connections a gateway
// answered gone.
func (t *Table) forgetGone(targets []*im.LinkTarget, gone []uint64) {
	if len(gone) == 0 {
		return
	}
	for _, tg := range targets {
		if slices.Contains(gone, tg.GetConnId()) {
			t.Disconnect(tg.GetUserId(), tg.GetDeviceId(), tg.GetConnId())
		}
	}
}

// gatewayBatch is what one NotifyMany asks of one gateway: a push per
// notify that has targets there, and the index of that notify.
type gatewayBatch struct {
	gateway string
	pushes  []*im.GatewayPushRequest
	of      []int
}

// NotifyMany is Notify for each of notifies, with one Gateway.PushMany per
// gateway for the whole batch; it returns the connections that took each
// notify, in notifies' order.
func (t *Table) NotifyMany(ctx context.Context, notifies []*im.PushNotifyRequest) []uint32 {
	devices := make([]uint32, len(notifies))
	byGateway := map[string]*gatewayBatch{}
	var batches []*gatewayBatch
	t.mu.Lock()
	now := t.now()
	for i, n := range notifies {
		user := n.GetUserId()
		for dev, e := range t.users[user] {
			if !t.aliveLocked(e, now) {
				continue
			}
			b := byGateway[e.gateway]
			if b == nil {
				b = &gatewayBatch{gateway: e.gateway}
				byGateway[e.gateway] = b
				batches = append(batches, b)
			}
			// A notify's push to a gateway is the last one there so far.
			if k := len(b.of); k == 0 || b.of[k-1] != i {
				b.pushes = append(b.pushes, &im.GatewayPushRequest{Notify: n.GetNotify()})
				b.of = append(b.of, i)
			}
			p := b.pushes[len(b.pushes)-1]
			p.Targets = append(p.Targets, &im.LinkTarget{UserId: user, DeviceId: dev, ConnId: e.conn})
		}
	}
	t.mu.Unlock()
	var mu sync.Mutex
	_ = shard.ForEach(ctx, len(batches), len(batches), func(ctx context.Context, k int) error {
		b := batches[k]
		pushed := t.pushManyTo(ctx, b.gateway, b.pushes)
		mu.Lock()
		for j, n := range pushed {
			devices[b.of[j]] += n
		}
		mu.Unlock()
		return nil
	})
	return devices
}

// pushManyTo asks one gateway for pushes in one PushMany and forgets the
// targets it no longer holds; it returns the connections that took each
// push. A gateway that predates PushMany gets one Push per push.
func (t *Table) pushManyTo(ctx context.Context, gw string, pushes []*im.GatewayPushRequest) []uint32 {
	pushed := make([]uint32, len(pushes))
	if len(pushes) == 1 {
		// One Push is as cheap, and every gateway knows it.
		pushed[0] = t.pushTo(ctx, gw, pushes[0].GetTargets(), pushes[0].GetNotify())
		return pushed
	}
	inv, err := t.gateways(gw)
	var r *im.GatewayPushManyReply
	if err == nil {
		r, err = im.NewGatewayClient(inv).PushMany(ctx, &im.GatewayPushManyRequest{Pushes: pushes})
	}
	if svrkit.CodeOf(err) == svrkit.Unimplemented {
		for j, p := range pushes {
			pushed[j] = t.pushTo(ctx, gw, p.GetTargets(), p.GetNotify())
		}
		return pushed
	}
	if err == nil && len(r.GetReplies()) != len(pushes) {
		err = svrkit.Errorf(svrkit.Internal, "gateway %s answered %d pushes of %d", gw, len(r.GetReplies()), len(pushes))
	}
	if err != nil {
		// As in pushTo: the gateway's lease will end, and its entries
		// with it.
		for _, p := range pushes {
			monitor.Add(im.Monitor_PUSH_DROPPED_ID, int64(len(p.GetTargets())))
		}
		return pushed
	}
	for j, p := range pushes {
		t.forgetGone(p.GetTargets(), r.GetReplies()[j].GetGone())
		pushed[j] = r.GetReplies()[j].GetPushed()
	}
	return pushed
}

// kick tells the gateway holding a replaced entry to close it; best
// effort, in the background.
func (t *Table) kick(user uint64, device string, e entry) {
	go func() {
		inv, err := t.gateways(e.gateway)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _ = im.NewGatewayClient(inv).Kick(ctx, &im.GatewayKickRequest{Target: &im.LinkTarget{UserId: user, DeviceId: device, ConnId: e.conn}})
	}()
}

type presenceServer struct {
	im.UnimplementedPresenceServer
	t *Table
}

func (s *presenceServer) Connect(_ context.Context, req *im.PresenceConnectRequest) (*im.PresenceConnectReply, error) {
	if req.GetUserId() == 0 || req.GetDeviceId() == "" || req.GetConnId() == 0 || req.GetGateway() == "" {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "user_id, device_id, conn_id and gateway are required")
	}
	prev, replaced := s.t.Connect(req.GetUserId(), req.GetDeviceId(), req.GetConnId(), req.GetGateway(), req.GetGatewayBoot())
	if !replaced {
		return &im.PresenceConnectReply{}, nil
	}
	// The same gateway run has already replaced its own connection.
	if prev.gateway != req.GetGateway() || prev.boot != req.GetGatewayBoot() {
		s.t.kick(req.GetUserId(), req.GetDeviceId(), prev)
	}
	return &im.PresenceConnectReply{
		Replaced:        &im.LinkTarget{UserId: req.GetUserId(), DeviceId: req.GetDeviceId(), ConnId: prev.conn},
		ReplacedGateway: prev.gateway,
	}, nil
}

func (s *presenceServer) Disconnect(_ context.Context, req *im.PresenceDisconnectRequest) (*im.PresenceDisconnectReply, error) {
	return &im.PresenceDisconnectReply{Removed: s.t.Disconnect(req.GetUserId(), req.GetDeviceId(), req.GetConnId())}, nil
}

func (s *presenceServer) Lease(_ context.Context, req *im.PresenceLeaseRequest) (*im.PresenceLeaseReply, error) {
	if req.GetGateway() == "" {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "gateway is required")
	}
	s.t.Lease(req.GetGateway(), req.GetGatewayBoot())
	return &im.PresenceLeaseReply{BootId: s.t.boot, LeaseMs: uint32(s.t.lease / time.Millisecond)}, nil
}

func (s *presenceServer) Lookup(_ context.Context, req *im.PresenceLookupRequest) (*im.PresenceLookupReply, error) {
	return &im.PresenceLookupReply{Entries: s.t.Lookup(req.GetUserId())}, nil
}

type pushServer struct {
	im.UnimplementedPushServer
	t *Table
}

func (s *pushServer) Notify(ctx context.Context, req *im.PushNotifyRequest) (*im.PushNotifyReply, error) {
	if req.GetNotify() == nil {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "notify is required")
	}
	return &im.PushNotifyReply{Devices: s.t.Notify(ctx, req.GetUserId(), req.GetNotify())}, nil
}

// MaxNotifyMany bounds the notifies of one NotifyMany (presence.proto),
// as shard.MaxBatchUsers bounds the other batch methods' users: the
// caller cuts its batches with shard.BatchIndexes at this limit
// (messagedata's push queue, whose copy of it a test keeps equal).
const MaxNotifyMany = shard.MaxBatchUsers

func (s *pushServer) NotifyMany(ctx context.Context, req *im.PushNotifyManyRequest) (*im.PushNotifyManyReply, error) {
	ns := req.GetNotifies()
	if n := len(ns); n == 0 || n > MaxNotifyMany {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "%d notifies outside [1, %d]", n, MaxNotifyMany)
	}
	routed := false
	for i, n := range ns {
		if n.GetNotify() == nil {
			return nil, svrkit.Errorf(svrkit.InvalidArgument, "notify %d (user %d) has no notify", i, n.GetUserId())
		}
		routed = routed || n.GetUserId() == req.GetUserId()
	}
	if !routed {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "routing user %d is not one of the notifies' users", req.GetUserId())
	}
	return &im.PushNotifyManyReply{Devices: s.t.NotifyMany(ctx, ns)}, nil
}
