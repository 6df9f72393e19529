package imclient

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/svrkit"
)

func TestReadStateFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "up.json")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"instances": [
	  {"name": "storage", "service": "storage", "state": "ready", "http": "127.0.0.1:1"},
	  {"name": "account", "service": "account", "state": "ready", "http": "127.0.0.1:2"},
	  {"name": "contact", "service": "contact", "state": "ready", "http": "127.0.0.1:3"},
	  {"name": "send-1", "service": "send", "state": "restarting", "http": "127.0.0.1:4"},
	  {"name": "send-2", "service": "send", "state": "ready", "http": "127.0.0.1:5"},
	  {"name": "sync", "service": "sync", "state": "starting", "http": "127.0.0.1:6"}]}`)
	a, err := ReadStateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Addrs{Account: "127.0.0.1:2", Contact: "127.0.0.1:3", Send: "127.0.0.1:5", Sync: "127.0.0.1:6"}
	if a != want {
		t.Fatalf("addrs %+v, want %+v (a ready replica first, else any)", a, want)
	}
	write(`{"instances": [{"name": "account", "service": "account", "state": "ready", "http": "127.0.0.1:2"}]}`)
	if _, err := ReadStateFile(path); err == nil {
		t.Fatal("a state file without send, sync and contact was accepted")
	}
	if _, err := ReadStateFile(filepath.Join(dir, "missing.json")); err == nil {
		t.Fatal("a missing state file was accepted")
	}
}

func TestNeedsLogin(t *testing.T) {
	c := New(Addrs{Account: "127.0.0.1:1", Contact: "127.0.0.1:1", Send: "127.0.0.1:1", Sync: "127.0.0.1:1"})
	ctx := context.Background()
	for name, err := range map[string]error{
		"profile":  func() error { _, err := c.Profile(ctx, 0); return err }(),
		"contacts": func() error { _, err := c.Contacts(ctx); return err }(),
		"send":     func() error { _, err := c.SendText(ctx, 2, "", "hi"); return err }(),
		"sync":     func() error { _, err := c.Sync(ctx, 0); return err }(),
	} {
		if svrkit.CodeOf(err) != svrkit.Unauthenticated {
			t.Errorf("%s before login: %v, want unauthenticated", name, err)
		}
	}
}

// A send to a backend that is not there is retried until ctx ends, and
// then fails with ctx's error: it never returns nil without an answer.
func TestSendRetriesUntilContextEnds(t *testing.T) {
	c := New(Addrs{Send: "127.0.0.1:1"}) // nothing listens on port 1
	c.SetSession(Session{UserID: 1, Token: "t"})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := c.SendText(ctx, 2, "m1", "hi")
	if svrkit.CodeOf(err) != svrkit.DeadlineExceeded {
		t.Fatalf("send with nothing listening: %v, want deadline_exceeded after retries", err)
	}
}

// TestCoveredNotifies: a notify naming a version the device has already
// synced needs no sync; a newer one, one that does not decode, or a key
// set from outside does.
func TestCoveredNotifies(t *testing.T) {
	c := New(Addrs{})
	notify := func(typ im.SyncType, v uint64) {
		b, err := proto.Marshal(&im.SyncNotify{Type: typ, Version: v})
		if err != nil {
			t.Fatal(err)
		}
		c.pushed(b)
	}
	msg := im.SyncType_SYNC_TYPE_MESSAGES
	if !c.covered() {
		t.Fatal("a fresh client with no notify is not covered")
	}
	notify(msg, 5)
	if c.covered() {
		t.Fatal("notify of version 5 with nothing synced counts as covered")
	}
	c.synced(&im.SyncReply{SyncKey: []byte("k1"), Items: []*im.SyncItem{{Type: msg, Version: 4}, {Type: msg, Version: 6}}})
	if !c.covered() {
		t.Error("version 5 notified, 6 synced: not covered")
	}
	notify(msg, 3) // late, older notify
	if !c.covered() {
		t.Error("an older notify after a newer sync: not covered")
	}
	notify(im.SyncType_SYNC_TYPE_CONTACTS, 1)
	if c.covered() {
		t.Error("a contacts notify is covered by message versions")
	}
	c.synced(&im.SyncReply{SyncKey: []byte("k2"), Items: []*im.SyncItem{{Type: im.SyncType_SYNC_TYPE_CONTACTS, Version: 1}}})
	if !c.covered() {
		t.Error("contacts 1 synced: not covered")
	}
	c.SetSyncKey([]byte("k0"))
	if c.covered() {
		t.Error("after SetSyncKey the versions synced under the old key still count")
	}
	c.mustSync.Store(false)
	c.pushed([]byte{0xff, 0xff})
	if !c.mustSync.Load() {
		t.Error("a notify that does not decode does not force a sync")
	}
	v1 := New(Addrs{}, WithClientVersion(1))
	v1.pushed(mustMarshal(t, &im.SyncNotify{Type: msg, Version: 1}))
	v1.synced(&im.SyncReply{Items: []*im.SyncItem{{Type: msg, Version: 9}}})
	if v1.covered() {
		t.Error("a version 1 client, whose items are adapted, trusts their versions")
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
