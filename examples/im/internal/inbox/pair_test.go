package inbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im/internal/kv"
	"github.com/svrkit/svrkit/examples/im/internal/seq"
)

// PutPair gives each copy what its own Put, in order, would give it, in
// every state a first attempt can leave, and writes a new pair at one
// time.
func TestPutPair(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.UnixMilli(1_700_000_000_000)}
	ib, _ := open(t, t.TempDir(), Options{Now: clk.Now})
	const to, from = 7, 9
	if _, _, err := ib.Deliver(ctx, from, []byte("old"), "old"); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name        string
		before      func(id string) // what a first attempt stored
		theirsFresh bool
		ownFresh    bool
		ownWritten  bool
	}{
		{"nothing stored", func(string) {}, true, true, true},
		{"receiver's copy stored", func(id string) { ib.Put(ctx, to, Messages, []byte(id), id) }, false, false, false},
		{"both stored", func(id string) {
			ib.Put(ctx, to, Messages, []byte(id), id)
			ib.Put(ctx, from, Messages, []byte(id), id+":self")
		}, false, false, true},
		{"sender's copy stored", func(id string) { ib.Put(ctx, from, Messages, []byte(id), id+":self") }, true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.name
			tc.before(id)
			stored := clk.Now()
			clk.Advance(time.Second)
			theirs, own, err := ib.PutPair(ctx, to, from, Messages, []byte(id), id, id+":self")
			if err != nil {
				t.Fatal(err)
			}
			if theirs.Duplicate == tc.theirsFresh || (own != nil) != tc.ownWritten || own != nil && own.Duplicate == tc.ownFresh {
				t.Fatalf("receipts %+v, %+v", theirs, own)
			}
			if tc.theirsFresh != theirs.At.Equal(clk.Now()) || !tc.theirsFresh && !theirs.At.Equal(stored) {
				t.Fatalf("receiver's copy at %v (stored %v, now %v)", theirs.At, stored, clk.Now())
			}
			if tc.theirsFresh && tc.ownFresh && !own.At.Equal(theirs.At) {
				t.Fatalf("a new pair stored at %v and %v", theirs.At, own.At)
			}
			again, ownAgain, err := ib.PutPair(ctx, to, from, Messages, []byte(id), id, id+":self")
			if err != nil {
				t.Fatal(err)
			}
			if !again.Duplicate || again.Version != theirs.Version || !again.At.Equal(theirs.At) || (ownAgain != nil) != tc.ownWritten ||
				own != nil && (!ownAgain.Duplicate || ownAgain.Version != own.Version) {
				t.Fatalf("retry %+v, %+v; first %+v, %+v", again, ownAgain, theirs, own)
			}
		})
	}
	for user, want := range map[uint64]int{to: 4, from: 4} { // every receiver's copy; old and three of the sender's
		d := newDevice("phone", user)
		d.drain(t, ib, 100)
		if len(d.got) != want {
			t.Errorf("user %d holds %v, want %d entries", user, payloads(d.got), want)
		}
	}

	for name, call := range map[string]func() error{
		"to oneself":      func() error { _, _, err := ib.PutPair(ctx, to, to, Messages, nil, "a", "a:self"); return err },
		"no dedup id":     func() error { _, _, err := ib.PutPair(ctx, to, from, Messages, nil, "", "a:self"); return err },
		"no sender dedup": func() error { _, _, err := ib.PutPair(ctx, to, from, Messages, nil, "a", ""); return err },
		"oversize payload": func() error {
			_, _, err := ib.PutPair(ctx, to, from, Messages, make([]byte, MaxPayloadLen+1), "a", "a:self")
			return err
		},
		"unknown data type": func() error { _, _, err := ib.PutPair(ctx, to, from, 99, nil, "a", "a:self"); return err },
	} {
		if err := call(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// Two owners of the same users (a routing mistake: each Inbox has its own
// locks) racing the same pair: every copy is stored once, whichever wins,
// and a PutPair that reports the sender's copy written reports it truly.
func TestPutPairSecondOwner(t *testing.T) {
	ctx := context.Background()
	a, db := open(t, t.TempDir(), Options{})
	b := New(db, seq.New(db, seq.Options{Step: 16}), Options{SyncKeySecret: []byte("test secret")})
	const to, from = 3, 4
	const pairs = 50
	var wg sync.WaitGroup
	errs := make(chan error, 2*pairs)
	for i := range pairs {
		id := fmt.Sprint("m", i)
		for _, ib := range []*Inbox{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, own, err := ib.PutPair(ctx, to, from, Messages, []byte(id), id, id+":self"); err != nil {
					errs <- err
				} else if own == nil {
					// The caller's part: the sender's copy with Put.
					if _, err := ib.Put(ctx, from, Messages, []byte(id), id+":self"); err != nil {
						errs <- err
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	// A second owner may lose a race kv's conditions decide (its versions
	// below the row's max, from its own allocator): an error its client
	// retries, never a second copy.
	lost := 0
	for err := range errs {
		var ce *kv.ConflictError
		if !errors.As(err, &ce) {
			t.Fatal(err)
		}
		lost++
	}
	t.Logf("%d of %d writes lost a race", lost, 2*pairs)
	for _, user := range []uint64{to, from} {
		d := newDevice("phone", user)
		d.drain(t, a, 1000)
		seen := map[string]int{}
		for _, e := range d.got {
			seen[string(e.Payload)]++
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("user %d holds %s %d times", user, id, n)
			}
		}
	}
}
