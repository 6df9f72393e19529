package imclient_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/imclient"
	"github.com/svrkit/svrkit/svrkit"
)

// Two users on a backend started with `go run ./tools/svrkit up examples/im`:
// alice registers, logs in and sends bob a message; bob syncs it.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	alice, err := imclient.FromStateFile("examples/im/.data/up.json")
	if err != nil {
		log.Fatal(err)
	}
	bob, _ := imclient.FromStateFile("examples/im/.data/up.json")

	alice.Register(ctx, "alice", "correct horse", "Alice")
	bobID, err := bob.Register(ctx, "bob", "battery staple", "")
	var e *svrkit.Error
	if errors.As(err, &e) && e.Code() == svrkit.AlreadyExists {
		// Registered on an earlier run: fine, log in below.
	} else if err != nil {
		log.Fatal(err)
	}
	if _, err := alice.Login(ctx, "alice", "correct horse", "laptop"); err != nil {
		log.Fatal(err)
	}
	s, err := bob.Login(ctx, "bob", "battery staple", "phone")
	if err != nil {
		log.Fatal(err)
	}
	bobID = s.UserID

	// Retried with the same client_msg_id until answered: nil means stored
	// exactly once.
	if _, err := alice.SendText(ctx, bobID, "", "hello bob"); err != nil {
		log.Fatal(err)
	}

	items, _, err := bob.SyncAll(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, it := range items {
		if m := it.GetMessage(); it.GetType() == im.SyncType_SYNC_TYPE_MESSAGES && m.GetToUserId() == bobID {
			fmt.Printf("from %d: %s\n", m.GetFromUserId(), m.GetText())
		}
	}
	// bob.SyncKey() is what a real client stores with the items.
}

// Errors carry the server's code.
func ExampleClient_Login_wrongPassword() {
	c := imclient.New(imclient.Addrs{Account: "127.0.0.1:8080"})
	_, err := c.Login(context.Background(), "alice", "wrong password", "")
	switch svrkit.CodeOf(err) {
	case svrkit.Unauthenticated:
		fmt.Println("wrong name or password")
	case svrkit.Unavailable:
		fmt.Println("backend not running")
	}
}

// A group of three: alice creates it with bob and carol, sends to it, and
// carol, whose client is from before groups (version 1), gets the message
// as one-to-one text from the group's id and answers it with SendText.
func ExampleClient_CreateGroup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice, err := imclient.FromStateFile("examples/im/.data/up.json")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := alice.Login(ctx, "alice", "correct horse", "laptop"); err != nil {
		log.Fatal(err)
	}
	carol, _ := imclient.FromStateFile("examples/im/.data/up.json", imclient.WithClientVersion(1))
	s, err := carol.Login(ctx, "carol", "tr0ub4dor&3", "old-phone")
	if err != nil {
		log.Fatal(err)
	}
	const bobID = 4242424242 // a user id alice learned from bob
	r, err := alice.CreateGroup(ctx, "lunch", []uint64{bobID, s.UserID}, "")
	if err != nil {
		log.Fatal(err) // not_found: no such user; failed_precondition: over 500 members
	}
	group := r.GetGroup().GetGroupId()
	// Stored once when answered; every member's inbox gets it just after.
	if _, err := alice.SendGroupText(ctx, group, "", "noon?"); err != nil {
		log.Fatal(err)
	}

	items, _, err := carol.SyncAll(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, it := range items {
		if m := it.GetMessage(); m.GetFromUserId() == group {
			fmt.Println(m.GetText())               // [lunch] alice: noon?
			carol.SendText(ctx, group, "", "sure") // reaches the group
		}
	}
}
