package storagetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/inbox"
	"github.com/svrkit/svrkit/examples/im/internal/shard"
	"github.com/svrkit/svrkit/svrkit"
)

func groupItem(group, from uint64, seq uint64, text string) *im.SyncItem {
	return &im.SyncItem{Type: im.SyncType_SYNC_TYPE_MESSAGES, Item: &im.SyncItem_Message{Message: &im.Message{
		FromUserId: from, ToUserId: group, ClientMsgId: fmt.Sprint(seq), Type: im.MessageType_MESSAGE_TYPE_TEXT, Text: text}}}
}

// DeliverMany through messagedata and storage: each member once, with
// the first delivery's version and time on a redelivery of the batch or
// of some members, and Deliver's result for a member Deliver wrote first.
func TestDeliverManyIsIdempotent(t *testing.T) {
	c := start(t)
	ctx, md := ctxT(t), c.MessageData(t)
	item := groupItem(1<<63|4, 5, 1, "hello group")
	alone := must(md.Deliver(ctx, &im.DeliverRequest{UserId: 7, Item: item, DedupId: "g:4:1"}))
	users := []uint64{6, 7, 5}
	first := must(md.DeliverMany(ctx, &im.DeliverManyRequest{UserId: 6, UserIds: users, Item: item, DedupId: "g:4:1"}))
	rs := first.GetResults()
	if len(rs) != 3 || rs[0].GetDuplicate() || !rs[1].GetDuplicate() || rs[2].GetDuplicate() ||
		rs[1].GetVersion() != alone.GetVersion() || rs[1].GetAtUnixMs() != alone.GetAtUnixMs() || rs[0].GetAtUnixMs() == 0 {
		t.Fatalf("first batch %v (user 7 had %v)", rs, alone)
	}
	time.Sleep(2 * time.Millisecond)
	again := must(md.DeliverMany(ctx, &im.DeliverManyRequest{UserId: 5, UserIds: users, Item: item, DedupId: "g:4:1"}))
	for i, r := range again.GetResults() {
		if !r.GetDuplicate() || r.GetVersion() != rs[i].GetVersion() || r.GetAtUnixMs() != rs[i].GetAtUnixMs() {
			t.Fatalf("redelivery of user %d: %v, first %v", users[i], r, rs[i])
		}
	}
	// A change goes to the GROUPS inbox the same way.
	change := &im.SyncItem{Type: im.SyncType_SYNC_TYPE_GROUPS, Item: &im.SyncItem_Group{Group: &im.GroupChange{Kind: im.GroupChange_KIND_RENAMED, Group: &im.GroupInfo{GroupId: 1<<63 | 4, Name: "g"}}}}
	must(md.DeliverMany(ctx, &im.DeliverManyRequest{UserId: 5, UserIds: users, Item: change, DedupId: "g:4:2"}))
	for i, u := range users {
		items, _ := syncAll(t, ctx, md, u, "phone", nil, 100)
		if len(items) != 2 || items[0].GetType() != im.SyncType_SYNC_TYPE_GROUPS || items[1].GetMessage().GetText() != "hello group" ||
			items[1].GetVersion() != rs[i].GetVersion() || items[1].GetAtUnixMs() != rs[i].GetAtUnixMs() {
			t.Fatalf("user %d synced %v", u, items)
		}
	}
}

