package storagetest

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/inbox"
	"github.com/svrkit/svrkit/examples/im/internal/kv"
	"github.com/svrkit/svrkit/examples/im/internal/seq"
)

// BenchmarkDeliver compares one synced, deduplicated delivery of a short
// text message, one receiving user per goroutine, done three ways:
//
//	inbox        inbox.Deliver in process (the floor: an fsync'd batch)
//	storage      Storage.Deliver over svrkit RPC (+ one hop, marshalling)
//	messagedata  MessageData.Deliver -> Storage.Deliver (the real path: + two hops)
func BenchmarkDeliver(b *testing.B) {
	item := textItem(1, 2, "c", "hello there, this is a short message")
	payload, err := proto.Marshal(item)
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, deliver func(ctx context.Context, user uint64, id string) error) {
		ctx := context.Background()
		var next atomic.Uint64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			user := next.Add(1)
			for i := 0; pb.Next(); i++ {
				if err := deliver(ctx, user, strconv.Itoa(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("inbox", func(b *testing.B) {
		db, err := kv.Open(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		ib := inbox.New(db, seq.New(db, seq.Options{}), inbox.Options{})
		run(b, func(ctx context.Context, user uint64, id string) error {
			_, _, err := ib.Deliver(ctx, user, payload, id)
			return err
		})
	})
	b.Run("storage", func(b *testing.B) {
		st := Start(b, b.TempDir(), nil).Storage(b)
		run(b, func(ctx context.Context, user uint64, id string) error {
			_, err := st.Deliver(ctx, &im.InboxDeliverRequest{UserId: user, Payload: payload, DedupId: id})
			return err
		})
	})
	b.Run("messagedata", func(b *testing.B) {
		md := Start(b, b.TempDir(), nil).MessageData(b)
		run(b, func(ctx context.Context, user uint64, id string) error {
			_, err := md.Deliver(ctx, &im.DeliverRequest{UserId: user, Item: item, DedupId: id})
			return err
		})
	})
}

// BenchmarkSync compares one sync returning 100 of 1000 waiting messages,
// the device sending the same key each time (as one whose answers are lost
// would, so the inbox does not run dry), done three ways:
//
//	inbox        inbox.Sync in process (the floor: key, three scans, ACK)
//	storage      Storage.Sync over svrkit RPC (+ one hop, 100 entries marshalled)
//	messagedata  MessageData.SyncInbox -> Storage.Sync (+ two hops, items decoded)
func BenchmarkSync(b *testing.B) {
	const user, waiting, limit = 1, 1000, 100
	item := textItem(1, user, "c", "hello there, this is a short message")
	// run syncs with key, the device's key after the first half of the
	// inbox, and checks a full page came back.
	run := func(b *testing.B, key []byte, sync func(ctx context.Context, key []byte) (int, error)) {
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if n, err := sync(ctx, key); n != limit || err != nil {
				b.Fatal(n, err)
			}
		}
	}
	b.Run("inbox", func(b *testing.B) {
		db, err := kv.Open(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		ib := inbox.New(db, seq.New(db, seq.Options{}), inbox.Options{})
		payload, err := proto.Marshal(item)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		for i := range waiting {
			if _, _, err := ib.Deliver(ctx, user, payload, strconv.Itoa(i)); err != nil {
				b.Fatal(err)
			}
		}
		half, err := ib.Sync(ctx, user, "phone", nil, waiting/2)
		if err != nil {
			b.Fatal(err)
		}
		run(b, half.Key, func(ctx context.Context, key []byte) (int, error) {
			res, err := ib.Sync(ctx, user, "phone", key, limit)
			return len(res.Entries), err
		})
	})
	// The RPC paths share one store, filled through messagedata.
	c := Start(b, b.TempDir(), nil)
	st, md := c.Storage(b), c.MessageData(b)
	ctx := context.Background()
	for i := range waiting {
		if _, err := md.Deliver(ctx, &im.DeliverRequest{UserId: user, Item: item, DedupId: strconv.Itoa(i)}); err != nil {
			b.Fatal(err)
		}
	}
	half, err := st.Sync(ctx, &im.InboxSyncRequest{UserId: user, DeviceId: "phone", Limit: waiting / 2})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("storage", func(b *testing.B) {
		run(b, half.GetSyncKey(), func(ctx context.Context, key []byte) (int, error) {
			r, err := st.Sync(ctx, &im.InboxSyncRequest{UserId: user, DeviceId: "phone", SyncKey: key, Limit: limit})
			return len(r.GetEntries()), err
		})
	})
	b.Run("messagedata", func(b *testing.B) {
		run(b, half.GetSyncKey(), func(ctx context.Context, key []byte) (int, error) {
			r, err := md.SyncInbox(ctx, &im.SyncInboxRequest{UserId: user, DeviceId: "phone", SyncKey: key, Limit: limit})
			return len(r.GetItems()), err
		})
	})
}
