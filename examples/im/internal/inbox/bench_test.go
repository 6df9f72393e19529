package inbox

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkDeliver measures a synced, deduplicated delivery of a 64-byte
// index, one receiving user per goroutine.
func BenchmarkDeliver(b *testing.B) {
	ctx := context.Background()
	ib, _ := open(b, b.TempDir(), Options{})
	msg := make([]byte, 64)
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		user := next.Add(1)
		for i := 0; pb.Next(); i++ {
			if _, _, err := ib.Deliver(ctx, user, msg, strconv.Itoa(i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkSync measures a sync returning 100 of 1000 waiting messages
// (64-byte indexes): key decode, three range scans, ACK update, key encode.
// The device keeps sending the same key, as a device whose responses are
// lost would, so the inbox does not run dry.
func BenchmarkSync(b *testing.B) {
	ctx := context.Background()
	ib, _ := open(b, b.TempDir(), Options{})
	const user = 1
	for i := range 1000 {
		if _, _, err := ib.Deliver(ctx, user, make([]byte, 64), fmt.Sprint(i)); err != nil {
			b.Fatal(err)
		}
	}
	key := ib.Codec().Encode(user, "phone", SyncKey{}.With(Messages, 500))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := ib.Sync(ctx, user, "phone", key, 100)
		if err != nil || len(res.Entries) != 100 {
			b.Fatal(len(res.Entries), err)
		}
	}
}

// BenchmarkDecodeSyncKey measures checking and decoding a three-type key.
func BenchmarkDecodeSyncKey(b *testing.B) {
	c := NewSyncKeyCodec([]byte("secret"))
	key := c.Encode(42, "phone", SyncKey{}.With(Account, 3).With(Contacts, 300).With(Messages, 70000))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decode(42, "phone", key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTrimNothingDue measures what the trim worker does after most
// Syncs: a user whose 1000 acknowledged messages are all still inside the
// retention window, so nothing may be deleted.
func BenchmarkTrimNothingDue(b *testing.B) {
	ctx := context.Background()
	ib, _ := open(b, b.TempDir(), Options{})
	const user = 1
	for i := range 1000 {
		if _, _, err := ib.Deliver(ctx, user, make([]byte, 64), fmt.Sprint(i)); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := ib.Sync(ctx, user, "phone", ib.Codec().Encode(user, "phone", SyncKey{}.With(Messages, 1000)), 1); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if n, err := ib.Trim(ctx, user); n != 0 || err != nil {
			b.Fatal(n, err)
		}
	}
}
