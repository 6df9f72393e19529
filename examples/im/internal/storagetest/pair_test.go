package storagetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/delivery"
	"github.com/svrkit/svrkit/svrkit"
)

// oldMessageData is a messagedata that predates DeliverPair, as the
// caller sees it: DeliverPair is unimplemented, the rest is the real one.
type oldMessageData struct{ im.MessageDataClient }

func (oldMessageData) DeliverPair(context.Context, *im.DeliverPairRequest, ...svrkit.CallOption) (*im.DeliverPairReply, error) {
	return nil, svrkit.NewError(svrkit.Unimplemented, "unknown cmdid 5")
}

// messagesSeen is user's message copies as a device reads them: synced,
// each without a time of its own given its stored time, as the sync
// Logicsvr does.
func messagesSeen(t *testing.T, ctx context.Context, md im.MessageDataClient, user uint64) []*im.Message {
	t.Helper()
	items, _ := syncAll(t, ctx, md, user, "probe", nil, 100)
	out := make([]*im.Message, 0, len(items))
	for _, it := range items {
		m := proto.CloneOf(it.GetMessage())
		if m.GetSentUnixMs() == 0 {
			m.SentUnixMs = it.GetAtUnixMs()
		}
		out = append(out, m)
	}
	return out
}

// The exactly-once contract of package delivery, through DeliverPair, in
// every state a first attempt can leave: whatever was stored, a retry
// with the same client_msg_id leaves one copy in each inbox, both
// identical (sent_unix_ms included), the reply's time is the receiver
// copy's first one, and duplicate says whether it was there.
func TestDeliverPairIsIdempotent(t *testing.T) {
	c := start(t)
	ctx, md := ctxT(t), c.MessageData(t)
	const from, to = 101, 202
	msg := func(id string) *im.Message {
		return &im.Message{FromUserId: from, ToUserId: to, ClientMsgId: id, Type: im.MessageType_MESSAGE_TYPE_TEXT, Text: "text of " + id}
	}
	receiverCopy := func(id string) *im.DeliverReply {
		return must(md.Deliver(ctx, &im.DeliverRequest{UserId: to, Item: textItem(from, to, id, "text of "+id), DedupId: "101:" + id}))
	}
	for _, tc := range []struct {
		name string
		// before leaves what a first attempt left; it returns the
		// receiver copy's time if it stored it.
		before func(id string) int64
	}{
		{"nothing stored", func(string) int64 { return 0 }},
		{"receiver's copy stored by a Deliver", func(id string) int64 {
			return receiverCopy(id).GetAtUnixMs()
		}},
		{"both stored by the two Delivers", func(id string) int64 {
			r := must(delivery.Deliver(ctx, oldMessageData{md}, nil, msg(id)))
			return r.GetSentUnixMs()
		}},
		{"both stored by a pair", func(id string) int64 {
			return must(delivery.Deliver(ctx, md, nil, msg(id))).GetSentUnixMs()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.ReplaceAll(tc.name, " ", "-")
			at := tc.before(id)
			time.Sleep(3 * time.Millisecond) // a copy written now would have another time
			var first *im.SendReply
			// The pair, then the two Delivers (the sender's messagedata
			// replaced by an old one), then the pair again.
			for i, messages := range []im.MessageDataClient{md, oldMessageData{md}, md} {
				r := must(delivery.Deliver(ctx, messages, nil, msg(id)))
				if i == 0 {
					first = r
				}
				if r.GetDuplicate() != (i > 0 || at != 0) {
					t.Fatalf("attempt %d: duplicate %v", i, r.GetDuplicate())
				}
				if want := first.GetSentUnixMs(); at != 0 && r.GetSentUnixMs() != at || r.GetSentUnixMs() != want {
					t.Fatalf("attempt %d: sent at %d, the first store %d, the first reply %d", i, r.GetSentUnixMs(), at, want)
				}
			}
			var theirs, mine []*im.Message
			for _, m := range messagesSeen(t, ctx, md, to) {
				if m.GetClientMsgId() == id {
					theirs = append(theirs, m)
				}
			}
			for _, m := range messagesSeen(t, ctx, md, from) {
				if m.GetClientMsgId() == id {
					mine = append(mine, m)
				}
			}
			if len(theirs) != 1 || len(mine) != 1 {
				t.Fatalf("%d receiver's copies, %d sender's, want one each", len(theirs), len(mine))
			}
			if !proto.Equal(theirs[0], mine[0]) || theirs[0].GetSentUnixMs() != first.GetSentUnixMs() {
				t.Fatalf("receiver's copy %v, sender's %v, reply's time %d", theirs[0], mine[0], first.GetSentUnixMs())
			}
		})
	}
}

