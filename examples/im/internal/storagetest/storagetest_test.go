package storagetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/inbox"
	accountdata "github.com/svrkit/svrkit/examples/im/logicsvr/accountdata/handlers"
	contactdata "github.com/svrkit/svrkit/examples/im/logicsvr/contactdata/handlers"
	"github.com/svrkit/svrkit/svrkit"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantCode(t *testing.T, what string, err error, code svrkit.Code) {
	t.Helper()
	if got := svrkit.CodeOf(err); got != code {
		t.Fatalf("%s: code %v (%v), want %v", what, got, err, code)
	}
}

// must returns v, or panics (failing the test with a stack) on err: a call
// the test expects to succeed.
func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("unexpected error: %v", err))
	}
	return v
}

func create(t *testing.T, ctx context.Context, ad im.AccountDataClient, name string) *im.AccountRecord {
	t.Helper()
	return must(ad.CreateAccount(ctx, &im.CreateAccountRequest{Name: name, PasswordHash: "$argon2id$test"}))
}

// replicas is how many storage replicas start(t) runs; TestOnReplicatedGroup
// sets it.
var replicas = 1

// start runs the storage layer for a test: one store, or a replica group
// under TestOnReplicatedGroup.
func start(t *testing.T) *Cluster {
	t.Helper()
	c := Start(t, t.TempDir(), &Options{Replicas: replicas})
	if n := len(c.Routes[im.Storage_ServiceName]); n != replicas {
		t.Fatalf("%d storage endpoints, want %d", n, replicas)
	}
	return c
}

// The storage layer's tests again, with the store a group of 3 Raft
// replicas: every semantic above holds on the replicated store.
func TestOnReplicatedGroup(t *testing.T) {
	replicas = 3
	defer func() { replicas = 1 }()
	for name, test := range map[string]func(*testing.T){
		"KV": TestStorageKV, "Accounts": TestAccounts, "ConcurrentCreates": TestConcurrentCreatesOfOneName,
		"ProfileCache": TestUpdateProfilePublishesAndCacheIsFresh, "ProfileRetry": TestUpdateProfileRetriesAfterAnotherInstanceWrote,
		"ContactRetry": TestContactChangeRetriesAfterAnotherInstanceWrote, "Contacts": TestContactsBumpVersionAndSyncInOrder,
		"DeliverIdempotent": TestDeliverIsIdempotent, "SyncPaging": TestSyncInboxPagingAndKeys,
		"PendingContact": TestPendingContactChangeIsRepublished, "RevokeSessions": TestRevokeSessions,
		"DeliverMany": TestDeliverManyIsIdempotent, "DeliverManyConcurrent": TestDeliverManyConcurrentWithDeliver,
		"DeliverPair": TestDeliverPairIsIdempotent, "DeliverToOneself": TestDeliverToOneselfOnce,
		"StorageDeliverPair": TestStorageDeliverPair,
		"PutMany":            TestPutMany,
		"DeliverManyLarge":   TestDeliverManyLargeChange,
	} {
		t.Run(name, test)
	}
}

