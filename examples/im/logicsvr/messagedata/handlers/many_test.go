package handlers_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/storagetest"
	"github.com/svrkit/svrkit/examples/im/logicsvr/messagedata/handlers"
)

// pushLog records Notify calls.
type pushLog struct {
	mu  sync.Mutex
	got []string // "user:version"
}

func (p *pushLog) Notify(_ context.Context, user uint64, item *im.SyncItem) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, fmt.Sprintf("%d:%d", user, item.GetVersion()))
}

func (p *pushLog) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.got
	p.got = nil
	slices.Sort(out)
	return out
}

func message(text string) *im.SyncItem {
	return &im.SyncItem{Type: im.SyncType_SYNC_TYPE_MESSAGES, Item: &im.SyncItem_Message{Message: &im.Message{
		FromUserId: 1, ToUserId: 1<<63 | 2, ClientMsgId: text, Type: im.MessageType_MESSAGE_TYPE_TEXT, Text: text}}}
}

// DeliverMany tells the Pusher of each member whose item is new, with its
// version, and of no duplicate: as Deliver does per member.
func TestDeliverManyNotifiesNewMembersOnly(t *testing.T) {
	c := storagetest.Start(t, t.TempDir(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	push := &pushLog{}
	s := handlers.New(c.Storage(t), handlers.Config{}, push)
	item := message("hi")
	one, err := s.Deliver(ctx, &im.DeliverRequest{UserId: 11, Item: item, DedupId: "g:2:1"})
	if err != nil {
		t.Fatal(err)
	}
	push.take()
	r, err := s.DeliverMany(ctx, &im.DeliverManyRequest{UserId: 10, UserIds: []uint64{10, 11, 12}, Item: item, DedupId: "g:2:1"})
	if err != nil {
		t.Fatal(err)
	}
	rs := r.GetResults()
	if rs[1].GetVersion() != one.GetVersion() || !rs[1].GetDuplicate() {
		t.Fatalf("user 11: %v, delivered alone as %v", rs[1], one)
	}
	want := []string{fmt.Sprintf("10:%d", rs[0].GetVersion()), fmt.Sprintf("12:%d", rs[2].GetVersion())}
	if got := push.take(); !slices.Equal(got, want) {
		t.Fatalf("notified %v, want %v", got, want)
	}
	if _, err := s.DeliverMany(ctx, &im.DeliverManyRequest{UserId: 10, UserIds: []uint64{10, 11, 12}, Item: item, DedupId: "g:2:1"}); err != nil {
		t.Fatal(err)
	}
	if got := push.take(); len(got) != 0 {
		t.Fatalf("a redelivered batch notified %v", got)
	}
}

// With two storage instances, DeliverMany writes each member on the
// instance its own calls route to: one storage call per instance.
func TestDeliverManyAcrossStorageShards(t *testing.T) {
	two := storagetest.StartTwoStores(t, "messagedata")
	srv, err := handlers.NewMessageData(two.Host)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	users := two.Spread(t, 40)
	r, err := srv.DeliverMany(ctx, &im.DeliverManyRequest{UserId: users[0], UserIds: users, Item: message("spread"), DedupId: "g:2:9"})
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range users {
		owner := two.Owner(u)
		for addr, c := range two.Stores {
			sr, err := c.Storage(t).Sync(ctx, &im.InboxSyncRequest{UserId: u, DeviceId: "probe", Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			if addr == owner {
				want = 1
				if e := sr.GetEntries(); len(e) == 1 && e[0].GetVersion() != r.GetResults()[i].GetVersion() {
					t.Errorf("user %d: stored at version %d, answered %d", u, e[0].GetVersion(), r.GetResults()[i].GetVersion())
				}
			}
			if len(sr.GetEntries()) != want {
				t.Errorf("user %d (routed to %s): %d entries on %s, want %d", u, owner, len(sr.GetEntries()), addr, want)
			}
		}
	}
}
