package inbox_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/svrkit/svrkit/examples/im/internal/inbox"
	"github.com/svrkit/svrkit/examples/im/internal/kv"
	"github.com/svrkit/svrkit/examples/im/internal/seq"
)

func Example() {
	dir, _ := os.MkdirTemp("", "inbox-example")
	defer os.RemoveAll(dir)
	db, err := kv.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ib := inbox.New(db, seq.New(db, seq.Options{}), inbox.Options{SyncKeySecret: []byte("server secret")})
	ctx := context.Background()

	// The message service delivers into bob's inbox; a retry is a no-op.
	const bob = 1002
	ib.Deliver(ctx, bob, []byte("alice: hi"), "alice/1")
	ib.Deliver(ctx, bob, []byte("alice: hi"), "alice/1")
	ib.Deliver(ctx, bob, []byte("carol: yo"), "carol/1")

	// Bob's phone syncs from nothing, one entry per page.
	var key []byte
	for {
		res, err := ib.Sync(ctx, bob, "phone", key, 1)
		if err != nil {
			log.Fatal(err)
		}
		for _, e := range res.Entries {
			fmt.Println(e.Type, e.Version, string(e.Payload))
		}
		key = res.Key // stored with the entries; sent next time as the ACK
		if !res.More {
			break
		}
	}
	// Output:
	// messages 1 alice: hi
	// messages 2 carol: yo
}