// Bad batches get invalid_argument from messagedata and from storage,
// and write nothing.
func TestDeliverManyLimits(t *testing.T) {
	c := start(t)
	ctx, md, st := ctxT(t), c.MessageData(t), c.Storage(t)
	many := func(n int) []uint64 {
		out := make([]uint64, n)
		for i := range out {
			out[i] = uint64(100 + i)
		}
		return out
	}
	small := groupItem(1<<63|4, 5, 1, "x")
	big := groupItem(1<<63|4, 5, 1, strings.Repeat("x", 60<<10)) // 100 users of it: 6 MB
	for _, tc := range []struct {
		name string
		req  *im.DeliverManyRequest
	}{
		{"no users", &im.DeliverManyRequest{Item: small, DedupId: "d"}},
		{"501 users", &im.DeliverManyRequest{UserId: 100, UserIds: many(shard.MaxBatchUsers + 1), Item: small, DedupId: "d"}},
		{"over 4 MiB", &im.DeliverManyRequest{UserId: 100, UserIds: many(100), Item: big, DedupId: "d"}},
		{"a user twice", &im.DeliverManyRequest{UserId: 100, UserIds: []uint64{100, 101, 100}, Item: small, DedupId: "d"}},
		{"routing user not a member", &im.DeliverManyRequest{UserId: 1, UserIds: many(3), Item: small, DedupId: "d"}},
		{"no dedup id", &im.DeliverManyRequest{UserId: 100, UserIds: many(3), Item: small}},
		{"no item", &im.DeliverManyRequest{UserId: 100, UserIds: many(3), DedupId: "d"}},
	} {
		_, err := md.DeliverMany(ctx, tc.req)
		wantCode(t, "messagedata: "+tc.name, err, svrkit.InvalidArgument)
	}
	for _, tc := range []struct {
		name string
		req  *im.InboxDeliverManyRequest
	}{
		{"501 users", &im.InboxDeliverManyRequest{UserId: 100, UserIds: many(inbox.MaxManyUsers + 1), Type: im.InboxType_INBOX_TYPE_MESSAGES, Payload: []byte("x"), DedupId: "d"}},
		{"over 4 MiB", &im.InboxDeliverManyRequest{UserId: 100, UserIds: many(65), Type: im.InboxType_INBOX_TYPE_MESSAGES, Payload: make([]byte, 64<<10), DedupId: "d"}},
		{"no type", &im.InboxDeliverManyRequest{UserId: 100, UserIds: many(3), Payload: []byte("x"), DedupId: "d"}},
		{"routing user not a member", &im.InboxDeliverManyRequest{UserId: 1, UserIds: many(3), Type: im.InboxType_INBOX_TYPE_MESSAGES, Payload: []byte("x"), DedupId: "d"}},
		{"no dedup id", &im.InboxDeliverManyRequest{UserId: 100, UserIds: many(3), Type: im.InboxType_INBOX_TYPE_MESSAGES, Payload: []byte("x")}},
	} {
		_, err := st.DeliverMany(ctx, tc.req)
		wantCode(t, "storage: "+tc.name, err, svrkit.InvalidArgument)
	}
	for _, u := range many(3) {
		if items, _ := syncAll(t, ctx, md, u, "phone", nil, 100); len(items) != 0 {
			t.Fatalf("refused batches wrote to user %d: %v", u, items)
		}
	}
	// The limits themselves pass.
	must(md.DeliverMany(ctx, &im.DeliverManyRequest{UserId: 100, UserIds: many(shard.MaxBatchUsers), Item: small, DedupId: "max"}))
}

// shard's copy of the limits is the store's.
func TestBatchLimitsMatchTheStore(t *testing.T) {
	if shard.MaxBatchUsers != inbox.MaxManyUsers || shard.MaxBatchBytes != inbox.MaxManyBytes {
		t.Fatalf("shard limits %d users, %d bytes; inbox %d, %d",
			shard.MaxBatchUsers, shard.MaxBatchBytes, inbox.MaxManyUsers, inbox.MaxManyBytes)
	}
}

// A device that is up to date (its key cached by messagedata) sees a
// DeliverMany's item on its next sync: the batch drops every member's
// cached key before it answers, as Deliver does.
func TestDeliverManyInvalidatesCache(t *testing.T) {
	c := start(t)
	ctx, md := ctxT(t), c.MessageData(t)
	users := []uint64{21, 22, 23}
	keys := map[uint64][]byte{}
	for _, u := range users {
		_, k := syncAll(t, ctx, md, u, "phone", nil, 100)
		_, k = syncAll(t, ctx, md, u, "phone", k, 100) // now cached and acked
		keys[u] = k
	}
	must(md.DeliverMany(ctx, &im.DeliverManyRequest{UserId: 22, UserIds: users, Item: groupItem(1<<63|9, 21, 1, "fresh"), DedupId: "g:9:1"}))
	for _, u := range users {
		if items, _ := syncAll(t, ctx, md, u, "phone", keys[u], 100); len(items) != 1 || items[0].GetMessage().GetText() != "fresh" {
			t.Fatalf("user %d after DeliverMany synced %v", u, items)
		}
	}
}

