package im_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/imclient"
	"github.com/svrkit/svrkit/examples/im/imtest"
	"github.com/svrkit/svrkit/svrkit"
)

// TestGroups is issue #11's proof, on the real backend under `svrkit up`
// (one backend for its parts, which run one after the other):
//
//   - scenario: a group of a version 2 client and a version 1 client (a
//     client from before groups) and others, with members joining,
//     leaving and removed between messages: each member's devices get
//     exactly the group's messages from their joining to their leaving,
//     once each, in the group's order; the version 1 client gets them
//     adapted and its replies reach the group; every bad request gets its
//     defined error and loses nothing.
//   - fanout chaos: a 500-member group; the fan-out worker is SIGKILLed in
//     the middle of a fan-out, then the queue service, then both; after
//     they restart every member has every message exactly once, in order.
func TestGroups(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole backend with restarts")
	}
	b := imtest.Start(t)
	addrs, err := imclient.ReadStateFile(b.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	if addrs.Group == "" {
		t.Fatal("no group Logicsvr in the backend")
	}
	t.Run("scenario", func(t *testing.T) { groupScenario(t, b, addrs) })
	t.Run("fanout chaos", func(t *testing.T) { fanoutChaos(t, b, addrs) })
	if t.Failed() {
		t.Logf("backend output (tail):\n%s", tail(b.Output(), 80))
	}
}

// device is one logged-in device and what it has synced.
type device struct {
	name string
	c    *imclient.Client
	mu   sync.Mutex
	msgs []*im.Message
	chs  []*im.GroupChange
	bad  []string
	last map[im.SyncType]uint64
}

func newDevice(t *testing.T, ctx context.Context, addrs imclient.Addrs, user, dev string, opts ...imclient.Option) *device {
	t.Helper()
	c := imclient.New(addrs, opts...)
	if _, err := c.Login(ctx, user, "password-"+user, dev); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return &device{name: user + "/" + dev, c: c, last: map[im.SyncType]uint64{}}
}

