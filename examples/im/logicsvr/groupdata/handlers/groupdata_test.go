package handlers_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/groups"
	"github.com/svrkit/svrkit/examples/im/internal/storagetest"
	"github.com/svrkit/svrkit/examples/im/logicsvr/groupdata/handlers"
	"github.com/svrkit/svrkit/svrkit"
)

// published records what a Server published, and can fail on demand.
type published struct {
	mu    sync.Mutex
	items []groups.Item
	fail  error
}

func (p *published) Publish(_ context.Context, it groups.Item) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	p.items = append(p.items, it)
	return nil
}

func (p *published) take() []groups.Item {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.items
	p.items = nil
	return out
}

type fixture struct {
	t       *testing.T
	ctx     context.Context
	storage im.StorageClient
	s       *handlers.Server
	pub     *published
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	c := storagetest.Start(t, t.TempDir(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	f := &fixture{t: t, ctx: ctx, storage: c.Storage(t), pub: &published{}}
	f.s = handlers.New(f.storage, f.pub, handlers.Config{})
	return f
}

func user(id uint64) *im.GroupMember {
	return &im.GroupMember{UserId: id, Name: fmt.Sprintf("user%d", id)}
}

func users(from, to uint64) []*im.GroupMember {
	var out []*im.GroupMember
	for id := from; id <= to; id++ {
		out = append(out, user(id))
	}
	return out
}

func (f *fixture) create(owner uint64, others ...*im.GroupMember) uint64 {
	f.t.Helper()
	g := groups.ID(owner, "c")
	r, err := f.s.CreateGroup(f.ctx, &im.CreateGroupDataRequest{GroupId: g, Name: "lunch", Owner: user(owner), Members: others, ClientGroupId: "c"})
	if err != nil || !r.GetChanged() || r.GetSeq() != 1 {
		f.t.Fatalf("create: %v, %v", r, err)
	}
	return g
}

func (f *fixture) send(g, from uint64, id string) *im.AppendMessageReply {
	f.t.Helper()
	r, err := f.s.AppendMessage(f.ctx, &im.AppendMessageRequest{GroupId: g, Message: &im.Message{
		FromUserId: from, ClientMsgId: id, Type: im.MessageType_MESSAGE_TYPE_TEXT, Text: id,
	}})
	if err != nil {
		f.t.Fatalf("send %s: %v", id, err)
	}
	return r
}

func wantCode(t *testing.T, what string, err error, code svrkit.Code) {
	t.Helper()
	if svrkit.CodeOf(err) != code {
		t.Fatalf("%s: got %v, want %v", what, err, code)
	}
}

func TestCreateIsIdempotentAndPublished(t *testing.T) {
	f := newFixture(t)
	g := f.create(1, users(2, 3)...)
	if got := f.pub.take(); !slices.Equal(got, []groups.Item{{Group: g, Seq: 1}}) {
		t.Fatalf("published %v", got)
	}
	// The repeat answers the group, unchanged, and publishes a wake-up
	// (the first publish may have been lost).
	r, err := f.s.CreateGroup(f.ctx, &im.CreateGroupDataRequest{GroupId: g, Name: "lunch", Owner: user(1), Members: users(2, 3), ClientGroupId: "c"})
	if err != nil || r.GetChanged() || r.GetSeq() != 1 || r.GetInfo().GetMemberCount() != 3 {
		t.Fatalf("repeat: %v, %v", r, err)
	}
	if got := f.pub.take(); !slices.Equal(got, []groups.Item{{Group: g, Seq: 1}}) {
		t.Fatalf("repeat published %v", got)
	}
	// Once fanned out, a repeat wakes nothing.
	if _, err := f.s.SetFanned(f.ctx, &im.SetFannedRequest{GroupId: g, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.CreateGroup(f.ctx, &im.CreateGroupDataRequest{GroupId: g, Name: "lunch", Owner: user(1), ClientGroupId: "c"}); err != nil {
		t.Fatal(err)
	}
	if got := f.pub.take(); len(got) != 0 {
		t.Fatalf("repeat after fan-out published %v", got)
	}
	// Another creation with the same id is refused, not merged.
	_, err = f.s.CreateGroup(f.ctx, &im.CreateGroupDataRequest{GroupId: g, Name: "x", Owner: user(9), ClientGroupId: "c"})
	wantCode(t, "id taken", err, svrkit.AlreadyExists)
}

func TestMembershipRules(t *testing.T) {
	f := newFixture(t)
	g := f.create(1, user(2))
	_, err := f.s.AddMembers(f.ctx, &im.AddMembersRequest{GroupId: g, ActorUserId: 9, Members: users(3, 3)})
	wantCode(t, "a stranger invites", err, svrkit.PermissionDenied)
	_, err = f.s.RemoveMember(f.ctx, &im.RemoveMemberDataRequest{GroupId: g, ActorUserId: 2, UserId: 1})
	wantCode(t, "a member removes the owner", err, svrkit.PermissionDenied)
	_, err = f.s.Rename(f.ctx, &im.RenameDataRequest{GroupId: g, ActorUserId: 9, Name: "x"})
	wantCode(t, "a stranger renames", err, svrkit.PermissionDenied)
	_, err = f.s.GetGroup(f.ctx, &im.GetGroupRequest{GroupId: groups.ID(5, "none")})
	wantCode(t, "no such group", err, svrkit.NotFound)
	_, err = f.s.AddMembers(f.ctx, &im.AddMembersRequest{GroupId: 5, ActorUserId: 1, Members: users(3, 3)})
	wantCode(t, "a user id as group id", err, svrkit.InvalidArgument)

	// Any member invites; inviting members already in changes nothing.
	r, err := f.s.AddMembers(f.ctx, &im.AddMembersRequest{GroupId: g, ActorUserId: 2, Members: users(2, 4)})
	if err != nil || !r.GetChanged() || len(r.GetMembers()) != 2 || r.GetSeq() != 2 {
		t.Fatalf("invite: %v, %v", r, err)
	}
	if r, err := f.s.AddMembers(f.ctx, &im.AddMembersRequest{GroupId: g, ActorUserId: 2, Members: users(3, 4)}); err != nil || r.GetChanged() {
		t.Fatalf("invite again: %v, %v", r, err)
	}
	// The owner leaves: the earliest member inherits.
	if r, err := f.s.RemoveMember(f.ctx, &im.RemoveMemberDataRequest{GroupId: g, ActorUserId: 1, UserId: 1}); err != nil || !r.GetChanged() || r.GetInfo().GetOwnerUserId() != 2 {
		t.Fatalf("owner leaves: %v, %v", r, err)
	}
	// Leaving again, or a stranger leaving, changes nothing.
	if r, err := f.s.RemoveMember(f.ctx, &im.RemoveMemberDataRequest{GroupId: g, ActorUserId: 1, UserId: 1}); err != nil || r.GetChanged() {
		t.Fatalf("leave again: %v, %v", r, err)
	}
	// The new owner removes a member; a rename by a member.
	if r, err := f.s.RemoveMember(f.ctx, &im.RemoveMemberDataRequest{GroupId: g, ActorUserId: 2, UserId: 3}); err != nil || !r.GetChanged() {
		t.Fatalf("remove: %v, %v", r, err)
	}
	if r, err := f.s.Rename(f.ctx, &im.RenameDataRequest{GroupId: g, ActorUserId: 4, Name: "dinner"}); err != nil || r.GetInfo().GetName() != "dinner" {
		t.Fatalf("rename: %v, %v", r, err)
	}
	rec, err := f.s.GetGroup(f.ctx, &im.GetGroupRequest{GroupId: g})
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, m := range rec.GetMembers() {
		ids = append(ids, m.GetMember().GetUserId())
	}
	if !slices.Equal(ids, []uint64{2, 4}) || rec.GetInfo().GetVersion() != 5 || rec.GetLastSeq() != 5 || rec.GetInfo().GetMemberCount() != 2 {
		t.Fatalf("record: members %v, info %v, last seq %d", ids, rec.GetInfo(), rec.GetLastSeq())
	}
}

// TestMaxMembers: the 501st member is refused with failed_precondition,
// at creation and by invitation, and nothing of the refused change lands.
func TestMaxMembers(t *testing.T) {
	f := newFixture(t)
	_, err := f.s.CreateGroup(f.ctx, &im.CreateGroupDataRequest{GroupId: groups.ID(1, "big"), Name: "big", Owner: user(1), Members: users(2, 501), ClientGroupId: "big"})
	wantCode(t, "create with 501", err, svrkit.FailedPrecondition)
	g := f.create(1, users(2, 500)...)
	_, err = f.s.AddMembers(f.ctx, &im.AddMembersRequest{GroupId: g, ActorUserId: 1, Members: users(499, 501)})
	wantCode(t, "the 501st", err, svrkit.FailedPrecondition)
	rec, err := f.s.GetGroup(f.ctx, &im.GetGroupRequest{GroupId: g})
	if err != nil || len(rec.GetMembers()) != 500 || rec.GetLastSeq() != 1 {
		t.Fatalf("after the refusal: %d members, last seq %d, %v", len(rec.GetMembers()), rec.GetLastSeq(), err)
	}
	// After one leaves there is room for one.
	if _, err := f.s.RemoveMember(f.ctx, &im.RemoveMemberDataRequest{GroupId: g, ActorUserId: 7, UserId: 7}); err != nil {
		t.Fatal(err)
	}
	if r, err := f.s.AddMembers(f.ctx, &im.AddMembersRequest{GroupId: g, ActorUserId: 1, Members: users(501, 501)}); err != nil || r.GetInfo().GetMemberCount() != 500 {
		t.Fatalf("the 501st after a leave: %v, %v", r, err)
	}
}

func TestAppendMessage(t *testing.T) {
	f := newFixture(t)
	g := f.create(1, user(2))
	f.pub.take()
	r := f.send(g, 2, "m1")
	if r.GetSeq() != 2 || r.GetDuplicate() || r.GetSentUnixMs() == 0 {
		t.Fatalf("append: %v", r)
	}
	again := f.send(g, 2, "m1")
	if !again.GetDuplicate() || again.GetSeq() != 2 || again.GetSentUnixMs() != r.GetSentUnixMs() {
		t.Fatalf("repeat: %v, first %v", again, r)
	}
	if got := f.pub.take(); !slices.Equal(got, []groups.Item{{Group: g, Seq: 2}, {Group: g, Seq: 2}}) {
		t.Fatalf("published %v", got)
	}
	// A stranger is refused; unknown groups are not found.
	_, err := f.s.AppendMessage(f.ctx, &im.AppendMessageRequest{GroupId: g, Message: &im.Message{FromUserId: 3, ClientMsgId: "x", Type: im.MessageType_MESSAGE_TYPE_TEXT, Text: "x"}})
	wantCode(t, "stranger", err, svrkit.PermissionDenied)
	_, err = f.s.AppendMessage(f.ctx, &im.AppendMessageRequest{GroupId: groups.ID(7, "x"), Message: &im.Message{FromUserId: 1, ClientMsgId: "x", Type: im.MessageType_MESSAGE_TYPE_TEXT, Text: "x"}})
	wantCode(t, "unknown group", err, svrkit.NotFound)
	// Removed after sending: the retry is a repeat, a new message refused.
	if _, err := f.s.RemoveMember(f.ctx, &im.RemoveMemberDataRequest{GroupId: g, ActorUserId: 1, UserId: 2}); err != nil {
		t.Fatal(err)
	}
	if again := f.send(g, 2, "m1"); !again.GetDuplicate() || again.GetSeq() != 2 {
		t.Fatalf("repeat after removal: %v", again)
	}
	_, err = f.s.AppendMessage(f.ctx, &im.AppendMessageRequest{GroupId: g, Message: &im.Message{FromUserId: 2, ClientMsgId: "m2", Type: im.MessageType_MESSAGE_TYPE_TEXT, Text: "x"}})
	wantCode(t, "removed member sends", err, svrkit.PermissionDenied)

	// The log holds the message as the members will see it.
	log, err := f.s.ReadLog(f.ctx, &im.ReadLogRequest{GroupId: g, AfterSeq: 1, Limit: 1})
	if err != nil || len(log.GetEntries()) != 1 || !log.GetMore() {
		t.Fatalf("read log: %v, %v", log, err)
	}
	m := log.GetEntries()[0].GetEntry().GetMessage()
	if m.GetGroupId() != g || m.GetGroupName() != "lunch" || m.GetFromName() != "user2" || m.GetText() != "m1" || m.GetSentUnixMs() != r.GetSentUnixMs() {
		t.Fatalf("stored message %v", m)
	}
}

// TestPublishFailureIsRetried: a message whose publish failed is stored;
// the client's retry is a repeat and publishes it.
func TestPublishFailureIsRetried(t *testing.T) {
	f := newFixture(t)
	g := f.create(1)
	f.pub.take()
	f.pub.fail = svrkit.NewError(svrkit.Unavailable, "queue down")
	_, err := f.s.AppendMessage(f.ctx, &im.AppendMessageRequest{GroupId: g, Message: &im.Message{FromUserId: 1, ClientMsgId: "m", Type: im.MessageType_MESSAGE_TYPE_TEXT, Text: "m"}})
	wantCode(t, "publish fails", err, svrkit.Unavailable)
	f.pub.fail = nil
	if r := f.send(g, 1, "m"); !r.GetDuplicate() || r.GetSeq() != 2 {
		t.Fatalf("retry: %v", r)
	}
	if got := f.pub.take(); !slices.Equal(got, []groups.Item{{Group: g, Seq: 2}}) {
		t.Fatalf("published %v", got)
	}
}

// TestMembersAtCutOffs: who receives each entry, from the record ReadLog
// returns: a member from the change that added them, to the one that
// removed them, both included.
func TestMembersAtCutOffs(t *testing.T) {
	f := newFixture(t)
	g := f.create(1, user(2))                                                                      // 1: created {1, 2}
	f.send(g, 1, "before")                                                                         // 2
	f.s.AddMembers(f.ctx, &im.AddMembersRequest{GroupId: g, ActorUserId: 1, Members: users(3, 3)}) // 3: +3
	f.send(g, 1, "with 3")                                                                         // 4
	f.s.RemoveMember(f.ctx, &im.RemoveMemberDataRequest{GroupId: g, ActorUserId: 2, UserId: 2})    // 5: 2 left
	f.send(g, 1, "after 2 left")                                                                   // 6
	f.s.AddMembers(f.ctx, &im.AddMembersRequest{GroupId: g, ActorUserId: 1, Members: users(2, 2)}) // 7: 2 again
	f.send(g, 3, "2 back")                                                                         // 8
	log, err := f.s.ReadLog(f.ctx, &im.ReadLogRequest{GroupId: g, AfterFanned: true, Limit: 100})
	if err != nil || len(log.GetEntries()) != 8 {
		t.Fatalf("read log: %d entries, %v", len(log.GetEntries()), err)
	}
	want := map[uint64][]uint64{1: {1, 2}, 2: {1, 2}, 3: {1, 3, 2}, 4: {1, 3, 2}, 5: {1, 3, 2}, 6: {1, 3}, 7: {1, 3, 2}, 8: {1, 3, 2}}
	for _, e := range log.GetEntries() {
		got := groups.MembersAt(log.GetRecord(), e.GetSeq())
		slices.Sort(got)
		w := slices.Clone(want[e.GetSeq()])
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Errorf("members at %d = %v, want %v", e.GetSeq(), got, w)
		}
	}
	// Once the fan-out has passed a removal, the next change forgets the
	// former member.
	if _, err := f.s.SetFanned(f.ctx, &im.SetFannedRequest{GroupId: g, Seq: 8}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Rename(f.ctx, &im.RenameDataRequest{GroupId: g, ActorUserId: 1, Name: "x"}); err != nil {
		t.Fatal(err)
	}
	rec, _ := f.s.GetGroup(f.ctx, &im.GetGroupRequest{GroupId: g})
	if len(rec.GetFormer()) != 0 {
		t.Fatalf("former members after the fan-out passed them: %v", rec.GetFormer())
	}
	// The fanned seq never moves back, nor past the log.
	if r, err := f.s.SetFanned(f.ctx, &im.SetFannedRequest{GroupId: g, Seq: 3}); err != nil || r.GetFannedSeq() != 8 {
		t.Fatalf("set fanned back: %v, %v", r, err)
	}
	_, err = f.s.SetFanned(f.ctx, &im.SetFannedRequest{GroupId: g, Seq: 99})
	wantCode(t, "fanned past the log", err, svrkit.InvalidArgument)
}

// TestTwoOwners: a second instance writing the same group (a routing
// change) leaves the first one's cache stale; the write conditions catch
// it and the first re-reads, so no seq is taken twice and no rule is
// checked against a stale record.
func TestTwoOwners(t *testing.T) {
	f := newFixture(t)
	g := f.create(1, user(2))
	other := handlers.New(f.storage, f.pub, handlers.Config{})
	if _, err := other.AppendMessage(f.ctx, &im.AppendMessageRequest{GroupId: g, Message: &im.Message{FromUserId: 1, ClientMsgId: "a", Type: im.MessageType_MESSAGE_TYPE_TEXT, Text: "a"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.RemoveMember(f.ctx, &im.RemoveMemberDataRequest{GroupId: g, ActorUserId: 1, UserId: 2}); err != nil {
		t.Fatal(err)
	}
	// f.s still believes 2 is a member and the log ends at 1.
	_, err := f.s.AppendMessage(f.ctx, &im.AppendMessageRequest{GroupId: g, Message: &im.Message{FromUserId: 2, ClientMsgId: "b", Type: im.MessageType_MESSAGE_TYPE_TEXT, Text: "b"}})
	wantCode(t, "removed member through the stale instance", err, svrkit.PermissionDenied)
	if r := f.send(g, 1, "c"); r.GetSeq() != 4 {
		t.Fatalf("seq after another instance's writes: %d, want 4", r.GetSeq())
	}
}

func TestUserGroups(t *testing.T) {
	c := storagetest.Start(t, t.TempDir(), nil)
	ctx := context.Background()
	s := handlers.NewUserGroupsServer(c.Storage(t), handlers.Config{})
	g1, g2 := groups.ID(1, "a"), groups.ID(1, "b")
	apply := func(g uint64, member bool, seq uint64) bool {
		r, err := s.ApplyMembership(ctx, &im.ApplyMembershipRequest{UserId: 7, GroupId: g, Member: member, Seq: seq})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetChanged()
	}
	list := func() []uint64 {
		r, err := s.ListUserGroups(ctx, &im.ListUserGroupsRequest{UserId: 7})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetGroupIds()
	}
	apply(g1, true, 1)
	apply(g2, true, 3)
	apply(g2, false, 5)
	if apply(g2, true, 3) {
		t.Error("a late join older than the leave was applied")
	}
	if apply(g1, true, 1) {
		t.Error("a repeated join was applied again")
	}
	if got := list(); !slices.Equal(got, []uint64{g1}) {
		t.Errorf("groups = %v, want [%d]", got, g1)
	}
	apply(g2, true, 9)
	want := []uint64{g1, g2}
	slices.Sort(want)
	if got := list(); !slices.Equal(got, want) {
		t.Errorf("groups after rejoining = %v, want %v", got, want)
	}
	_, err := s.ApplyMembership(ctx, &im.ApplyMembershipRequest{UserId: g1, GroupId: g2, Member: true, Seq: 1})
	if svrkit.CodeOf(err) != svrkit.InvalidArgument {
		t.Errorf("a group id as user: %v", err)
	}
}