func TestStorageKV(t *testing.T) {
	c := start(t)
	ctx, st := ctxT(t), c.Storage(t)

	v1 := must(st.Put(ctx, &im.KVPutRequest{UserId: 1, Key: []byte("k"), Value: []byte("a")})).GetVersion()
	_, err := st.Put(ctx, &im.KVPutRequest{UserId: 1, Key: []byte("k"), Value: []byte("b")})
	wantCode(t, "put over an existing key with expect 0", err, svrkit.Aborted)
	v2 := must(st.Put(ctx, &im.KVPutRequest{UserId: 1, Key: []byte("k"), Value: []byte("b"), ExpectVersion: v1})).GetVersion()
	if v2 <= v1 {
		t.Fatalf("versions %d then %d", v1, v2)
	}
	if r := must(st.Get(ctx, &im.KVGetRequest{UserId: 1, Key: []byte("k")})); string(r.GetValue()) != "b" || r.GetVersion() != v2 {
		t.Fatalf("get = %q@%d", r.GetValue(), r.GetVersion())
	}
	// Keys are scoped by user id.
	_, err = st.Get(ctx, &im.KVGetRequest{UserId: 2, Key: []byte("k")})
	wantCode(t, "another user's key", err, svrkit.NotFound)

	// A batch with a failed condition writes nothing.
	_, err = st.Batch(ctx, &im.BatchRequest{UserId: 1, Ops: []*im.BatchOp{
		{Kind: im.BatchOp_KIND_PUT, Key: []byte("other"), Value: []byte("x")},
		{Kind: im.BatchOp_KIND_APPEND, Key: []byte("row"), Value: []byte("e")},
		{Kind: im.BatchOp_KIND_CHECK, Key: []byte("k"), ExpectVersion: v1},
	}})
	wantCode(t, "batch with a stale check", err, svrkit.Aborted)
	_, err = st.Get(ctx, &im.KVGetRequest{UserId: 1, Key: []byte("other")})
	wantCode(t, "key of the failed batch", err, svrkit.NotFound)
	res := must(st.Batch(ctx, &im.BatchRequest{UserId: 1, Ops: []*im.BatchOp{
		{Kind: im.BatchOp_KIND_PUT, Key: []byte("other"), Value: []byte("x")},
		{Kind: im.BatchOp_KIND_APPEND, Key: []byte("row"), Value: []byte("e1")},
		{Kind: im.BatchOp_KIND_PUT_ENTRY, Key: []byte("row"), Version: 10, Value: []byte("e10")},
		{Kind: im.BatchOp_KIND_CHECK, Key: []byte("k"), ExpectVersion: v2},
	}})).GetResults()
	if len(res) != 4 || res[1] != 1 || res[2] != 10 || res[3] != v2 {
		t.Fatalf("batch results %v", res)
	}
	_, err = st.PutEntry(ctx, &im.TablePutEntryRequest{UserId: 1, Row: []byte("row"), Version: 5, Value: []byte("old")})
	wantCode(t, "entry below the row's max", err, svrkit.Aborted)
	must(st.Append(ctx, &im.TableAppendRequest{UserId: 1, Row: []byte("row"), Value: []byte("e11")}))
	page := must(st.Scan(ctx, &im.TableScanRequest{UserId: 1, Row: []byte("row"), AfterVersion: 1, Limit: 1}))
	if len(page.GetEntries()) != 1 || page.GetEntries()[0].GetVersion() != 10 || !page.GetMore() || page.GetMaxVersion() != 11 {
		t.Fatalf("scan page %v", page)
	}
	must(st.Delete(ctx, &im.KVDeleteRequest{UserId: 1, Key: []byte("k"), ExpectVersion: v2}))
	_, err = st.Get(ctx, &im.KVGetRequest{UserId: 1, Key: []byte("k")})
	wantCode(t, "deleted key", err, svrkit.NotFound)

	// Limits.
	_, err = st.Put(ctx, &im.KVPutRequest{UserId: 1, Key: []byte("big"), Value: make([]byte, 1<<20+1), AnyVersion: true})
	wantCode(t, "oversize value", err, svrkit.InvalidArgument)
	if !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("oversize message: %v", err)
	}
	_, err = st.Get(ctx, &im.KVGetRequest{UserId: 1, Key: make([]byte, 1001)})
	wantCode(t, "oversize key", err, svrkit.InvalidArgument)
	_, err = st.Get(ctx, &im.KVGetRequest{UserId: 1})
	wantCode(t, "empty key", err, svrkit.InvalidArgument)
	_, err = st.Batch(ctx, &im.BatchRequest{UserId: 1, Ops: []*im.BatchOp{{Key: []byte("k")}}})
	wantCode(t, "op without a kind", err, svrkit.InvalidArgument)
}