// sync syncs until nothing is waiting, recording items and what is wrong
// with them (a version going back, a duplicate).
func (d *device) sync(ctx context.Context) error {
	items, gap, err := d.c.SyncAll(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	if gap {
		d.bad = append(d.bad, "sync answered gap")
	}
	for _, it := range items {
		if v := it.GetVersion(); v <= d.last[it.GetType()] {
			d.bad = append(d.bad, fmt.Sprintf("%v version %d after %d", it.GetType(), v, d.last[it.GetType()]))
		}
		d.last[it.GetType()] = it.GetVersion()
		if m := it.GetMessage(); m != nil {
			d.msgs = append(d.msgs, m)
		}
		if ch := it.GetGroup(); ch != nil {
			d.chs = append(d.chs, ch)
		}
	}
	return err
}

// syncUntil syncs until have(d) holds, for at most 30s.
func (d *device) syncUntil(t *testing.T, ctx context.Context, what string, have func(*device) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := d.sync(ctx); err != nil && !imclient.Retryable(err) {
			t.Fatalf("%s: sync: %v", d.name, err)
		}
		d.mu.Lock()
		ok := have(d)
		d.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s within 30s; has %d messages", d.name, what, len(d.msgs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// texts are the texts of d's messages of group g (for a version 1 device:
// of the messages from or to g).
func (d *device) texts(g uint64) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, m := range d.msgs {
		if m.GetGroupId() == g || m.GetFromUserId() == g || m.GetToUserId() == g {
			out = append(out, m.GetText())
		}
	}
	return out
}

func wantCode(t *testing.T, what string, err error, code svrkit.Code) {
	t.Helper()
	if svrkit.CodeOf(err) != code {
		t.Errorf("%s: got %v, want %v", what, err, code)
	}
}

func groupScenario(t *testing.T, b *imtest.Backend, addrs imclient.Addrs) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ids := map[string]uint64{}
	for _, name := range []string{"gina", "vic", "carl", "dora", "eve"} {
		id, err := imclient.New(addrs).Register(ctx, name, "password-"+name, "")
		if err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
		ids[name] = id
	}
	gina := newDevice(t, ctx, addrs, "gina", "phone")
	ginaTab := newDevice(t, ctx, addrs, "gina", "tablet")
	vic := newDevice(t, ctx, addrs, "vic", "phone", imclient.WithClientVersion(1)) // knows no groups
	carl := newDevice(t, ctx, addrs, "carl", "phone")
	dora := newDevice(t, ctx, addrs, "dora", "phone")
	eve := newDevice(t, ctx, addrs, "eve", "phone", imclient.WithClientVersion(1))

	// Bad input first: each refused with its code, nothing created.
	_, err := gina.c.CreateGroup(ctx, strings.Repeat("n", 65), []uint64{ids["vic"]}, "")
	wantCode(t, "oversized name", err, svrkit.InvalidArgument)
	_, err = gina.c.CreateGroup(ctx, "x", []uint64{999999}, "")
	wantCode(t, "unknown member", err, svrkit.NotFound)
	_, err = gina.c.SendGroupText(ctx, 1<<63|12345, "", "anyone?")
	wantCode(t, "unknown group", err, svrkit.NotFound)

	r, err := gina.c.CreateGroup(ctx, "lunch", []uint64{ids["vic"], ids["carl"]}, "lunch-1")
	if err != nil || r.GetGroup().GetMemberCount() != 3 {
		t.Fatalf("create: %v, %v", r, err)
	}
	g := r.GetGroup().GetGroupId()
	if again, err := gina.c.CreateGroup(ctx, "lunch", []uint64{ids["vic"], ids["carl"]}, "lunch-1"); err != nil || again.GetChanged() || again.GetGroup().GetGroupId() != g {
		t.Fatalf("repeated create: %v, %v", again, err)
	}

	var sent []string // the group's messages in send order
	send := func(d *device, text string) {
		t.Helper()
		var err error
		if d == vic {
			_, err = d.c.SendText(ctx, g, "", text) // version 1: the group is a user to it
		} else {
			_, err = d.c.SendGroupText(ctx, g, "", text)
		}
		if err != nil {
			t.Fatalf("%s sends %q: %v", d.name, text, err)
		}
		sent = append(sent, text)
	}

	send(gina, "a1")
	// The version 1 client learns of the group from its first message,
	// which comes as one-to-one text from the group's id.
	vic.syncUntil(t, ctx, "the group's first message", func(d *device) bool { return len(d.msgs) > 0 })
	if m := vic.msgs[0]; m.GetFromUserId() != g || m.GetToUserId() != ids["vic"] || m.GetText() != "[lunch] gina: a1" {
		t.Fatalf("version 1 client got %v", m)
	}
	send(vic, "b1")
	send(carl, "c1")
	// A stranger, on a version 1 client, answering the group: refused.
	_, err = eve.c.SendText(ctx, g, "", "let me in")
	wantCode(t, "stranger sends to the group", err, svrkit.PermissionDenied)
	_, err = dora.c.SendGroupText(ctx, g, "", "me too?")
	wantCode(t, "non-member sends to the group", err, svrkit.PermissionDenied)
	_, err = dora.c.GroupMembers(ctx, g)
	wantCode(t, "non-member lists the members", err, svrkit.PermissionDenied)
	_, err = dora.c.InviteMembers(ctx, g, []uint64{ids["eve"]})
	wantCode(t, "non-member invites", err, svrkit.PermissionDenied)
	_, err = eve.c.SendText(ctx, 1<<63|777, "", "hello?")
	wantCode(t, "version 1 client sends to a made-up group id", err, svrkit.NotFound)

	if _, err := carl.c.InviteMembers(ctx, g, []uint64{ids["dora"]}); err != nil {
		t.Fatalf("invite: %v", err)
	}
	send(dora, "d1")
	send(gina, "a2")
	if _, err := carl.c.LeaveGroup(ctx, g); err != nil {
		t.Fatalf("leave: %v", err)
	}
	_, err = carl.c.SendGroupText(ctx, g, "", "c2")
	wantCode(t, "member who left sends", err, svrkit.PermissionDenied)
	_, err = carl.c.GroupMembers(ctx, g)
	wantCode(t, "member who left lists members", err, svrkit.PermissionDenied)
	send(vic, "b2")
	send(dora, "d2")
	_, err = vic.c.RemoveMember(ctx, g, ids["dora"])
	wantCode(t, "non-owner removes", err, svrkit.PermissionDenied)
	if _, err := gina.c.RemoveMember(ctx, g, ids["dora"]); err != nil {
		t.Fatalf("remove: %v", err)
	}
	_, err = dora.c.SendGroupText(ctx, g, "", "d3")
	wantCode(t, "removed member sends", err, svrkit.PermissionDenied)
	_, err = gina.c.RenameGroup(ctx, g, strings.Repeat("é", 33)) // 66 bytes
	wantCode(t, "oversized new name", err, svrkit.InvalidArgument)
	if _, err := gina.c.RenameGroup(ctx, g, "dinner"); err != nil {
		t.Fatalf("rename: %v", err)
	}
	// The members, in the order they joined, under the new name.
	ml, err := vic.c.GroupMembers(ctx, g)
	if err != nil || ml.GetGroup().GetName() != "dinner" || len(ml.GetMembers()) != 2 ||
		ml.GetMembers()[0].GetUserId() != ids["gina"] || ml.GetMembers()[1].GetUserId() != ids["vic"] {
		t.Fatalf("members after the changes: %v, %v", ml, err)
	}
	send(gina, "a3")

	// Who gets what: everything between joining and leaving, in order.
	want := map[*device][]string{
		gina:    sent,
		ginaTab: sent,
		carl:    {"a1", "b1", "c1", "d1", "a2"},
		dora:    {"d1", "a2", "b2", "d2"},
	}
	for d, w := range want {
		d.syncUntil(t, ctx, "every message", func(d *device) bool { return len(d.msgs) >= len(w) })
	}
	vic.syncUntil(t, ctx, "every message", func(d *device) bool { return len(d.msgs) >= len(sent) })
	// A little longer, to catch a late duplicate or a message past a cut-off.
	time.Sleep(300 * time.Millisecond)
	for d, w := range want {
		if err := d.sync(ctx); err != nil {
			t.Fatal(err)
		}
		if got := d.texts(g); !slices.Equal(got, w) {
			t.Errorf("%s got %q, want %q", d.name, got, w)
		}
		if len(d.bad) > 0 {
			t.Errorf("%s: %s", d.name, strings.Join(d.bad, "; "))
		}
	}
	// Everyone sees the senders' names and the group's name as it was.
	for _, m := range gina.msgs {
		if m.GetGroupId() == g && (m.GetFromName() == "" || m.GetGroupName() == "" || m.GetToUserId() != 0) {
			t.Errorf("gina got a group message without its names: %v", m)
		}
	}

	// The version 1 client: every message as one-to-one text, its own
	// from itself to the group, others' from the group; nothing it does
	// not know.
	if err := vic.sync(ctx); err != nil {
		t.Fatal(err)
	}
	wantV1 := []string{"[lunch] gina: a1", "[lunch] b1", "[lunch] carl: c1", "[lunch] dora: d1", "[lunch] gina: a2",
		"[lunch] b2", "[lunch] dora: d2", "[dinner] gina: a3"}
	if got := vic.texts(g); !slices.Equal(got, wantV1) {
		t.Errorf("version 1 client got %q, want %q", got, wantV1)
	}
	for _, m := range vic.msgs {
		own := m.GetFromUserId() == ids["vic"]
		if m.GetGroupId() != 0 || m.GetGroupName() != "" || m.GetFromName() != "" ||
			own && m.GetToUserId() != g || !own && (m.GetFromUserId() != g || m.GetToUserId() != ids["vic"]) {
			t.Errorf("version 1 client got %v", m)
		}
	}
	if len(vic.chs) != 0 || len(vic.bad) != 0 {
		t.Errorf("version 1 client got %d group changes; %v", len(vic.chs), vic.bad)
	}

	// Membership changes reached the version 2 members through Sync.
	kinds := func(d *device) []string {
		var out []string
		for _, ch := range d.chs {
			if ch.GetGroup().GetGroupId() == g {
				out = append(out, strings.TrimPrefix(ch.GetKind().String(), "KIND_"))
			}
		}
		return out
	}
	for d, w := range map[*device][]string{
		gina: {"CREATED", "MEMBERS_ADDED", "MEMBER_LEFT", "MEMBER_REMOVED", "RENAMED"},
		carl: {"CREATED", "MEMBERS_ADDED", "MEMBER_LEFT"},
		dora: {"MEMBERS_ADDED", "MEMBER_LEFT", "MEMBER_REMOVED"},
	} {
		d.syncUntil(t, ctx, "every group change", func(d *device) bool { return len(kinds(d)) >= len(w) })
		if got := kinds(d); !slices.Equal(got, w) {
			t.Errorf("%s got changes %v, want %v", d.name, got, w)
		}
	}
	for d, n := range map[*device]int{gina: 1, vic: 1, carl: 0, dora: 0, eve: 0} {
		l, err := d.c.MyGroups(ctx)
		if err != nil || len(l.GetGroups()) != n {
			t.Errorf("%s's groups: %v, %v; want %d", d.name, l.GetGroups(), err, n)
		}
	}
}

