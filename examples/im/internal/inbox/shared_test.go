package inbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im/internal/kv"
)

// sharedRefs returns the count of payload's shared record, 0 if there is
// none.
func sharedRefs(t *testing.T, ib *Inbox, payload []byte) uint64 {
	t.Helper()
	h := sha256.Sum256(payload)
	refs, _, _, err := ib.loadPayload(context.Background(), payloadKey(h[:]))
	if err != nil {
		t.Fatal(err)
	}
	return refs
}

// A large PutMany payload is stored once: each user's entry refers to it,
// Sync returns it whole, a redelivery does not count it again, and trims
// count it down until the last deletes it.
func TestPutManySharedPayload(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	ib, db := open(t, t.TempDir(), Options{Now: clk.Now, Retention: time.Hour, DeviceTTL: 24 * time.Hour})
	big := bytes.Repeat([]byte("members "), 1000) // 8 KB, over sharedPayloadMin
	users := []uint64{7, 8, 9}

	if _, err := ib.PutMany(ctx, users, Groups, big, "g:1:1"); err != nil {
		t.Fatal(err)
	}
	if got := sharedRefs(t, ib, big); got != 3 {
		t.Fatalf("shared count %d after a PutMany to 3 users, want 3", got)
	}
	for _, u := range users {
		page, err := db.Scan(ctx, inboxRow(u, Groups), 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Entries) != 1 || len(page.Entries[0].Value) > 64 {
			t.Fatalf("user %d: %d entries, first of %d bytes: the payload is stored per user", u, len(page.Entries), len(page.Entries[0].Value))
		}
	}
	// A redelivery writes nothing and counts nothing.
	if rs, err := ib.PutMany(ctx, users, Groups, big, "g:1:1"); err != nil || !rs[0].Duplicate {
		t.Fatalf("redelivery: %+v, %v", rs, err)
	}
	if got := sharedRefs(t, ib, big); got != 3 {
		t.Fatalf("shared count %d after a redelivery, want 3", got)
	}
	// A small payload stays inline.
	if _, err := ib.PutMany(ctx, users, Groups, []byte("renamed"), "g:1:2"); err != nil {
		t.Fatal(err)
	}
	if got := sharedRefs(t, ib, []byte("renamed")); got != 0 {
		t.Fatalf("a small payload was shared (count %d)", got)
	}

	devices := map[uint64]*device{}
	for _, u := range users {
		d := newDevice("phone", u)
		d.drain(t, ib, 100)
		if len(d.got) != 2 || !bytes.Equal(d.got[0].Payload, big) || string(d.got[1].Payload) != "renamed" {
			t.Fatalf("user %d synced %d entries: %q…", u, len(d.got), payloads(d.got))
		}
		d.sync(t, ib, 100) // ACKs both
		devices[u] = d
	}

	clk.Advance(2 * time.Hour)
	for i, u := range users {
		if n, err := ib.Trim(ctx, u); err != nil || n != 2 {
			t.Fatalf("trim user %d = %d, %v; want 2", u, n, err)
		}
		want := uint64(len(users) - 1 - i)
		if got := sharedRefs(t, ib, big); got != want {
			t.Fatalf("shared count %d after %d trims, want %d", got, i+1, want)
		}
	}
	h := sha256.Sum256(big)
	if _, _, err := db.Get(ctx, payloadKey(h[:])); err == nil {
		t.Fatal("the shared payload outlived its last entry")
	}
}

// PutManys of one payload to different users at once (a fan-out's batches)
// count every user they write, whichever commits first.
func TestPutManySharedConcurrent(t *testing.T) {
	ctx := context.Background()
	ib, _ := open(t, t.TempDir(), Options{})
	big := bytes.Repeat([]byte{'x'}, 4<<10)
	const batches, per = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, batches)
	for b := range batches {
		wg.Go(func() {
			users := make([]uint64, per)
			for i := range users {
				users[i] = uint64(1000 + b*per + i)
			}
			if _, err := ib.PutMany(ctx, users, Groups, big, "g:2:1"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := sharedRefs(t, ib, big); got != batches*per {
		t.Fatalf("shared count %d, want %d", got, batches*per)
	}
	for u := uint64(1000); u < 1000+batches*per; u++ {
		d := newDevice("phone", u)
		d.drain(t, ib, 10)
		if len(d.got) != 1 || !bytes.Equal(d.got[0].Payload, big) {
			t.Fatalf("user %d synced %d entries", u, len(d.got))
		}
	}
}

// An entry whose shared payload is gone (trimmed between Sync's scan and
// its read of the payload) is answered as a trimmed one: skipped, with Gap.
func TestSyncSharedPayloadGone(t *testing.T) {
	ctx := context.Background()
	ib, db := open(t, t.TempDir(), Options{})
	big := bytes.Repeat([]byte{'y'}, 2<<10)
	if _, err := ib.PutMany(ctx, []uint64{1, 2}, Groups, big, "g:3:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := ib.Put(ctx, 1, Groups, []byte("later"), "g:3:2"); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(big)
	if err := db.Delete(ctx, payloadKey(h[:]), kv.AnyVersion); err != nil {
		t.Fatal(err)
	}
	d := newDevice("phone", 1)
	res := d.sync(t, ib, 10)
	if !res.Gap || fmt.Sprint(payloads(res.Entries)) != "[later]" {
		t.Fatalf("sync: gap %v, entries %q; want a gap and only the later entry", res.Gap, payloads(res.Entries))
	}
}