func TestAccounts(t *testing.T) {
	c := start(t)
	ctx, ad := ctxT(t), c.AccountData(t)

	ada := create(t, ctx, ad, "ada")
	bob := create(t, ctx, ad, "bob")
	if ada.GetUserId() == 0 || bob.GetUserId() == ada.GetUserId() || ada.GetProfile().GetNickname() != "ada" || ada.GetVersion() == 0 {
		t.Fatalf("created %v and %v", ada, bob)
	}
	// Ids are random, so no one lists accounts by counting: far apart,
	// and above the range once handed out in sequence.
	for _, rec := range []*im.AccountRecord{ada, bob} {
		if rec.GetUserId() < 1<<32 || rec.GetUserId() >= 1<<63 {
			t.Fatalf("user id %d outside [2^32, 2^63)", rec.GetUserId())
		}
	}
	if d := int64(bob.GetUserId() - ada.GetUserId()); d > -1000 && d < 1000 {
		t.Fatalf("ids %d and %d are %d apart: sequential?", ada.GetUserId(), bob.GetUserId(), d)
	}
	got := must(ad.GetAccount(ctx, &im.GetAccountRequest{UserId: bob.GetUserId()}))
	if got.GetProfile().GetName() != "bob" || got.GetPasswordHash() != "$argon2id$test" {
		t.Fatalf("GetAccount = %v", got)
	}
	if got := must(ad.LookupAccount(ctx, &im.LookupAccountRequest{Name: "ada"})); got.GetUserId() != ada.GetUserId() {
		t.Fatalf("LookupAccount = %v", got)
	}
	_, err := ad.CreateAccount(ctx, &im.CreateAccountRequest{Name: "ada", PasswordHash: "h"})
	wantCode(t, "duplicate name", err, svrkit.AlreadyExists)
	_, err = ad.GetAccount(ctx, &im.GetAccountRequest{UserId: 999999})
	wantCode(t, "unknown user", err, svrkit.NotFound)
	_, err = ad.LookupAccount(ctx, &im.LookupAccountRequest{Name: "nobody"})
	wantCode(t, "unknown name", err, svrkit.NotFound)
	_, err = ad.UpdateProfile(ctx, &im.UpdateProfileRequest{UserId: 999999, Nickname: "x"})
	wantCode(t, "update of an unknown user", err, svrkit.NotFound)
	_, err = ad.CreateAccount(ctx, &im.CreateAccountRequest{Name: strings.Repeat("n", 65), PasswordHash: "h"})
	wantCode(t, "oversize name", err, svrkit.InvalidArgument)
	_, err = ad.UpdateProfile(ctx, &im.UpdateProfileRequest{UserId: ada.GetUserId(), Nickname: strings.Repeat("n", 65)})
	wantCode(t, "oversize nickname", err, svrkit.InvalidArgument)
}

