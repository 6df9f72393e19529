package imclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/imclient"
	"github.com/svrkit/svrkit/examples/im/imtest"
	"github.com/svrkit/svrkit/examples/im/internal/inbox"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/svrkit"
)

// topologySecrets reads the session and SyncKey secrets of examples/im's
// topology, so the test can mint expired tokens and future keys the way
// only the server could.
func topologySecrets(t *testing.T) (sessionSecret, syncKeySecret string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "topology.json"))
	if err != nil {
		t.Fatal(err)
	}
	var topo struct {
		Services []struct {
			Name   string `json:"name"`
			Config struct {
				App map[string]any `json:"app"`
			} `json:"config"`
		} `json:"services"`
	}
	if err := json.Unmarshal(b, &topo); err != nil {
		t.Fatal(err)
	}
	for _, s := range topo.Services {
		switch s.Name {
		case "account":
			sessionSecret, _ = s.Config.App["session_secret"].(string)
		case "storage":
			syncKeySecret, _ = s.Config.App["sync_key_secret"].(string)
		}
	}
	if sessionSecret == "" || syncKeySecret == "" {
		t.Fatal("topology.json has no session_secret or sync_key_secret")
	}
	return sessionSecret, syncKeySecret
}

// wantCode fails the test unless err has code c (and, if msg is not empty,
// a message containing msg).
func wantCode(t *testing.T, what string, err error, c svrkit.Code, msg string) {
	t.Helper()
	var e *svrkit.Error
	if !errors.As(err, &e) || e.Code() != c || !strings.Contains(e.Message(), msg) {
		t.Fatalf("%s: got %v, want %v %q", what, err, c, msg)
	}
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

// messages returns the MESSAGES items' messages.
func messages(items []*im.SyncItem) []*im.Message {
	var ms []*im.Message
	for _, it := range items {
		if m := it.GetMessage(); m != nil {
			ms = append(ms, m)
		}
	}
	return ms
}

// TestBackend runs the whole IM backend (svrkit up on examples/im: storage,
// the three data services and the four client-facing Logicsvrs, each its own
// process) and drives it through imclient over HTTP: accounts, sessions,
// contacts, sends and sync, and the bad inputs of issue #5 — each must answer
// its code and leave the stored data as it was.
func TestBackend(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the IM backend")
	}
	sessionSecret, syncKeySecret := topologySecrets(t)
	be := imtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	newClient := func() *imclient.Client {
		c, err := imclient.FromStateFile(be.StateFile)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	// Accounts.
	alice, bob, carol := newClient(), newClient(), newClient()
	aliceID := must[uint64](t, "register alice")(alice.Register(ctx, "alice", "alice-password", "Alice"))
	bobID := must[uint64](t, "register bob")(bob.Register(ctx, "bob", "bob-password", ""))
	carolID := must[uint64](t, "register carol")(carol.Register(ctx, "carol", "carol-password", ""))
	if aliceID == bobID || bobID == carolID || aliceID == 0 {
		t.Fatalf("user ids %d %d %d", aliceID, bobID, carolID)
	}
	_, err := alice.Register(ctx, "alice", "another-password", "")
	wantCode(t, "register a taken name", err, svrkit.AlreadyExists, "")
	// A repeated registration (the first answer was lost) gets its own id.
	if again := must[uint64](t, "register alice again")(alice.Register(ctx, "alice", "alice-password", "Alice")); again != aliceID {
		t.Errorf("repeated registration answered user %d, want %d", again, aliceID)
	}
	_, err = alice.Register(ctx, "Bad Name", "alice-password", "")
	wantCode(t, "register a bad name", err, svrkit.InvalidArgument, "name must be 3 to 32")
	_, err = alice.Register(ctx, "dave", "short", "")
	wantCode(t, "register a short password", err, svrkit.InvalidArgument, "password must be 8 to 128")

	// Logins: a wrong password and an unknown name look the same.
	_, err = alice.Login(ctx, "alice", "wrong-password", "")
	wantCode(t, "wrong password", err, svrkit.Unauthenticated, "wrong name or password")
	_, errUnknown := alice.Login(ctx, "nobody", "alice-password", "")
	if errUnknown == nil || errUnknown.Error() != err.Error() {
		t.Fatalf("unknown name answered %v, wrong password %v: they must be the same", errUnknown, err)
	}
	_, err = alice.Profile(ctx, 0)
	wantCode(t, "call before login", err, svrkit.Unauthenticated, "not logged in")
	aliceSession := must[imclient.Session](t, "login alice")(alice.Login(ctx, "alice", "alice-password", "laptop"))
	must[imclient.Session](t, "login bob")(bob.Login(ctx, "bob", "bob-password", "phone"))
	must[imclient.Session](t, "login carol")(carol.Login(ctx, "carol", "carol-password", ""))
	if aliceSession.UserID != aliceID || aliceSession.ExpiresUnix < time.Now().Add(23*time.Hour).Unix() {
		t.Fatalf("alice's session %+v", aliceSession)
	}

	// Bad tokens, on every client-facing Logicsvr.
	signer, err := session.NewSigner(sessionSecret, session.DefaultTTL)
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := signer.Sign(session.Claims{UserID: aliceID, DeviceID: "laptop",
		IssuedAt: time.Now().Add(-48 * time.Hour), Expires: time.Now().Add(-24 * time.Hour)})
	forger, _ := session.NewSigner("not the secret", session.DefaultTTL)
	forged, _ := forger.Sign(session.Claims{UserID: bobID, DeviceID: "phone", IssuedAt: time.Now(), Expires: time.Now().Add(time.Hour)})
	edited := []byte(aliceSession.Token)
	edited[10] ^= 1
	for _, tc := range []struct {
		name, token, msg string
	}{
		{"expired", expired, "session expired; log in again"},
		{"forged", forged, "invalid session token"},
		{"edited", string(edited), "invalid session token"},
		{"garbage", "garbage", "invalid session token"},
	} {
		c := newClient()
		c.SetSession(imclient.Session{UserID: aliceID, Token: tc.token})
		_, err := c.Profile(ctx, 0)
		wantCode(t, tc.name+" token: profile", err, svrkit.Unauthenticated, tc.msg)
		_, err = c.Contacts(ctx)
		wantCode(t, tc.name+" token: contacts", err, svrkit.Unauthenticated, tc.msg)
		_, err = c.SendText(ctx, bobID, "", "hi")
		wantCode(t, tc.name+" token: send", err, svrkit.Unauthenticated, tc.msg)
		_, err = c.Sync(ctx, 0)
		wantCode(t, tc.name+" token: sync", err, svrkit.Unauthenticated, tc.msg)
	}

	// Profiles.
	p := must[*im.Profile](t, "own profile")(alice.Profile(ctx, 0))
	if p.GetUserId() != aliceID || p.GetName() != "alice" || p.GetNickname() != "Alice" {
		t.Fatalf("alice's profile %v", p)
	}
	p = must[*im.Profile](t, "bob's profile")(alice.Profile(ctx, bobID))
	if p.GetName() != "bob" || p.GetNickname() != "bob" {
		t.Fatalf("bob's profile as alice sees it: %v", p)
	}
	_, err = alice.Profile(ctx, 1<<40)
	wantCode(t, "unknown user's profile", err, svrkit.NotFound, "")
	p = must[*im.Profile](t, "set nickname")(alice.SetProfile(ctx, "Alice L."))
	if p.GetNickname() != "Alice L." {
		t.Fatalf("after SetProfile: %v", p)
	}
	_, err = alice.SetProfile(ctx, strings.Repeat("n", 65))
	wantCode(t, "long nickname", err, svrkit.InvalidArgument, "nickname must be 1 to 64")

	// Contacts: versions grow with changes only.
	r := must[*im.ContactReply](t, "add bob")(alice.AddContact(ctx, "bob"))
	if !r.GetChanged() || r.GetContact().GetUserId() != bobID || r.GetVersion() == 0 {
		t.Fatalf("add bob: %v", r)
	}
	v1 := r.GetVersion()
	r = must[*im.ContactReply](t, "add bob again")(alice.AddContact(ctx, "bob"))
	if r.GetChanged() || r.GetVersion() != v1 {
		t.Fatalf("adding bob again changed the list: %v (version was %d)", r, v1)
	}
	r = must[*im.ContactReply](t, "add carol")(alice.AddContact(ctx, "carol"))
	if !r.GetChanged() || r.GetVersion() <= v1 {
		t.Fatalf("add carol: %v", r)
	}
	_, err = alice.AddContact(ctx, "alice")
	wantCode(t, "add oneself", err, svrkit.InvalidArgument, "yourself")
	_, err = alice.AddContact(ctx, "nobody")
	wantCode(t, "add an unknown name", err, svrkit.NotFound, "")
	r = must[*im.ContactReply](t, "remove carol")(alice.RemoveContact(ctx, carolID))
	v3 := r.GetVersion()
	if !r.GetChanged() || v3 <= v1 {
		t.Fatalf("remove carol: %v", r)
	}
	r = must[*im.ContactReply](t, "remove carol again")(alice.RemoveContact(ctx, carolID))
	if r.GetChanged() || r.GetVersion() != v3 {
		t.Fatalf("removing carol again: %v", r)
	}
	l := must[*im.ContactList](t, "list")(alice.Contacts(ctx))
	if len(l.GetContacts()) != 1 || l.GetContacts()[0].GetUserId() != bobID || l.GetVersion() != v3 {
		t.Fatalf("alice's contacts: %v", l)
	}
	if l := must[*im.ContactList](t, "bob's list")(bob.Contacts(ctx)); len(l.GetContacts()) != 0 {
		t.Fatalf("bob's contacts, changed by alice's calls: %v", l)
	}

	// Sends: stored once per client_msg_id, in both inboxes.
	sent := must[*im.SendReply](t, "send")(alice.SendText(ctx, bobID, "m1", "hello bob"))
	again := must[*im.SendReply](t, "send again")(alice.SendText(ctx, bobID, "m1", "hello bob"))
	if sent.GetDuplicate() || !again.GetDuplicate() || again.GetSentUnixMs() != sent.GetSentUnixMs() {
		t.Fatalf("send %v, retry %v: want the retry a duplicate with the same time", sent, again)
	}
	must[*im.SendReply](t, "voice")(alice.SendVoice(ctx, bobID, "m2", bytes.Repeat([]byte{1}, 1000), 1500, "opus"))
	must[*im.SendReply](t, "to oneself")(alice.SendText(ctx, aliceID, "note", "note to self"))

	// Bad sends change nothing.
	for _, tc := range []struct {
		name string
		err  error
		code svrkit.Code
		msg  string
	}{
		{"oversized text", func() error {
			_, err := alice.SendText(ctx, bobID, "big", strings.Repeat("x", 4097))
			return err
		}(), svrkit.InvalidArgument, "text must be 1 to 4096 bytes"},
		{"empty text", func() error { _, err := alice.SendText(ctx, bobID, "e", ""); return err }(), svrkit.InvalidArgument, "text must be"},
		{"oversized voice", func() error {
			_, err := alice.SendVoice(ctx, bobID, "bigv", make([]byte, 48<<10+1), 1000, "opus")
			return err
		}(), svrkit.InvalidArgument, "voice must be 1 to 49152 bytes"},
		{"long voice", func() error {
			_, err := alice.SendVoice(ctx, bobID, "longv", []byte{1}, 60001, "opus")
			return err
		}(), svrkit.InvalidArgument, "duration_ms must be 1 to 60000"},
		{"unknown receiver", func() error { _, err := alice.SendText(ctx, 1<<40, "u", "hi"); return err }(), svrkit.NotFound, "no user"},
	} {
		wantCode(t, tc.name, tc.err, tc.code, tc.msg)
	}

	// Bob's phone gets each message once, from alice (the token's user:
	// there is no field to claim another sender).
	items := must[[]*im.SyncItem](t, "bob syncs")(syncAll(ctx, bob))
	ms := messages(items)
	if len(ms) != 2 || ms[0].GetClientMsgId() != "m1" || ms[0].GetText() != "hello bob" || ms[1].GetClientMsgId() != "m2" ||
		len(ms[1].GetVoice()) != 1000 || ms[1].GetVoiceFormat() != "opus" {
		t.Fatalf("bob synced %v", ms)
	}
	for _, m := range ms {
		if m.GetFromUserId() != aliceID || m.GetToUserId() != bobID {
			t.Fatalf("message %v: want from alice to bob", m)
		}
	}
	if ms[0].GetSentUnixMs() != sent.GetSentUnixMs() {
		t.Fatalf("bob's copy sent at %d, the reply said %d", ms[0].GetSentUnixMs(), sent.GetSentUnixMs())
	}
	if items := must[[]*im.SyncItem](t, "bob syncs again")(syncAll(ctx, bob)); len(items) != 0 {
		t.Fatalf("second sync returned %v: want nothing new", items)
	}

	// Alice's items: her profile change, her three contact changes, her
	// own copies of the three messages, in type order.
	items = must[[]*im.SyncItem](t, "alice syncs")(syncAll(ctx, alice))
	var types []im.SyncType
	for _, it := range items {
		types = append(types, it.GetType())
	}
	wantTypes := []im.SyncType{im.SyncType_SYNC_TYPE_ACCOUNT, im.SyncType_SYNC_TYPE_CONTACTS, im.SyncType_SYNC_TYPE_CONTACTS,
		im.SyncType_SYNC_TYPE_CONTACTS, im.SyncType_SYNC_TYPE_MESSAGES, im.SyncType_SYNC_TYPE_MESSAGES, im.SyncType_SYNC_TYPE_MESSAGES}
	if len(types) != len(wantTypes) {
		t.Fatalf("alice synced %v: want %v", items, wantTypes)
	}
	for i := range types {
		if types[i] != wantTypes[i] {
			t.Fatalf("alice synced %v: want types %v", items, wantTypes)
		}
	}
	if c := items[3].GetContact(); !c.GetRemoved() || c.GetContact().GetUserId() != carolID || c.GetListVersion() != v3 {
		t.Fatalf("last contact change %v: want carol removed at version %d", c, v3)
	}
	if m := items[4].GetMessage(); m.GetClientMsgId() != "m1" || m.GetSentUnixMs() != sent.GetSentUnixMs() {
		t.Fatalf("alice's own copy %v", m)
	}

	// Carol sees nothing of theirs; her key is hers only.
	items = must[[]*im.SyncItem](t, "carol syncs")(syncAll(ctx, carol))
	if len(messages(items)) != 0 || len(items) != 0 {
		t.Fatalf("carol synced %v: nothing was hers", items)
	}
	carol.SetSyncKey(bob.SyncKey())
	_, err = carol.Sync(ctx, 0)
	wantCode(t, "another user's SyncKey", err, svrkit.InvalidArgument, "")

	// Bad SyncKeys and limits.
	c := newClient()
	c.SetSession(bob.Session())
	c.SetSyncKey([]byte("not a sync key"))
	_, err = c.Sync(ctx, 0)
	wantCode(t, "malformed SyncKey", err, svrkit.InvalidArgument, "")
	c.SetSyncKey(inbox.NewSyncKeyCodec([]byte(syncKeySecret)).Encode(bobID, "phone", inbox.SyncKey{}.With(inbox.Messages, 1<<40)))
	_, err = c.Sync(ctx, 0)
	wantCode(t, "SyncKey from the future", err, svrkit.OutOfRange, "")
	c.SetSyncKey(bytes.Repeat([]byte{1}, 257))
	_, err = c.Sync(ctx, 0)
	wantCode(t, "long SyncKey", err, svrkit.InvalidArgument, "sync_key must be at most 256 bytes")
	c.SetSyncKey(nil)
	_, err = c.Sync(ctx, 1001)
	wantCode(t, "limit over 1000", err, svrkit.InvalidArgument, "limit must be 1 to 1000")

	// Bob's second device syncs on its own key: it gets everything, and
	// the phone, which has acknowledged it, gets nothing again.
	laptop := newClient()
	must[imclient.Session](t, "bob's laptop")(laptop.Login(ctx, "bob", "bob-password", "laptop"))
	must[*im.SendReply](t, "send m3")(alice.SendText(ctx, bobID, "m3", "third"))
	ms = messages(must[[]*im.SyncItem](t, "laptop syncs")(syncAll(ctx, laptop)))
	if len(ms) != 3 || ms[2].GetClientMsgId() != "m3" {
		t.Fatalf("bob's laptop synced %v: want m1, m2, m3", ms)
	}
	ms = messages(must[[]*im.SyncItem](t, "phone syncs")(syncAll(ctx, bob)))
	if len(ms) != 1 || ms[0].GetClientMsgId() != "m3" {
		t.Fatalf("bob's phone synced %v: want only m3", ms)
	}

	// A small limit pages with continue_flag.
	page := must[*im.SyncReply](t, "page")(func() (*im.SyncReply, error) { c.SetSyncKey(nil); return c.Sync(ctx, 1) }())
	if len(page.GetItems()) != 1 || !page.GetContinueFlag() {
		t.Fatalf("limit 1: %v", page)
	}

	// A send that died between its two writes: the receiver's copy is
	// stored (written here straight into messagedata, as the send
	// Logicsvr would have), the sender's is not. The client's retry
	// completes it: a duplicate for bob, a first copy for alice.
	rpc := be.RPC("messagedata", "send")
	half := &im.Message{FromUserId: aliceID, ToUserId: bobID, ClientMsgId: "m4", Type: im.MessageType_MESSAGE_TYPE_TEXT, Text: "half sent"}
	d := must[*im.DeliverReply](t, "receiver's copy")(im.NewMessageDataClient(rpc).Deliver(ctx, &im.DeliverRequest{
		UserId: bobID, DedupId: strconv.FormatUint(aliceID, 10) + ":m4",
		Item: &im.SyncItem{Type: im.SyncType_SYNC_TYPE_MESSAGES, Item: &im.SyncItem_Message{Message: half}},
	}))
	retry := must[*im.SendReply](t, "retry of a half-done send")(alice.SendText(ctx, bobID, "m4", "half sent"))
	if !retry.GetDuplicate() || retry.GetSentUnixMs() != d.GetAtUnixMs() {
		t.Fatalf("retry answered %v: want duplicate, sent at %d", retry, d.GetAtUnixMs())
	}
	ms = messages(must[[]*im.SyncItem](t, "alice syncs m4")(syncAll(ctx, alice)))
	if len(ms) != 2 || ms[0].GetClientMsgId() != "m3" || ms[1].GetClientMsgId() != "m4" || ms[1].GetSentUnixMs() != d.GetAtUnixMs() {
		t.Fatalf("alice's own copies after the retry: %v; want m3, m4", ms)
	}
	ms = messages(must[[]*im.SyncItem](t, "phone syncs m4")(syncAll(ctx, bob)))
	if len(ms) != 1 || ms[0].GetClientMsgId() != "m4" {
		t.Fatalf("bob's phone synced %v: want m4 once", ms)
	}

	// The send Logicsvr is killed: a send issued right away is retried
	// by the client until the restarted one answers, and stored once.
	pid, err := be.Kill("send")
	if err != nil {
		t.Fatal(err)
	}
	sendCtx, cancelSend := context.WithTimeout(ctx, time.Minute)
	defer cancelSend()
	if _, err := alice.SendText(sendCtx, bobID, "m5", "through a restart"); err != nil {
		t.Fatalf("send while send (pid %d) restarts: %v", pid, err)
	}
	ms = messages(must[[]*im.SyncItem](t, "phone syncs m5")(syncAll(ctx, bob)))
	if len(ms) != 1 || ms[0].GetClientMsgId() != "m5" {
		t.Fatalf("bob's phone synced %v: want m5 once", ms)
	}
}

func syncAll(ctx context.Context, c *imclient.Client) ([]*im.SyncItem, error) {
	items, _, err := c.SyncAll(ctx)
	return items, err
}
