package handlers_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/groups"
	"github.com/svrkit/svrkit/examples/im/internal/storagetest"
	"github.com/svrkit/svrkit/examples/im/logicsvr/fanout/handlers"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/queue/embedded"
)

const token = "fanout-test-token"

// pipeline is the storage layer with groupdata, a real queue server and
// a fan-out worker, all in this process.
type pipeline struct {
	t       *testing.T
	ctx     context.Context
	cluster *storagetest.Cluster
	data    im.GroupDataClient
	qcfg    groups.QueueConfig
}

func startPipeline(t *testing.T) *pipeline {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	srv, err := embedded.Start(ctx, embedded.Config{Dir: filepath.Join(t.TempDir(), "queue"), Listen: "127.0.0.1:0", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	qcfg := groups.QueueConfig{URLs: []string{srv.URL()}, Token: token}
	c := storagetest.Start(t, t.TempDir(), &storagetest.Options{Queue: qcfg})
	return &pipeline{t: t, ctx: ctx, cluster: c, data: c.GroupData(t), qcfg: qcfg}
}

// worker starts a fan-out worker; its stop is returned (and run at the
// end of the test).
func (p *pipeline) worker() (*handlers.Worker, func(context.Context) error) {
	p.t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w := handlers.New(p.data, p.cluster.UserGroups(p.t), p.cluster.MessageData(p.t), handlers.Config{}, log)
	q := groups.DialQueue(p.qcfg, "fanout-test", log)
	stop := w.Start(q, 20*time.Second)
	stopped := false
	stopAll := func(ctx context.Context) error {
		if stopped {
			return nil
		}
		stopped = true
		err := stop(ctx)
		q.Close()
		return err
	}
	p.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopAll(ctx)
	})
	return w, stopAll
}

func member(id uint64) *im.GroupMember {
	return &im.GroupMember{UserId: id, Name: fmt.Sprintf("u%d", id)}
}