func TestConcurrentCreatesOfOneName(t *testing.T) {
	c := start(t)
	ctx, ad := ctxT(t), c.AccountData(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	ids := make([]uint64, n)
	for i := range n {
		wg.Go(func() {
			r, err := ad.CreateAccount(ctx, &im.CreateAccountRequest{Name: "race", PasswordHash: fmt.Sprint(i)})
			errs[i], ids[i] = err, r.GetUserId()
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch svrkit.CodeOf(err) {
		case svrkit.OK:
			if winner >= 0 {
				t.Fatalf("two creations of one name won: %d and %d", ids[winner], ids[i])
			}
			winner = i
		case svrkit.AlreadyExists:
		default:
			t.Fatalf("creation %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no creation won")
	}
	got := must(ad.LookupAccount(ctx, &im.LookupAccountRequest{Name: "race"}))
	if got.GetUserId() != ids[winner] || got.GetPasswordHash() != fmt.Sprint(winner) {
		t.Fatalf("lookup finds %v, winner was %d (id %d)", got, winner, ids[winner])
	}
}

// syncAll syncs device until no continue flag, returning every item and the
// final key.
func syncAll(t *testing.T, ctx context.Context, md im.MessageDataClient, user uint64, device string, key []byte, limit uint32) ([]*im.SyncItem, []byte) {
	t.Helper()
	var items []*im.SyncItem
	for range 1000 {
		r := must(md.SyncInbox(ctx, &im.SyncInboxRequest{UserId: user, DeviceId: device, SyncKey: key, Limit: limit}))
		items = append(items, r.GetItems()...)
		key = r.GetSyncKey()
		if !r.GetContinueFlag() {
			return items, key
		}
	}
	t.Fatal("sync never ends")
	return nil, nil
}

func TestUpdateProfilePublishesAndCacheIsFresh(t *testing.T) {
	c := start(t)
	ctx, ad, md := ctxT(t), c.AccountData(t), c.MessageData(t)
	ada := create(t, ctx, ad, "ada")
	uid := ada.GetUserId()
	// Warm both caches.
	must(ad.GetAccount(ctx, &im.GetAccountRequest{UserId: uid}))
	must(ad.LookupAccount(ctx, &im.LookupAccountRequest{Name: "ada"}))

	up := must(ad.UpdateProfile(ctx, &im.UpdateProfileRequest{UserId: uid, Nickname: "Countess"}))
	if up.GetVersion() <= ada.GetVersion() {
		t.Fatalf("version %d after %d", up.GetVersion(), ada.GetVersion())
	}
	if got := must(ad.GetAccount(ctx, &im.GetAccountRequest{UserId: uid})); got.GetProfile().GetNickname() != "Countess" {
		t.Fatalf("GetAccount after update: %v", got)
	}
	if got := must(ad.LookupAccount(ctx, &im.LookupAccountRequest{Name: "ada"})); got.GetProfile().GetNickname() != "Countess" {
		t.Fatalf("LookupAccount after update: %v", got)
	}
	// A retry publishes nothing new.
	must(ad.UpdateProfile(ctx, &im.UpdateProfileRequest{UserId: uid, Nickname: "Countess"}))
	must(ad.UpdateProfile(ctx, &im.UpdateProfileRequest{UserId: uid, Nickname: "Ada"}))
	items, _ := syncAll(t, ctx, md, uid, "phone", nil, 100)
	if len(items) != 2 || items[0].GetProfile().GetNickname() != "Countess" || items[1].GetProfile().GetNickname() != "Ada" ||
		items[0].GetType() != im.SyncType_SYNC_TYPE_ACCOUNT || items[1].GetVersion() <= items[0].GetVersion() || items[0].GetAtUnixMs() == 0 {
		t.Fatalf("ACCOUNT items: %v", items)
	}
}

// An UpdateProfile over a cached record another instance has since
// rewritten loses its compare-and-set, re-reads, and writes on top.
func TestUpdateProfileRetriesAfterAnotherInstanceWrote(t *testing.T) {
	c := start(t)
	ctx, st, md := ctxT(t), c.Storage(t), c.MessageData(t)
	a := accountdata.New(st, md, accountdata.Config{})
	b := accountdata.New(st, md, accountdata.Config{})
	ada := must(a.CreateAccount(ctx, &im.CreateAccountRequest{Name: "ada", PasswordHash: "$argon2id$test"}))
	uid := ada.GetUserId()
	must(b.GetAccount(ctx, &im.GetAccountRequest{UserId: uid})) // b caches ada's first version

	up := must(a.UpdateProfile(ctx, &im.UpdateProfileRequest{UserId: uid, Nickname: "Countess"}))
	got := must(b.UpdateProfile(ctx, &im.UpdateProfileRequest{UserId: uid, Nickname: "Ada"}))
	if got.GetProfile().GetNickname() != "Ada" || got.GetVersion() <= up.GetVersion() {
		t.Fatalf("b's update over a's (version %d): %v", up.GetVersion(), got)
	}
	fresh := accountdata.New(st, md, accountdata.Config{})
	if rec := must(fresh.GetAccount(ctx, &im.GetAccountRequest{UserId: uid})); !proto.Equal(rec, got) {
		t.Fatalf("stored %v, b answered %v", rec, got)
	}
}

// A contact change over a cached list another instance has since changed
// loses its compare-and-set, re-reads, and applies on top.
func TestContactChangeRetriesAfterAnotherInstanceWrote(t *testing.T) {
	c := start(t)
	ctx, st, md := ctxT(t), c.Storage(t), c.MessageData(t)
	a := contactdata.New(st, md, contactdata.Config{})
	b := contactdata.New(st, md, contactdata.Config{})
	const user = 1
	put := func(s *contactdata.Server, id uint64) *im.ContactReply {
		t.Helper()
		return must(s.PutContact(ctx, &im.PutContactRequest{UserId: user, Contact: &im.ContactEntry{UserId: id, Name: fmt.Sprint("u", id)}}))
	}
	put(a, 2)
	must(b.GetContacts(ctx, &im.GetContactsRequest{UserId: user})) // b caches list version 1
	put(a, 3)
	if got := put(b, 4); got.GetVersion() != 3 || !got.GetChanged() {
		t.Fatalf("b's change over a's: %v", got)
	}
	list := must(contactdata.New(st, md, contactdata.Config{}).GetContacts(ctx, &im.GetContactsRequest{UserId: user}))
	if n := len(list.GetContacts()); n != 3 || list.GetVersion() != 3 {
		t.Fatalf("stored list: %v", list)
	}
}

func TestContactsBumpVersionAndSyncInOrder(t *testing.T) {
	c := start(t)
	ctx, cd, md := ctxT(t), c.ContactData(t), c.MessageData(t)
	const me = 100
	steps := []struct {
		name    string
		call    func() (*im.ContactReply, error)
		changed bool
		version uint64
	}{
		{"add 7", func() (*im.ContactReply, error) {
			return cd.PutContact(ctx, &im.PutContactRequest{UserId: me, Contact: &im.ContactEntry{UserId: 7, Name: "g", Nickname: "G"}})
		}, true, 1},
		{"add 3", func() (*im.ContactReply, error) {
			return cd.PutContact(ctx, &im.PutContactRequest{UserId: me, Contact: &im.ContactEntry{UserId: 3, Name: "c"}})
		}, true, 2},
		{"add 7 again", func() (*im.ContactReply, error) {
			return cd.PutContact(ctx, &im.PutContactRequest{UserId: me, Contact: &im.ContactEntry{UserId: 7, Name: "g", Nickname: "G"}})
		}, false, 2},
		{"rename 7", func() (*im.ContactReply, error) {
			return cd.PutContact(ctx, &im.PutContactRequest{UserId: me, Contact: &im.ContactEntry{UserId: 7, Name: "g", Nickname: "Grace"}})
		}, true, 3},
		{"remove 3", func() (*im.ContactReply, error) {
			return cd.DeleteContact(ctx, &im.DeleteContactRequest{UserId: me, ContactUserId: 3})
		}, true, 4},
		{"remove 3 again", func() (*im.ContactReply, error) {
			return cd.DeleteContact(ctx, &im.DeleteContactRequest{UserId: me, ContactUserId: 3})
		}, false, 4},
	}
	for _, st := range steps {
		r, err := st.call()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if r.GetChanged() != st.changed || r.GetVersion() != st.version {
			t.Fatalf("%s: changed %v version %d, want %v %d", st.name, r.GetChanged(), r.GetVersion(), st.changed, st.version)
		}
	}
	list := must(cd.GetContacts(ctx, &im.GetContactsRequest{UserId: me}))
	if list.GetVersion() != 4 || len(list.GetContacts()) != 1 || list.GetContacts()[0].GetNickname() != "Grace" || list.GetContacts()[0].GetAddedUnix() == 0 {
		t.Fatalf("list %v", list)
	}
	items, _ := syncAll(t, ctx, md, me, "phone", nil, 2)
	if len(items) != 4 {
		t.Fatalf("%d CONTACTS items: %v", len(items), items)
	}
	for i, it := range items {
		if it.GetType() != im.SyncType_SYNC_TYPE_CONTACTS || it.GetContact().GetListVersion() != uint64(i+1) {
			t.Fatalf("item %d: %v", i, it)
		}
	}
	if !items[3].GetContact().GetRemoved() || items[3].GetContact().GetContact().GetUserId() != 3 {
		t.Fatalf("last item %v", items[3])
	}
	_, err := cd.PutContact(ctx, &im.PutContactRequest{UserId: me, Contact: &im.ContactEntry{UserId: me}})
	wantCode(t, "oneself as contact", err, svrkit.InvalidArgument)
}

func textItem(from, to uint64, id, text string) *im.SyncItem {
	return &im.SyncItem{Type: im.SyncType_SYNC_TYPE_MESSAGES, Item: &im.SyncItem_Message{Message: &im.Message{
		FromUserId: from, ToUserId: to, ClientMsgId: id, Type: im.MessageType_MESSAGE_TYPE_TEXT, Text: text}}}
}

func TestDeliverIsIdempotent(t *testing.T) {
	c := start(t)
	ctx, md := ctxT(t), c.MessageData(t)
	first := must(md.Deliver(ctx, &im.DeliverRequest{UserId: 5, Item: textItem(1, 5, "m1", "hi"), DedupId: "1:m1"}))
	time.Sleep(2 * time.Millisecond)
	retry := must(md.Deliver(ctx, &im.DeliverRequest{UserId: 5, Item: textItem(1, 5, "m1", "hi"), DedupId: "1:m1"}))
	if first.GetDuplicate() || !retry.GetDuplicate() || retry.GetVersion() != first.GetVersion() || retry.GetAtUnixMs() != first.GetAtUnixMs() {
		t.Fatalf("first %v, retry %v", first, retry)
	}
	items, _ := syncAll(t, ctx, md, 5, "phone", nil, 100)
	if len(items) != 1 || items[0].GetMessage().GetText() != "hi" || items[0].GetVersion() != first.GetVersion() || items[0].GetAtUnixMs() != first.GetAtUnixMs() {
		t.Fatalf("synced %v", items)
	}

	bad := []struct {
		name string
		req  *im.DeliverRequest
	}{
		{"no dedup id", &im.DeliverRequest{UserId: 5, Item: textItem(1, 5, "x", "x")}},
		{"dedup id too long", &im.DeliverRequest{UserId: 5, Item: textItem(1, 5, "x", "x"), DedupId: strings.Repeat("d", 129)}},
		{"no item", &im.DeliverRequest{UserId: 5, DedupId: "d"}},
		{"type without content", &im.DeliverRequest{UserId: 5, Item: &im.SyncItem{Type: im.SyncType_SYNC_TYPE_ACCOUNT}, DedupId: "d"}},
		{"oversize message", &im.DeliverRequest{UserId: 5, Item: textItem(1, 5, "x", strings.Repeat("x", 70<<10)), DedupId: "big"}},
	}
	for _, tc := range bad {
		_, err := md.Deliver(ctx, tc.req)
		wantCode(t, tc.name, err, svrkit.InvalidArgument)
	}
	if items, _ := syncAll(t, ctx, md, 5, "tablet", nil, 100); len(items) != 1 {
		t.Fatalf("bad deliveries wrote something: %v", items)
	}
}

func TestSyncInboxPagingAndKeys(t *testing.T) {
	c := start(t)
	ctx, md := ctxT(t), c.MessageData(t)
	const user = 42
	for i := range 25 {
		id := fmt.Sprintf("m%d", i)
		must(md.Deliver(ctx, &im.DeliverRequest{UserId: user, Item: textItem(1, user, id, id), DedupId: "1:" + id}))
	}
	var key []byte
	var got []*im.SyncItem
	pages := 0
	for {
		r := must(md.SyncInbox(ctx, &im.SyncInboxRequest{UserId: user, DeviceId: "phone", SyncKey: key, Limit: 10}))
		pages++
		if len(r.GetItems()) > 10 {
			t.Fatalf("page of %d items", len(r.GetItems()))
		}
		got = append(got, r.GetItems()...)
		key = r.GetSyncKey()
		if !r.GetContinueFlag() {
			break
		}
	}
	if pages != 3 || len(got) != 25 {
		t.Fatalf("%d pages, %d items", pages, len(got))
	}
	for i, it := range got {
		if it.GetMessage().GetText() != fmt.Sprintf("m%d", i) || (i > 0 && it.GetVersion() <= got[i-1].GetVersion()) {
			t.Fatalf("item %d: %v", i, it)
		}
	}
	// Up to date: empty, same key, twice (the second from the cache).
	for range 2 {
		r := must(md.SyncInbox(ctx, &im.SyncInboxRequest{UserId: user, DeviceId: "phone", SyncKey: key}))
		if len(r.GetItems()) != 0 || string(r.GetSyncKey()) != string(key) || r.GetContinueFlag() {
			t.Fatalf("up-to-date sync: %v", r)
		}
	}
	// A new delivery is seen at once: the cache is not stale.
	must(md.Deliver(ctx, &im.DeliverRequest{UserId: user, Item: textItem(1, user, "late", "late"), DedupId: "1:late"}))
	items, key2 := syncAll(t, ctx, md, user, "phone", key, 10)
	if len(items) != 1 || items[0].GetMessage().GetText() != "late" {
		t.Fatalf("after a new delivery: %v", items)
	}
	// The old key still works (a lost answer is repaired by syncing again).
	if items, _ := syncAll(t, ctx, md, user, "phone", key, 10); len(items) != 1 {
		t.Fatalf("re-sync from the old key: %v", items)
	}
	cur := must(md.CurrentKey(ctx, &im.CurrentKeyRequest{UserId: user, DeviceId: "phone"}))
	if string(cur.GetSyncKey()) != string(key2) {
		t.Errorf("CurrentKey differs from the synced key")
	}

	damaged := append([]byte(nil), key2...)
	damaged[len(damaged)-1] ^= 1
	_, err := md.SyncInbox(ctx, &im.SyncInboxRequest{UserId: user, DeviceId: "phone", SyncKey: damaged})
	wantCode(t, "damaged key", err, svrkit.InvalidArgument)
	_, err = md.SyncInbox(ctx, &im.SyncInboxRequest{UserId: user + 1, DeviceId: "phone", SyncKey: key2})
	wantCode(t, "another user's key", err, svrkit.InvalidArgument)
	_, err = md.SyncInbox(ctx, &im.SyncInboxRequest{UserId: user, DeviceId: "tablet", SyncKey: key2})
	wantCode(t, "another device's key", err, svrkit.InvalidArgument)
	codec := inbox.NewSyncKeyCodec([]byte(SyncKeySecret))
	k, err := codec.Decode(user, "phone", key2)
	if err != nil {
		t.Fatal(err)
	}
	future := codec.Encode(user, "phone", k.With(inbox.Messages, k.Version(inbox.Messages)+1_000_000))
	_, err = md.SyncInbox(ctx, &im.SyncInboxRequest{UserId: user, DeviceId: "phone", SyncKey: future})
	wantCode(t, "key from the future", err, svrkit.OutOfRange)
	_, err = md.SyncInbox(ctx, &im.SyncInboxRequest{UserId: user, DeviceId: "phone", Limit: 1001})
	wantCode(t, "limit over the maximum", err, svrkit.InvalidArgument)
	_, err = md.SyncInbox(ctx, &im.SyncInboxRequest{UserId: user})
	wantCode(t, "no device id", err, svrkit.InvalidArgument)
}

func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	c := Start(t, dir, nil)
	ctx, ad, cd, md := ctxT(t), c.AccountData(t), c.ContactData(t), c.MessageData(t)
	ada := create(t, ctx, ad, "ada")
	bob := create(t, ctx, ad, "bob")
	must(cd.PutContact(ctx, &im.PutContactRequest{UserId: ada.GetUserId(), Contact: &im.ContactEntry{UserId: bob.GetUserId(), Name: "bob"}}))
	d1 := must(md.Deliver(ctx, &im.DeliverRequest{UserId: ada.GetUserId(), Item: textItem(bob.GetUserId(), ada.GetUserId(), "1", "before"), DedupId: "b:1"}))

	c.RestartStorage(t)

	if got := must(ad.LookupAccount(ctx, &im.LookupAccountRequest{Name: "bob"})); got.GetUserId() != bob.GetUserId() {
		t.Fatalf("bob after restart: %v", got)
	}
	carl := create(t, ctx, ad, "carl")
	if id := carl.GetUserId(); id == bob.GetUserId() || id == ada.GetUserId() {
		t.Fatalf("user id %d reused", id)
	}
	if l := must(cd.GetContacts(ctx, &im.GetContactsRequest{UserId: ada.GetUserId()})); l.GetVersion() != 1 || len(l.GetContacts()) != 1 {
		t.Fatalf("contacts after restart: %v", l)
	}
	retry := must(md.Deliver(ctx, &im.DeliverRequest{UserId: ada.GetUserId(), Item: textItem(bob.GetUserId(), ada.GetUserId(), "1", "before"), DedupId: "b:1"}))
	if !retry.GetDuplicate() || retry.GetVersion() != d1.GetVersion() {
		t.Fatalf("retry after restart: %v (first %v)", retry, d1)
	}
	d2 := must(md.Deliver(ctx, &im.DeliverRequest{UserId: ada.GetUserId(), Item: textItem(bob.GetUserId(), ada.GetUserId(), "2", "after"), DedupId: "b:2"}))
	if d2.GetVersion() <= d1.GetVersion() {
		t.Fatalf("version %d after restart, %d before", d2.GetVersion(), d1.GetVersion())
	}
	items, _ := syncAll(t, ctx, md, ada.GetUserId(), "phone", nil, 100)
	var texts []string
	for _, it := range items {
		if m := it.GetMessage(); m != nil {
			texts = append(texts, m.GetText())
		}
	}
	if strings.Join(texts, ",") != "before,after" || items[0].GetType() != im.SyncType_SYNC_TYPE_CONTACTS {
		t.Fatalf("synced after restart: %v", items)
	}
}

// A change written to the list but not published (a crash between the two)
// is published by the next call, once.
func TestPendingContactChangeIsRepublished(t *testing.T) {
	c := start(t)
	ctx, cd, md, st := ctxT(t), c.ContactData(t), c.MessageData(t), c.Storage(t)
	const me = 200
	entry := &im.ContactEntry{UserId: 8, Name: "h", AddedUnix: 1}
	rec := &im.ContactListRecord{
		List:    &im.ContactList{Contacts: []*im.ContactEntry{entry}, Version: 1},
		Pending: &im.ContactChange{Contact: entry, ListVersion: 1},
	}
	must(st.Put(ctx, &im.KVPutRequest{UserId: me, Key: []byte("contacts"), Value: must(proto.Marshal(rec))}))

	for range 2 { // the second call must not publish it again
		if l := must(cd.GetContacts(ctx, &im.GetContactsRequest{UserId: me})); l.GetVersion() != 1 {
			t.Fatalf("list %v", l)
		}
	}
	r := must(cd.PutContact(ctx, &im.PutContactRequest{UserId: me, Contact: &im.ContactEntry{UserId: 9, Name: "i"}}))
	if r.GetVersion() != 2 {
		t.Fatalf("reply %v", r)
	}
	items, _ := syncAll(t, ctx, md, me, "phone", nil, 100)
	if len(items) != 2 || items[0].GetContact().GetListVersion() != 1 || items[1].GetContact().GetListVersion() != 2 {
		t.Fatalf("CONTACTS items %v", items)
	}
}

// RevokeSessions moves an account's session counter and floors, durably
// and visibly to GetSessionState at once; a password change lands with the
// revocation of every session, and only over the hash it expects.
func TestRevokeSessions(t *testing.T) {
	c := start(t)
	ctx, ad := ctxT(t), c.AccountData(t)
	ada := create(t, ctx, ad, "ada")
	user := ada.GetUserId()
	state := func() *im.SessionState { return must(ad.GetSessionState(ctx, &im.GetAccountRequest{UserId: user})) }
	floors := func(st *im.SessionState) string {
		var b strings.Builder
		fmt.Fprintf(&b, "counter %d floor %d", st.GetCounter(), st.GetFloor())
		for _, d := range st.GetDevices() {
			fmt.Fprintf(&b, " %s:%d", d.GetDeviceId(), d.GetFloor())
		}
		return b.String()
	}
	want := func(what, s string) {
		t.Helper()
		if got := floors(state()); got != s {
			t.Fatalf("%s: %s, want %s", what, got, s)
		}
	}
	want("new account", "counter 0 floor 0")
	revoke := func(device string) *im.AccountRecord {
		return must(ad.RevokeSessions(ctx, &im.RevokeSessionsRequest{UserId: user, DeviceId: device}))
	}
	revoke("phone")
	revoke("tablet")
	rec := revoke("phone")
	want("three device logouts", "counter 3 floor 0 tablet:2 phone:3")
	if floors(rec.GetSessions()) != "counter 3 floor 0 tablet:2 phone:3" {
		t.Fatalf("RevokeSessions answered %s", floors(rec.GetSessions()))
	}
	// Floors every token below has expired for are dropped.
	must(ad.RevokeSessions(ctx, &im.RevokeSessionsRequest{UserId: user, DeviceId: "laptop", ExpiredBeforeUnix: time.Now().Unix() + 10}))
	want("after the old floors expired", "counter 4 floor 0 laptop:4")

	_, err := ad.RevokeSessions(ctx, &im.RevokeSessionsRequest{UserId: user, NewPasswordHash: "$argon2id$new", ExpectPasswordHash: "$argon2id$other"})
	wantCode(t, "password change over another hash", err, svrkit.Aborted)
	must(ad.RevokeSessions(ctx, &im.RevokeSessionsRequest{UserId: user, NewPasswordHash: "$argon2id$new", ExpectPasswordHash: "$argon2id$test"}))
	want("password change", "counter 5 floor 5")
	if h := must(ad.LookupAccount(ctx, &im.LookupAccountRequest{Name: "ada"})).GetPasswordHash(); h != "$argon2id$new" {
		t.Fatalf("hash after the change: %q", h)
	}
	// The record is bounded: beyond 64 device floors, the oldest are
	// folded into the account's floor.
	for i := range 70 {
		revoke(fmt.Sprintf("device-%d", i))
	}
	st := state()
	if len(st.GetDevices()) > 64 || st.GetFloor() <= 5 || st.GetCounter() != 75 {
		t.Fatalf("after 70 device logouts: %s", floors(st))
	}
	_, err = ad.GetSessionState(ctx, &im.GetAccountRequest{UserId: 999999})
	wantCode(t, "unknown user", err, svrkit.NotFound)
	_, err = ad.RevokeSessions(ctx, &im.RevokeSessionsRequest{UserId: user, DeviceId: strings.Repeat("d", 65)})
	wantCode(t, "long device id", err, svrkit.InvalidArgument)
}
