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