// waitFanned waits until group's fanned seq reaches its log's end.
func (p *pipeline) waitFanned(g uint64, within time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for {
		r, err := p.data.ReadLog(p.ctx, &im.ReadLogRequest{GroupId: g, AfterFanned: true, Limit: 1})
		if err == nil && len(r.GetEntries()) == 0 {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("group %d not fanned out within %v (%v, %v)", g, within, r.GetFannedSeq(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// inbox returns, from user's inboxes (read as a fresh device), the seqs
// of group's entries: messages and changes, in inbox order.
func (p *pipeline) inbox(user, g uint64) (messages, changes []string) {
	p.t.Helper()
	md := p.cluster.MessageData(p.t)
	// The audit goes first under overload control (messagedata may still
	// be shedding after the fan-out's burst), not at the default priority.
	ctx := svrkit.WithEntryPriority(p.ctx, 255, "")
	var key []byte
	for {
		r, err := md.SyncInbox(ctx, &im.SyncInboxRequest{UserId: user, DeviceId: "audit", SyncKey: key, Limit: 1000})
		if err != nil {
			p.t.Fatalf("sync %d: %v", user, err)
		}
		for _, it := range r.GetItems() {
			if m := it.GetMessage(); m.GetGroupId() == g {
				messages = append(messages, m.GetText())
			}
			if ch := it.GetGroup(); ch.GetGroup().GetGroupId() == g {
				changes = append(changes, ch.GetKind().String())
			}
		}
		key = r.GetSyncKey()
		if !r.GetContinueFlag() {
			return messages, changes
		}
	}
}

func (p *pipeline) send(g, from uint64, text string) {
	p.t.Helper()
	_, err := p.data.AppendMessage(p.ctx, &im.AppendMessageRequest{GroupId: g, Message: &im.Message{
		FromUserId: from, ClientMsgId: text, Type: im.MessageType_MESSAGE_TYPE_TEXT, Text: text,
	}})
	if err != nil {
		p.t.Fatalf("send %q: %v", text, err)
	}
}

// TestFanOutCutOffsAndOrder: members get exactly the entries from their
// joining to their leaving, in the group's order, once each.
func TestFanOutCutOffsAndOrder(t *testing.T) {
	p := startPipeline(t)
	p.worker()
	g := groups.ID(1, "c")
	if _, err := p.data.CreateGroup(p.ctx, &im.CreateGroupDataRequest{GroupId: g, Name: "g", Owner: member(1), Members: []*im.GroupMember{member(2)}, ClientGroupId: "c"}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		p.send(g, 1, fmt.Sprintf("a%d", i))
	}
	if _, err := p.data.AddMembers(p.ctx, &im.AddMembersRequest{GroupId: g, ActorUserId: 2, Members: []*im.GroupMember{member(3)}}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		p.send(g, 2, fmt.Sprintf("b%d", i))
	}
	if _, err := p.data.RemoveMember(p.ctx, &im.RemoveMemberDataRequest{GroupId: g, ActorUserId: 2, UserId: 2}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		p.send(g, 3, fmt.Sprintf("c%d", i))
	}
	p.waitFanned(g, time.Minute)

	seq := func(prefix string) []string {
		var out []string
		for i := range 5 {
			out = append(out, fmt.Sprintf("%s%d", prefix, i))
		}
		return out
	}
	a, b, c := seq("a"), seq("b"), seq("c")
	for _, tc := range []struct {
		user     uint64
		messages []string
		changes  []string
	}{
		{1, slices.Concat(a, b, c), []string{"KIND_CREATED", "KIND_MEMBERS_ADDED", "KIND_MEMBER_LEFT"}},
		{2, slices.Concat(a, b), []string{"KIND_CREATED", "KIND_MEMBERS_ADDED", "KIND_MEMBER_LEFT"}},
		{3, slices.Concat(b, c), []string{"KIND_MEMBERS_ADDED", "KIND_MEMBER_LEFT"}},
	} {
		ms, chs := p.inbox(tc.user, g)
		if !slices.Equal(ms, tc.messages) {
			t.Errorf("user %d messages %v, want %v", tc.user, ms, tc.messages)
		}
		if !slices.Equal(chs, tc.changes) {
			t.Errorf("user %d changes %v, want %v", tc.user, chs, tc.changes)
		}
	}
	// The index follows the log.
	for u, want := range map[uint64]int{1: 1, 2: 0, 3: 1} {
		r, err := p.cluster.UserGroups(t).ListUserGroups(p.ctx, &im.ListUserGroupsRequest{UserId: u})
		if err != nil || len(r.GetGroupIds()) != want {
			t.Errorf("user %d's index %v, %v; want %d groups", u, r.GetGroupIds(), err, want)
		}
	}
}

// TestFanOutSurvivesWorkerStop: a worker stopped in the middle of a
// 500-member fan-out (its run cancelled, the item not acknowledged), and a
// new one started: every member has every message exactly once, in order.
func TestFanOutSurvivesWorkerStop(t *testing.T) {
	if testing.Short() {
		t.Skip("fans out to 500 members")
	}
	p := startPipeline(t)
	w, stop := p.worker()
	g := groups.ID(1, "big")
	var others []*im.GroupMember
	for id := uint64(2); id <= 500; id++ {
		others = append(others, member(id))
	}
	if _, err := p.data.CreateGroup(p.ctx, &im.CreateGroupDataRequest{GroupId: g, Name: "big", Owner: member(1), Members: others, ClientGroupId: "big"}); err != nil {
		t.Fatal(err)
	}
	const n = 5
	for i := range n {
		p.send(g, uint64(1+i), fmt.Sprintf("m%d", i))
	}
	// Stop the worker once it is part of the way through.
	deadline := time.Now().Add(time.Minute)
	for w.Stats().Deliveries < 700 {
		if time.Now().After(deadline) {
			t.Fatalf("fan-out made %d deliveries in a minute", w.Stats().Deliveries)
		}
		time.Sleep(time.Millisecond)
	}
	cancelled, cancel := context.WithCancel(p.ctx)
	cancel()
	stop(cancelled)
	before := w.Stats().Deliveries
	if before >= 500*(n+1) {
		t.Fatalf("the worker finished (%d deliveries) before it was stopped", before)
	}
	w2, _ := p.worker()
	p.waitFanned(g, 2*time.Minute)
	// Writes that landed as the first worker was cut off count for neither
	// (the first never heard back, the second found a repeat): at most
	// one write per member and entry, never more.
	if got := before + w2.Stats().Deliveries; got > 500*(n+1) || w2.Stats().Deliveries == 0 {
		t.Errorf("%d inbox writes made (%d, then %d), want at most %d, some by the second worker", got, before, w2.Stats().Deliveries, 500*(n+1))
	}
	want := []string{"m0", "m1", "m2", "m3", "m4"}
	for u := uint64(1); u <= 500; u++ {
		ms, chs := p.inbox(u, g)
		if !slices.Equal(ms, want) || len(chs) != 1 {
			t.Fatalf("user %d has messages %v and changes %v, want %v and one", u, ms, chs, want)
		}
	}
}
