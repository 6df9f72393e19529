package handlers

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/rpctest"
	"github.com/svrkit/svrkit/svrkit"
)

// fakeGateways answers Gateway calls for a set of addresses: Push takes
// the targets whose conn ids it holds, Kick records. An address not in
// holds is down.
type fakeGateways struct {
	mu     sync.Mutex
	holds  map[string][]uint64 // address → conn ids
	pushed map[string][]uint64
	kicked []uint64
}

func (f *fakeGateways) invoker(addr string) (svrkit.Invoker, error) { return fakeGateway{f, addr}, nil }

type fakeGateway struct {
	f    *fakeGateways
	addr string
}

func (g fakeGateway) Invoke(_ context.Context, m *svrkit.MethodDesc, req, resp proto.Message, _ ...svrkit.CallOption) error {
	f := g.f
	f.mu.Lock()
	defer f.mu.Unlock()
	held, up := f.holds[g.addr]
	if !up {
		return svrkit.NewError(svrkit.Unavailable, "connection refused")
	}
	switch m.FullName {
	case im.Gateway_Push_FullMethodName:
		r := &im.GatewayPushReply{}
		for _, tg := range req.(*im.GatewayPushRequest).GetTargets() {
			if slices.Contains(held, tg.GetConnId()) {
				r.Pushed++
				f.pushed[g.addr] = append(f.pushed[g.addr], tg.GetConnId())
			} else {
				r.Gone = append(r.Gone, tg.GetConnId())
			}
		}
		proto.Merge(resp, r)
	case im.Gateway_Kick_FullMethodName:
		f.kicked = append(f.kicked, req.(*im.GatewayKickRequest).GetTarget().GetConnId())
	default:
		return svrkit.Errorf(svrkit.Unimplemented, "%s not implemented", m.FullName)
	}
	return nil
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestTable() (*Table, *fakeGateways, *fakeClock) {
	gws := &fakeGateways{holds: map[string][]uint64{}, pushed: map[string][]uint64{}}
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	t := NewTable(Config{}, gws.invoker)
	t.now = clk.now
	return t, gws, clk
}

func devices(es []*im.PresenceEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.GetTarget().GetDeviceId()+"@"+e.GetGateway())
	}
	slices.Sort(out)
	return out
}

// TestLeaseExpiry: entries live as long as their gateway's lease; a
// gateway that stops renewing loses them all, and one that restarts with a
// new boot id loses its old run's at once.
func TestLeaseExpiry(t *testing.T) {
	tb, _, clk := newTestTable()
	tb.Connect(1, "phone", 11, "gw-a", 100)
	tb.Connect(1, "tablet", 12, "gw-b", 200)
	tb.Connect(2, "phone", 13, "gw-a", 100)
	if got := devices(tb.Lookup(1)); !slices.Equal(got, []string{"phone@gw-a", "tablet@gw-b"}) {
		t.Fatalf("Lookup(1) = %v", got)
	}
	// gw-b keeps renewing; gw-a crashed.
	for range 3 {
		clk.add(4 * time.Second)
		tb.Lease("gw-b", 200)
	}
	if got := devices(tb.Lookup(1)); !slices.Equal(got, []string{"tablet@gw-b"}) {
		t.Fatalf("after gw-a's lease ran out: %v", got)
	}
	if n := tb.Sweep(); n != 1 {
		t.Errorf("Sweep left %d entries, want 1", n)
	}
	// gw-b restarts (new boot) on the same address: its old entries die at
	// its first renewal, before any of them is replaced.
	tb.Lease("gw-b", 201)
	if got := tb.Lookup(1); len(got) != 0 {
		t.Fatalf("old run's entry alive after the new boot: %v", devices(got))
	}
	tb.Connect(1, "tablet", 22, "gw-b", 201)
	if got := tb.Lookup(1); len(got) != 1 || got[0].GetTarget().GetConnId() != 22 {
		t.Fatalf("new run's entry: %v", got)
	}
	// Disconnect removes only the connection it names.
	if tb.Disconnect(1, "tablet", 12) || !tb.Disconnect(1, "tablet", 22) || len(tb.Lookup(1)) != 0 {
		t.Fatal("Disconnect")
	}
}