func fanoutChaos(t *testing.T, b *imtest.Backend, addrs imclient.Addrs) {
	const members = 500
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	accounts := im.NewAccountDataClient(b.RPC("accountdata", "operator"))
	owner := imclient.New(addrs)
	ownerID, err := owner.Register(ctx, "frank", "password-frank", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Login(ctx, "frank", "password-frank", "phone"); err != nil {
		t.Fatal(err)
	}
	// The other members need no password, only to exist: made directly
	// in accountdata, without Register's deliberately slow hash.
	ids := make([]uint64, members-1)
	for i := range ids {
		r, err := accounts.CreateAccount(ctx, &im.CreateAccountRequest{Name: fmt.Sprintf("member%03d", i), PasswordHash: "not a hash: no login"})
		if err != nil {
			t.Fatalf("create member %d: %v", i, err)
		}
		ids[i] = r.GetUserId()
	}
	r, err := owner.CreateGroup(ctx, "everyone", ids, "")
	if err != nil || r.GetGroup().GetMemberCount() != members {
		t.Fatalf("create a %d-member group: %v, %v", members, r, err)
	}
	g := r.GetGroup().GetGroupId()
	// The 501st is refused, and the group stays as it was.
	extra, err := accounts.CreateAccount(ctx, &im.CreateAccountRequest{Name: "member500", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = owner.InviteMembers(ctx, g, []uint64{extra.GetUserId()})
	wantCode(t, "the 501st member", err, svrkit.FailedPrecondition)
	_, err = owner.CreateGroup(ctx, "too many", append(slices.Clone(ids), extra.GetUserId()), "")
	wantCode(t, "creating a group of 501", err, svrkit.FailedPrecondition)
	if ml, err := owner.GroupMembers(ctx, g); err != nil || len(ml.GetMembers()) != members {
		t.Fatalf("after the refusals the group has %d members, %v", len(ml.GetMembers()), err)
	}

	fanout := im.NewFanoutWorkerClient(b.RPC("fanout", "operator"))
	deliveries := func() uint64 {
		st, err := fanout.GetStats(ctx, &im.FanoutStatsRequest{})
		if err != nil {
			return 0
		}
		return st.GetDeliveries()
	}
	var sent []string
	burst := func(round string, n int) {
		t.Helper()
		for i := range n {
			text := fmt.Sprintf("%s-%d", round, i)
			if _, err := owner.SendGroupText(ctx, g, text, text); err != nil {
				t.Fatalf("send %s: %v", text, err)
			}
			sent = append(sent, text)
		}
	}
	// killMidway SIGKILLs the victims once the worker has made some of a
	// burst's inbox writes but not all.
	killMidway := func(round string, victims ...string) {
		t.Helper()
		// A burst long enough that the fan-out is still at it when the
		// sends end: batched, it keeps up with most of a 10-message burst
		// (3,125 of 5,000 writes done in one run on a quiet machine).
		const n = 30
		base := deliveries()
		burst(round, n)
		// One minute. (It was three while storage, overloaded by the
		// burst on a busy machine, shed some members' writes and not
		// others and in-order fan-out waited on the refused member; a
		// fan-out's calls now carry one priority above the sends and the
		// group's user key, so it is admitted or shed whole.)
		deadline := time.Now().Add(time.Minute)
		for {
			d := deliveries() - base
			if d > 100 {
				if d >= n*members {
					t.Fatalf("%s: the fan-out finished (%d writes) before the kill", round, d)
				}
				t.Logf("%s: killing %v after %d of %d inbox writes", round, victims, d, n*members)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: fan-out made %d writes in a minute", round, d)
			}
			time.Sleep(time.Millisecond)
		}
		var pids []int
		for _, v := range victims {
			pid, err := b.Kill(v)
			if err != nil {
				t.Fatalf("killing %s: %v", v, err)
			}
			pids = append(pids, pid)
		}
		for i, v := range victims {
			if err := b.WaitReady(ctx, v, pids[i], time.Minute); err != nil {
				t.Fatalf("%v\n%s", err, tail(b.Output(), 60))
			}
		}
	}
	killMidway("worker", "fanout")
	killMidway("queue", "queue")
	killMidway("both", "fanout", "queue")
	burst("after", 3) // and the queue takes work again

	// Wait for the group's fan-out to catch up, then read every inbox.
	data := im.NewGroupDataClient(b.RPC("groupdata", "operator"))
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r, err := data.ReadLog(ctx, &im.ReadLogRequest{GroupId: g, AfterFanned: true, Limit: 1})
		if err == nil && len(r.GetEntries()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fan-out not done 2 minutes after the last restart: %v, %v", r.GetFannedSeq(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	md := im.NewMessageDataClient(b.RPC("messagedata", "operator"))
	// The audit goes first under overload control: messagedata may still
	// be shedding after the fan-out's bursts.
	audit := svrkit.WithEntryPriority(ctx, 255, "")
	for _, u := range append([]uint64{ownerID}, ids...) {
		var got []string
		var key []byte
		for {
			r, err := md.SyncInbox(audit, &im.SyncInboxRequest{UserId: u, DeviceId: "audit", SyncKey: key, Limit: 1000})
			if err != nil {
				t.Fatalf("inbox of %d: %v", u, err)
			}
			for _, it := range r.GetItems() {
				if m := it.GetMessage(); m.GetGroupId() == g {
					got = append(got, m.GetText())
				}
			}
			key = r.GetSyncKey()
			if !r.GetContinueFlag() {
				break
			}
		}
		if !slices.Equal(got, sent) {
			t.Fatalf("user %d has %d messages %q; want each of the %d sent once, in order", u, len(got), got, len(sent))
		}
	}
	t.Logf("%d members have all %d messages exactly once, in order, after kills of the worker, the queue and both", members, len(sent))
}