// A message to oneself is written once, and once only on a retry.
func TestDeliverToOneselfOnce(t *testing.T) {
	c := start(t)
	ctx, md := ctxT(t), c.MessageData(t)
	m := &im.Message{FromUserId: 303, ToUserId: 303, ClientMsgId: "note", Type: im.MessageType_MESSAGE_TYPE_TEXT, Text: "remember"}
	first := must(delivery.Deliver(ctx, md, nil, m))
	retry := must(delivery.Deliver(ctx, md, nil, m))
	if first.GetDuplicate() || !retry.GetDuplicate() || retry.GetSentUnixMs() != first.GetSentUnixMs() {
		t.Fatalf("first %v, retry %v", first, retry)
	}
	if got := messagesSeen(t, ctx, md, 303); len(got) != 1 || got[0].GetSentUnixMs() != first.GetSentUnixMs() {
		t.Fatalf("inbox %v", got)
	}
}

// Storage.DeliverPair itself: a new pair is one write at one time; a pair
// whose receiver's copy is there and sender's is not leaves the sender's
// to the caller; a pair whose receiver's copy is new and sender's there
// writes the receiver's only; bad requests write nothing.
func TestStorageDeliverPair(t *testing.T) {
	c := start(t)
	ctx, st := ctxT(t), c.Storage(t)
	pair := func(id string) *im.InboxDeliverPairRequest {
		return &im.InboxDeliverPairRequest{UserId: 2, Payload: []byte(id), DedupId: "1:" + id, SenderUserId: 1, SenderDedupId: "1:" + id + ":self"}
	}

	r := must(st.DeliverPair(ctx, pair("a")))
	if w, o := r.GetReceiver(), r.GetSender(); w.GetDuplicate() || o == nil || o.GetDuplicate() || w.GetAtUnixMs() != o.GetAtUnixMs() || w.GetAtUnixMs() == 0 {
		t.Fatalf("new pair: %v", r)
	}
	again := must(st.DeliverPair(ctx, pair("a")))
	if !proto.Equal(again.GetReceiver(), &im.InboxWriteReply{Version: r.GetReceiver().GetVersion(), AtUnixMs: r.GetReceiver().GetAtUnixMs(), Duplicate: true}) ||
		!proto.Equal(again.GetSender(), &im.InboxWriteReply{Version: r.GetSender().GetVersion(), AtUnixMs: r.GetSender().GetAtUnixMs(), Duplicate: true}) {
		t.Fatalf("retried pair %v, first %v", again, r)
	}

	theirs := must(st.Deliver(ctx, &im.InboxDeliverRequest{UserId: 2, Payload: []byte("b"), DedupId: "1:b"}))
	r = must(st.DeliverPair(ctx, pair("b")))
	if !r.GetReceiver().GetDuplicate() || r.GetReceiver().GetAtUnixMs() != theirs.GetAtUnixMs() || r.GetSender() != nil {
		t.Fatalf("pair over a stored receiver's copy: %v (stored at %d)", r, theirs.GetAtUnixMs())
	}

	own := must(st.Deliver(ctx, &im.InboxDeliverRequest{UserId: 1, Payload: []byte("c"), DedupId: "1:c:self"}))
	r = must(st.DeliverPair(ctx, pair("c")))
	if r.GetReceiver().GetDuplicate() || !r.GetSender().GetDuplicate() || r.GetSender().GetVersion() != own.GetVersion() {
		t.Fatalf("pair over a stored sender's copy: %v (stored %v)", r, own)
	}

	for _, bad := range []struct {
		name string
		req  *im.InboxDeliverPairRequest
	}{
		{"to oneself", &im.InboxDeliverPairRequest{UserId: 1, Payload: []byte("x"), DedupId: "1:x", SenderUserId: 1, SenderDedupId: "1:x:self"}},
		{"no sender dedup id", &im.InboxDeliverPairRequest{UserId: 2, Payload: []byte("x"), DedupId: "1:x", SenderUserId: 1}},
		{"no dedup id", &im.InboxDeliverPairRequest{UserId: 2, Payload: []byte("x"), SenderUserId: 1, SenderDedupId: "1:x:self"}},
		{"oversize payload", &im.InboxDeliverPairRequest{UserId: 2, Payload: make([]byte, 65<<10), DedupId: "1:x", SenderUserId: 1, SenderDedupId: "1:x:self"}},
	} {
		_, err := st.DeliverPair(ctx, bad.req)
		wantCode(t, bad.name, err, svrkit.InvalidArgument)
	}
	for user, want := range map[uint64]int{1: 2, 2: 3} { // a, c's own; a, b, c
		sr := must(st.Sync(ctx, &im.InboxSyncRequest{UserId: user, DeviceId: "probe", Limit: 100}))
		if len(sr.GetEntries()) != want {
			t.Fatalf("user %d: %d entries, want %d", user, len(sr.GetEntries()), want)
		}
	}
}
