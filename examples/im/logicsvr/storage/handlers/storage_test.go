package handlers

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/logicsvr"
)

// A sync that moves the device's ACK gets the user trimmed in the
// background, once retention has passed.
func TestTrimWorkerTrimsAcknowledged(t *testing.T) {
	s, err := Open(Config{Dir: t.TempDir(), SyncKeySecret: "s", Retention: logicsvr.Duration(time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	for i := range 5 {
		if _, err := s.Deliver(ctx, &im.InboxDeliverRequest{UserId: 3, Payload: []byte("m"), DedupId: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := s.Sync(ctx, &im.InboxSyncRequest{UserId: 3, DeviceId: "phone", Limit: 10})
	if err != nil || len(r.GetEntries()) != 5 {
		t.Fatalf("sync: %v %v", r, err)
	}
	time.Sleep(5 * time.Millisecond) // past retention
	if _, err := s.Sync(ctx, &im.InboxSyncRequest{UserId: 3, DeviceId: "phone", SyncKey: r.GetSyncKey(), Limit: 10}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, entries, _ := s.TrimStats(); entries == 5 {
			break
		}
		if time.Now().After(deadline) {
			u, e, d := s.TrimStats()
			t.Fatalf("not trimmed: users %d entries %d dropped %d", u, e, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The device's key still works; a new device is told it missed some.
	if r2, err := s.Sync(ctx, &im.InboxSyncRequest{UserId: 3, DeviceId: "phone", SyncKey: r.GetSyncKey(), Limit: 10}); err != nil || len(r2.GetEntries()) != 0 || r2.GetGap() {
		t.Fatalf("acknowledged device after trim: %v %v", r2, err)
	}
	if r3, err := s.Sync(ctx, &im.InboxSyncRequest{UserId: 3, DeviceId: "tablet", Limit: 10}); err != nil || !r3.GetGap() {
		t.Fatalf("new device after trim: %v %v", r3, err)
	}
}

// A full queue drops and counts instead of blocking the sync.
func TestTrimQueueFullDrops(t *testing.T) {
	s, err := Open(Config{Dir: t.TempDir(), TrimQueue: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.trim.stop() // nothing drains the queue now
	s.trim.ctx = context.Background()
	for u := range uint64(10) {
		s.trim.schedule(u + 1)
	}
	if _, _, dropped := s.TrimStats(); dropped != 9 {
		t.Fatalf("dropped %d, want 9", dropped)
	}
}
