package handlers_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/shard"
	"github.com/svrkit/svrkit/examples/im/internal/storagetest"
	"github.com/svrkit/svrkit/examples/im/logicsvr/messagedata/handlers"
)

func pairOf(from, to uint64, id string) *im.DeliverPairRequest {
	return &im.DeliverPairRequest{
		UserId: to, DedupId: fmt.Sprintf("%d:%s", from, id), SenderUserId: from, SenderDedupId: fmt.Sprintf("%d:%s:self", from, id),
		Item: &im.SyncItem{Type: im.SyncType_SYNC_TYPE_MESSAGES, Item: &im.SyncItem_Message{Message: &im.Message{
			FromUserId: from, ToUserId: to, ClientMsgId: id, Type: im.MessageType_MESSAGE_TYPE_TEXT, Text: id}}},
	}
}

// DeliverPair tells the Pusher of each copy it stored for the first time,
// with its version, and of no duplicate: as the two Delivers would.
func TestDeliverPairNotifiesNewCopiesOnly(t *testing.T) {
	c := storagetest.Start(t, t.TempDir(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	push := &pushLog{}
	s := handlers.New(c.Storage(t), handlers.Config{}, push)

	r, err := s.DeliverPair(ctx, pairOf(1, 2, "a"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{fmt.Sprintf("1:%d", r.GetSender().GetVersion()), fmt.Sprintf("2:%d", r.GetReceiver().GetVersion())}
	if got := push.take(); !slices.Equal(got, want) {
		t.Fatalf("new pair notified %v, want %v", got, want)
	}
	if _, err := s.DeliverPair(ctx, pairOf(1, 2, "a")); err != nil {
		t.Fatal(err)
	}
	if got := push.take(); len(got) != 0 {
		t.Fatalf("a retried pair notified %v", got)
	}

	// Only the receiver's copy there: only the sender's is new.
	req := pairOf(1, 2, "b")
	if _, err := s.Deliver(ctx, &im.DeliverRequest{UserId: 2, Item: req.GetItem(), DedupId: req.GetDedupId()}); err != nil {
		t.Fatal(err)
	}
	push.take()
	r, err = s.DeliverPair(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !r.GetReceiver().GetDuplicate() || r.GetSender().GetDuplicate() {
		t.Fatalf("pair over a stored receiver's copy: %v", r)
	}
	if got, want := push.take(), []string{fmt.Sprintf("1:%d", r.GetSender().GetVersion())}; !slices.Equal(got, want) {
		t.Fatalf("notified %v, want %v", got, want)
	}

	for name, bad := range map[string]*im.DeliverPairRequest{
		"to oneself":    pairOf(3, 3, "c"),
		"not a message": {UserId: 2, SenderUserId: 1, DedupId: "d", SenderDedupId: "d:self", Item: &im.SyncItem{Type: im.SyncType_SYNC_TYPE_ACCOUNT, Item: &im.SyncItem_Profile{Profile: &im.Profile{}}}},
		"with a time": func() *im.DeliverPairRequest {
			r := pairOf(1, 2, "e")
			r.GetItem().GetMessage().SentUnixMs = 5
			return r
		}(),
		"no sender id": func() *im.DeliverPairRequest { r := pairOf(1, 2, "f"); r.SenderDedupId = ""; return r }(),
	} {
		if _, err := s.DeliverPair(ctx, bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// With two storage instances, each copy of a pair is written on the
// instance its user's own calls route to: in one storage call when the
// two users share it, in two when they do not.
func TestDeliverPairAcrossStorageShards(t *testing.T) {
	two := storagetest.StartTwoStores(t, "messagedata")
	srv, err := handlers.NewMessageData(two.Host)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const sender = 1000
	var near, far uint64 // receivers on the sender's instance and on the other
	for u := uint64(sender + 1); near == 0 || far == 0; u++ {
		switch together := shard.Together(two.Router, sender, u); {
		case together && near == 0:
			near = u
		case !together && far == 0:
			far = u
		}
	}
	for _, to := range []uint64{near, far} {
		id := fmt.Sprint("to-", to)
		r, err := srv.DeliverPair(ctx, pairOf(sender, to, id))
		if err != nil {
			t.Fatal(err)
		}
		if r.GetSender().GetDuplicate() || r.GetReceiver().GetDuplicate() {
			t.Fatalf("to %d: %v", to, r)
		}
		for _, c := range []struct {
			user    uint64
			version uint64
		}{{to, r.GetReceiver().GetVersion()}, {sender, r.GetSender().GetVersion()}} {
			for addr, cl := range two.Stores {
				sr, err := cl.Storage(t).Sync(ctx, &im.InboxSyncRequest{UserId: c.user, DeviceId: "probe", Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				found := slices.IndexFunc(sr.GetEntries(), func(e *im.InboxEntry) bool { return e.GetVersion() == c.version }) >= 0
				if mine := two.Owner(c.user) == addr; found != mine {
					t.Errorf("pair to %d: user %d's copy on %s: %v, its own calls route there: %v", to, c.user, addr, found, mine)
				}
			}
		}
	}
}
