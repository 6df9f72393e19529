package kv_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/svrkit/svrkit/examples/im/internal/kv"
)

func Example() {
	dir, _ := os.MkdirTemp("", "kv-example")
	defer os.RemoveAll(dir)
	db, err := kv.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()

	// KV with compare-and-set: create, then update from the version read.
	v1, _ := db.Put(ctx, []byte("profile/42"), []byte("alice"), 0)
	_, err = db.Put(ctx, []byte("profile/42"), []byte("mallory"), 0)
	fmt.Println(errors.Is(err, kv.ErrConflict))
	_, _ = db.Put(ctx, []byte("profile/42"), []byte("alice2"), v1)
	val, _, _ := db.Get(ctx, []byte("profile/42"))
	fmt.Println(string(val))

	// Key-Table: a row of versioned entries, read by range scan.
	var b kv.Batch
	b.Append([]byte("inbox/42"), []byte("hello"))
	b.Append([]byte("inbox/42"), []byte("world"))
	b.Put([]byte("counter/42"), []byte("2"), kv.AnyVersion) // same atomic batch
	if _, err := db.Apply(ctx, &b); err != nil {
		log.Fatal(err)
	}
	res, _ := db.Scan(ctx, []byte("inbox/42"), 1, 10)
	for _, e := range res.Entries {
		fmt.Println(e.Version, string(e.Value))
	}
	fmt.Println(res.Meta.MaxVersion, res.More)
	// Output:
	// true
	// alice2
	// 2 world
	// 2 false
}