// TestConnectReplacesAndKicks: a device connecting through another gateway
// replaces its entry, and the old gateway is told to kick it; a
// reconnection through the same gateway run is not kicked by presence.
func TestConnectReplacesAndKicks(t *testing.T) {
	tb, gws, _ := newTestTable()
	gws.holds["gw-a"], gws.holds["gw-b"] = []uint64{11}, nil
	srv := &presenceServer{t: tb}
	ctx := context.Background()
	connect := func(conn uint64, gw string) *im.PresenceConnectReply {
		t.Helper()
		r, err := srv.Connect(ctx, &im.PresenceConnectRequest{UserId: 1, DeviceId: "phone", ConnId: conn, Gateway: gw, GatewayBoot: 1})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	connect(11, "gw-a")
	if r := connect(12, "gw-a"); r.GetReplaced().GetConnId() != 11 {
		t.Fatalf("same gateway: replaced %v", r.GetReplaced())
	}
	r := connect(21, "gw-b")
	if r.GetReplaced().GetConnId() != 12 || r.GetReplacedGateway() != "gw-a" {
		t.Fatalf("other gateway: replaced %v on %s", r.GetReplaced(), r.GetReplacedGateway())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		gws.mu.Lock()
		kicked := slices.Clone(gws.kicked)
		gws.mu.Unlock()
		if slices.Equal(kicked, []uint64{12}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kicked %v, want [12] (only the one on the other gateway)", kicked)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := srv.Connect(ctx, &im.PresenceConnectRequest{UserId: 1}); svrkit.CodeOf(err) != svrkit.InvalidArgument {
		t.Errorf("incomplete Connect: %v", err)
	}
}

// TestNotify: a notify reaches every live device through its gateway;
// targets a gateway no longer holds are forgotten; a gateway that is down
// costs the notify and nothing else.
func TestNotify(t *testing.T) {
	tb, gws, _ := newTestTable()
	gws.holds["gw-a"] = []uint64{11, 12}
	gws.holds["gw-b"] = []uint64{21}
	tb.Connect(1, "phone", 11, "gw-a", 1)
	tb.Connect(1, "tablet", 21, "gw-b", 1)
	tb.Connect(1, "laptop", 13, "gw-a", 1) // gw-a lost it (closed before Disconnect came)
	tb.Connect(1, "watch", 31, "gw-down", 1)
	tb.Connect(2, "phone", 12, "gw-a", 1)
	srv := &pushServer{t: tb}
	r, err := srv.Notify(context.Background(), &im.PushNotifyRequest{UserId: 1, Notify: &im.SyncNotify{Type: im.SyncType_SYNC_TYPE_MESSAGES, Version: 5}})
	if err != nil || r.GetDevices() != 2 {
		t.Fatalf("Notify = %v, %v; want 2 devices", r, err)
	}
	if !slices.Equal(gws.pushed["gw-a"], []uint64{11}) || !slices.Equal(gws.pushed["gw-b"], []uint64{21}) {
		t.Errorf("pushed %v", gws.pushed)
	}
	if got := devices(tb.Lookup(1)); !slices.Equal(got, []string{"phone@gw-a", "tablet@gw-b", "watch@gw-down"}) {
		t.Errorf("after the notify: %v (the gone laptop forgotten, the unreachable watch kept until its lease ends)", got)
	}
	if r, _ := srv.Notify(context.Background(), &im.PushNotifyRequest{UserId: 99, Notify: &im.SyncNotify{}}); r.GetDevices() != 0 {
		t.Errorf("an offline user: %v", r)
	}
}

// gatewayLog is what a test gateway holds and was asked.
type gatewayLog struct {
	mu     sync.Mutex
	holds  []uint64
	pushed []string       // "conn:type@version"
	calls  map[string]int // method → calls
}

// oldGateway is im.Gateway as a gateway that predates PushMany serves it:
// PushMany answers unimplemented.
type oldGateway struct {
	im.UnimplementedGatewayServer
	*gatewayLog
}

func (g oldGateway) Push(_ context.Context, req *im.GatewayPushRequest) (*im.GatewayPushReply, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls["Push"]++
	return g.pushLocked(req), nil
}

func (g oldGateway) pushLocked(req *im.GatewayPushRequest) *im.GatewayPushReply {
	r := &im.GatewayPushReply{}
	for _, tg := range req.GetTargets() {
		if slices.Contains(g.holds, tg.GetConnId()) {
			r.Pushed++
			g.pushed = append(g.pushed, fmt.Sprintf("%d:%v@%d", tg.GetConnId(), req.GetNotify().GetType(), req.GetNotify().GetVersion()))
		} else {
			r.Gone = append(r.Gone, tg.GetConnId())
		}
	}
	return r
}

// newGateway serves PushMany too.
type newGateway struct{ oldGateway }

func (g newGateway) PushMany(_ context.Context, req *im.GatewayPushManyRequest) (*im.GatewayPushManyReply, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls["PushMany"]++
	out := &im.GatewayPushManyReply{}
	for _, p := range req.GetPushes() {
		out.Replies = append(out.Replies, g.pushLocked(p))
	}
	return out, nil
}

func (g *gatewayLog) take() (pushed []string, calls map[string]int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	pushed, calls = g.pushed, g.calls
	g.pushed, g.calls = nil, map[string]int{}
	slices.Sort(pushed)
	return pushed, calls
}

// serveGateway serves impl as im.Gateway on a real svrkit server on
// loopback until the test ends, and returns its address.
func serveGateway(t *testing.T, impl im.GatewayServer) string {
	return rpctest.Serve(t, func(r svrkit.Registrar) { im.RegisterGatewayServer(r, impl) })
}

// realGateways returns a GatewayInvoker of svrkit clients, closed when the
// test ends.
func realGateways(t *testing.T) GatewayInvoker {
	var mu sync.Mutex
	clients := map[string]*svrkit.Client{}
	return func(addr string) (svrkit.Invoker, error) {
		mu.Lock()
		defer mu.Unlock()
		if clients[addr] == nil {
			clients[addr] = rpctest.Dial(t, addr)
		}
		return clients[addr], nil
	}
}

func notifyOf(user uint64, typ im.SyncType, version uint64) *im.PushNotifyRequest {
	return &im.PushNotifyRequest{UserId: user, Notify: &im.SyncNotify{Type: typ, Version: version}}
}

// TestNotifyManyAcrossGateways: a batch of notifies reaches every live
// device of every user in it, with one PushMany per gateway for the whole
// batch; each notify is answered its own devices; connections a gateway
// answers gone are forgotten.
func TestNotifyManyAcrossGateways(t *testing.T) {
	a := newGateway{oldGateway{gatewayLog: &gatewayLog{holds: []uint64{11, 12}, calls: map[string]int{}}}}
	b := newGateway{oldGateway{gatewayLog: &gatewayLog{holds: []uint64{21, 22}, calls: map[string]int{}}}}
	gwA, gwB := serveGateway(t, a), serveGateway(t, b)
	tb := NewTable(Config{}, realGateways(t))
	tb.Connect(1, "phone", 11, gwA, 1)
	tb.Connect(1, "tablet", 21, gwB, 1)
	tb.Connect(2, "phone", 12, gwA, 1)
	tb.Connect(2, "laptop", 13, gwA, 1) // gw-a lost it (closed before Disconnect came)
	tb.Connect(3, "phone", 22, gwB, 1)
	srv := &pushServer{t: tb}
	msgs, contacts := im.SyncType_SYNC_TYPE_MESSAGES, im.SyncType_SYNC_TYPE_CONTACTS
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := srv.NotifyMany(ctx, &im.PushNotifyManyRequest{UserId: 1, Notifies: []*im.PushNotifyRequest{
		notifyOf(1, msgs, 5), notifyOf(2, msgs, 7), notifyOf(3, contacts, 2), notifyOf(1, contacts, 3), notifyOf(4, msgs, 1),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint32{2, 1, 1, 2, 0}; !slices.Equal(r.GetDevices(), want) {
		t.Errorf("devices %v, want %v", r.GetDevices(), want)
	}
	m, c := msgs.String(), contacts.String()
	for _, tc := range []struct {
		name string
		gw   newGateway
		want []string
	}{
		{"gw-a", a, []string{"11:" + c + "@3", "11:" + m + "@5", "12:" + m + "@7"}},
		{"gw-b", b, []string{"21:" + c + "@3", "21:" + m + "@5", "22:" + c + "@2"}},
	} {
		pushed, calls := tc.gw.take()
		if !slices.Equal(pushed, tc.want) {
			t.Errorf("%s pushed %v, want %v", tc.name, pushed, tc.want)
		}
		if calls["PushMany"] != 1 || calls["Push"] != 0 {
			t.Errorf("%s was called %v, want one PushMany", tc.name, calls)
		}
	}
	if got := devices(tb.Lookup(2)); !slices.Equal(got, []string{"phone@" + gwA}) {
		t.Errorf("user 2 after the batch: %v (the gone laptop forgotten)", got)
	}
}

// TestNotifyManyOldGateway: a gateway that answers PushMany unimplemented
// (it predates it) gets one Push per notify, and every device is still
// notified.
func TestNotifyManyOldGateway(t *testing.T) {
	old := oldGateway{gatewayLog: &gatewayLog{holds: []uint64{31, 32}, calls: map[string]int{}}}
	gw := serveGateway(t, old)
	tb := NewTable(Config{}, realGateways(t))
	tb.Connect(5, "phone", 31, gw, 1)
	tb.Connect(6, "phone", 32, gw, 1)
	srv := &pushServer{t: tb}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs := im.SyncType_SYNC_TYPE_MESSAGES
	r, err := srv.NotifyMany(ctx, &im.PushNotifyManyRequest{UserId: 5, Notifies: []*im.PushNotifyRequest{notifyOf(5, msgs, 1), notifyOf(6, msgs, 2)}})
	if err != nil || !slices.Equal(r.GetDevices(), []uint32{1, 1}) {
		t.Fatalf("NotifyMany = %v, %v; want a device each", r, err)
	}
	pushed, calls := old.take()
	if want := []string{"31:" + msgs.String() + "@1", "32:" + msgs.String() + "@2"}; !slices.Equal(pushed, want) {
		t.Errorf("pushed %v, want %v", pushed, want)
	}
	if calls["Push"] != 2 {
		t.Errorf("the old gateway was called %v, want two Push", calls)
	}
}

// TestNotifyManyLimits: an empty batch, one over MaxNotifyMany, one with
// a notify missing and one routed by a user it does not name are refused
// whole, before anything is pushed.
func TestNotifyManyLimits(t *testing.T) {
	tb, gws, _ := newTestTable()
	gws.holds["gw-a"] = []uint64{11}
	tb.Connect(1, "phone", 11, "gw-a", 1)
	srv := &pushServer{t: tb}
	over := make([]*im.PushNotifyRequest, MaxNotifyMany+1)
	for i := range over {
		over[i] = notifyOf(1, im.SyncType_SYNC_TYPE_MESSAGES, uint64(i+1))
	}
	for _, tc := range []struct {
		name     string
		notifies []*im.PushNotifyRequest
	}{
		{"empty", nil},
		{"over the limit", over},
		{"without a notify", []*im.PushNotifyRequest{notifyOf(1, im.SyncType_SYNC_TYPE_MESSAGES, 1), {UserId: 1}}},
		{"routed by another user", []*im.PushNotifyRequest{notifyOf(2, im.SyncType_SYNC_TYPE_MESSAGES, 1)}},
	} {
		_, err := srv.NotifyMany(context.Background(), &im.PushNotifyManyRequest{UserId: 1, Notifies: tc.notifies})
		if svrkit.CodeOf(err) != svrkit.InvalidArgument {
			t.Errorf("%s: %v, want invalid argument", tc.name, err)
		}
	}
	if len(gws.pushed["gw-a"]) != 0 {
		t.Errorf("a refused batch pushed %v", gws.pushed)
	}
	r, err := srv.NotifyMany(context.Background(), &im.PushNotifyManyRequest{UserId: 1, Notifies: over[:MaxNotifyMany]})
	if err != nil || len(r.GetDevices()) != MaxNotifyMany || r.GetDevices()[MaxNotifyMany-1] != 1 {
		t.Errorf("a batch at the limit: devices %v, %v; want one each", r.GetDevices(), err)
	}
}
