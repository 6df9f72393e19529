package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/inbox"
	"github.com/svrkit/svrkit/examples/im/internal/kv"
	"github.com/svrkit/svrkit/examples/im/internal/replica"
	"github.com/svrkit/svrkit/examples/im/internal/seq"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
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

// Every error kind of the storage layer gets its code in toStatus, and a
// follower's answer becomes a redirect to the leader.
func TestToStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code svrkit.Code
	}{
		{fmt.Errorf("kv: key %q not found: %w", "k", kv.ErrNotFound), svrkit.NotFound},
		{&kv.ConflictError{Key: []byte("k"), Expected: 1, Actual: 2}, svrkit.Aborted},
		{fmt.Errorf("wrapped: %w", kv.ErrInvalid), svrkit.InvalidArgument},
		{fmt.Errorf("x: %w", inbox.ErrMalformedSyncKey), svrkit.InvalidArgument},
		{fmt.Errorf("x: %w", inbox.ErrInvalid), svrkit.InvalidArgument},
		{fmt.Errorf("x: %w", inbox.ErrFutureSyncKey), svrkit.OutOfRange},
		{fmt.Errorf("x: %w", kv.ErrCorrupt), svrkit.DataLoss},
		{fmt.Errorf("x: %w", inbox.ErrCorrupt), svrkit.DataLoss},
		{kv.ErrClosed, svrkit.Unavailable},
		{fmt.Errorf("x: %w", replica.ErrUnavailable), svrkit.Unavailable},
		{fmt.Errorf("x: %w", seq.ErrExhausted), svrkit.ResourceExhausted},
		{context.Canceled, svrkit.Canceled},
		{context.DeadlineExceeded, svrkit.DeadlineExceeded},
		{errors.New("disk on fire"), svrkit.Internal},
		{svrkit.NewError(svrkit.PermissionDenied, "mine"), svrkit.PermissionDenied},
	} {
		got := toStatus(tc.err)
		if svrkit.CodeOf(got) != tc.code || !strings.Contains(svrkit.AsError(got).Message(), svrkit.AsError(tc.err).Message()) {
			t.Errorf("%v: %v, want code %v", tc.err, got, tc.code)
		}
	}
	redirect := toStatus(&replica.NotLeaderError{LeaderID: "s2", LeaderRPC: "127.0.0.1:7002"})
	if addr, ok := svrkit.RedirectOf(redirect); !ok || addr != "127.0.0.1:7002" {
		t.Errorf("not the leader: %v", redirect)
	}
	if toStatus(nil) != nil {
		t.Error("nil is not an error")
	}
}