// Deliver and DeliverMany racing on the same users keep every user's
// versions unique and increasing for each writer, and every item once.
func TestDeliverManyConcurrentWithDeliver(t *testing.T) {
	c := start(t)
	ctx, md := ctxT(t), c.MessageData(t)
	users := []uint64{31, 32, 33, 34}
	const writers, rounds = 3, 15
	var mu sync.Mutex
	owner := map[uint64]map[uint64]string{} // user → version → text
	record := func(u, v uint64, text string) {
		mu.Lock()
		defer mu.Unlock()
		if owner[u] == nil {
			owner[u] = map[uint64]string{}
		}
		if prev, ok := owner[u][v]; ok {
			t.Errorf("user %d version %d given to %q and %q", u, v, prev, text)
		}
		owner[u][v] = text
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(2)
		go func() { // one-to-one sends
			defer wg.Done()
			last := map[uint64]uint64{}
			for r := range rounds {
				u := users[(w+r)%len(users)]
				text := fmt.Sprintf("one %d/%d", w, r)
				rep, err := md.Deliver(ctx, &im.DeliverRequest{UserId: u, Item: textItem(1, u, text, text), DedupId: text})
				if err != nil {
					t.Error(err)
					return
				}
				if rep.GetVersion() <= last[u] {
					t.Errorf("%s: version %d after %d", text, rep.GetVersion(), last[u])
				}
				last[u] = rep.GetVersion()
				record(u, rep.GetVersion(), text)
			}
		}()
		go func() { // group fan-outs
			defer wg.Done()
			last := map[uint64]uint64{}
			for r := range rounds {
				us := slices.Clone(users)
				if r%2 == 1 {
					slices.Reverse(us)
				}
				text := fmt.Sprintf("many %d/%d", w, r)
				rep, err := md.DeliverMany(ctx, &im.DeliverManyRequest{UserId: us[0], UserIds: us, Item: groupItem(1<<63|1, 1, uint64(r), text), DedupId: text})
				if err != nil {
					t.Error(err)
					return
				}
				for i, u := range us {
					v := rep.GetResults()[i].GetVersion()
					if v <= last[u] {
						t.Errorf("%s user %d: version %d after %d", text, u, v, last[u])
					}
					last[u] = v
					record(u, v, text)
				}
			}
		}()
	}
	wg.Wait()
	for _, u := range users {
		items, _ := syncAll(t, ctx, md, u, "phone", nil, 7)
		if len(items) != len(owner[u]) {
			t.Errorf("user %d synced %d items, %d written", u, len(items), len(owner[u]))
		}
		var last uint64
		for _, it := range items {
			if it.GetVersion() <= last || owner[u][it.GetVersion()] != it.GetMessage().GetText() {
				t.Errorf("user %d: item %d %q after version %d; written %q", u, it.GetVersion(), it.GetMessage().GetText(), last, owner[u][it.GetVersion()])
			}
			last = it.GetVersion()
		}
	}
}

// A large change (a creation listing every member) fanned out to many
// members is stored once in storage and synced whole by each, redelivered
// or not (the inbox's shared payloads, examples/im/internal/inbox).
func TestDeliverManyLargeChange(t *testing.T) {
	c := start(t)
	ctx, md := ctxT(t), c.MessageData(t)
	const group = 1<<63 | 9
	var users []uint64
	var members []*im.GroupMember
	for u := uint64(100); u < 160; u++ {
		users = append(users, u)
		members = append(members, &im.GroupMember{UserId: u, Name: fmt.Sprintf("member-%d", u), JoinedUnixMs: 1_700_000_000_000, InviterUserId: 100})
	}
	change := &im.SyncItem{Type: im.SyncType_SYNC_TYPE_GROUPS, Item: &im.SyncItem_Group{Group: &im.GroupChange{
		Kind: im.GroupChange_KIND_CREATED, Group: &im.GroupInfo{GroupId: group, Name: "large"}, ActorUserId: 100, Members: members}}}
	for range 2 { // the second is a redelivery
		must(md.DeliverMany(ctx, &im.DeliverManyRequest{UserId: users[0], UserIds: users, Item: change, DedupId: "g:9:1"}))
	}
	for _, u := range users {
		items, _ := syncAll(t, ctx, md, u, "phone", nil, 10)
		if len(items) != 1 || len(items[0].GetGroup().GetMembers()) != len(users) || items[0].GetGroup().GetMembers()[59].GetName() != "member-159" {
			t.Fatalf("user %d synced %d items: %v", u, len(items), items)
		}
	}
}
