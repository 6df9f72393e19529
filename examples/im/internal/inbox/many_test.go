package inbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// PutMany gives each user what its own Put would: a version above the
// user's previous ones, the entry once, the first delivery's receipt on a
// redelivery of the whole batch or of some of its users.
func TestPutMany(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.UnixMilli(1_700_000_000_000)}
	ib, _ := open(t, t.TempDir(), Options{Now: clk.Now})
	users := []uint64{30, 10, 20, 40}

	// User 20 has two messages already; user 40 has this batch's entry,
	// delivered alone earlier (a partial duplicate).
	for i := range 2 {
		if _, _, err := ib.Deliver(ctx, 20, []byte("old"), fmt.Sprint("old/", i)); err != nil {
			t.Fatal(err)
		}
	}
	first, err := ib.Put(ctx, 40, Messages, []byte("g1"), "g:1:1")
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)

	rs, err := ib.PutMany(ctx, users, Messages, []byte("g1"), "g:1:1")
	if err != nil {
		t.Fatal(err)
	}
	want := []Receipt{
		{Version: 1, At: clk.Now()},
		{Version: 1, At: clk.Now()},
		{Version: 3, At: clk.Now()},
		{Version: first.Version, At: first.At, Duplicate: true},
	}
	if !slices.EqualFunc(rs, want, sameReceipt) {
		t.Fatalf("receipts %+v\nwant %+v", rs, want)
	}

	// The whole batch again (a fan-out redelivered): every user a
	// duplicate with its first receipt, nothing written.
	clk.Advance(time.Second)
	again, err := ib.PutMany(ctx, users, Messages, []byte("g1 (retry)"), "g:1:1")
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		want[i].Duplicate = true
	}
	if !slices.EqualFunc(again, want, sameReceipt) {
		t.Fatalf("redelivery %+v\nwant %+v", again, want)
	}
	for i, u := range users {
		d := newDevice("phone", u)
		d.drain(t, ib, 100)
		var n int
		for _, e := range d.got {
			if string(e.Payload) == "g1" {
				n++
				if e.Version != want[i].Version || !e.DeliveredAt.Equal(want[i].At) {
					t.Errorf("user %d: entry %+v, want version %d at %v", u, e, want[i].Version, want[i].At)
				}
			}
		}
		if n != 1 {
			t.Errorf("user %d holds the batch's entry %d times: %v", u, n, payloads(d.got))
		}
	}
}

func sameReceipt(a, b Receipt) bool {
	return a.Version == b.Version && a.Duplicate == b.Duplicate && a.At.Equal(b.At)
}

// A user's entries from successive batches get increasing versions and
// sync in batch order, each user on its own count.
func TestPutManyVersionsInOrder(t *testing.T) {
	ctx := context.Background()
	ib, _ := open(t, t.TempDir(), Options{})
	const batches = 40 // across seq's sections (Step 16 in tests)
	all := []uint64{1, 2, 3, 4, 5}
	last := map[uint64]uint64{}
	for b := range batches {
		users := all[:1+b%len(all)] // user 1 in every batch, user 5 in one of five
		rs, err := ib.PutMany(ctx, users, Messages, fmt.Appendf(nil, "b%d", b), fmt.Sprint("g:7:", b))
		if err != nil {
			t.Fatal(err)
		}
		for i, u := range users {
			if rs[i].Duplicate || rs[i].Version <= last[u] {
				t.Fatalf("batch %d user %d: %+v after version %d", b, u, rs[i], last[u])
			}
			last[u] = rs[i].Version
		}
	}
	for _, u := range all {
		d := newDevice("phone", u)
		d.drain(t, ib, 7)
		var want []string
		for b := range batches {
			if int(u) <= 1+b%len(all) {
				want = append(want, fmt.Sprint("b", b))
			}
		}
		if got := payloads(d.got); !slices.Equal(got, want) {
			t.Errorf("user %d synced %v, want %v", u, got, want)
		}
	}
}

// Bad batches are refused whole, with ErrInvalid, before anything is
// written.
func TestPutManyLimits(t *testing.T) {
	ctx := context.Background()
	ib, _ := open(t, t.TempDir(), Options{})
	many := func(n int) []uint64 {
		out := make([]uint64, n)
		for i := range out {
			out[i] = uint64(i + 1)
		}
		return out
	}
	big := make([]byte, MaxPayloadLen)
	for _, c := range []struct {
		name    string
		users   []uint64
		payload []byte
		dedup   string
		why     string
	}{
		{"no users", nil, []byte("x"), "d", "outside [1, 500]"},
		{"one user too many", many(MaxManyUsers + 1), []byte("x"), "d", "501 users"},
		{"over the byte limit", many(MaxManyBytes/len(big) + 1), big, "d", "over the limit"},
		{"a user twice", []uint64{1, 2, 1}, []byte("x"), "d", "user 1 named twice"},
		{"no dedup id", []uint64{1}, []byte("x"), "", "needs a dedup id"},
		{"payload too large", []uint64{1}, make([]byte, MaxPayloadLen+1), "d", "payload"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ib.PutMany(ctx, c.users, Messages, c.payload, c.dedup)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.why) {
				t.Fatalf("err = %v; want ErrInvalid saying %q", err, c.why)
			}
		})
	}
	// The largest batches pass.
	if _, err := ib.PutMany(ctx, many(MaxManyUsers), Messages, []byte("x"), "max users"); err != nil {
		t.Fatal(err)
	}
	if _, err := ib.PutMany(ctx, many(MaxManyBytes/len(big)), Messages, big, "max bytes"); err != nil {
		t.Fatal(err)
	}
	// Nothing of the refused ones was written: user 1 has the two that
	// passed.
	d := newDevice("phone", 1)
	d.drain(t, ib, 10)
	if len(d.got) != 2 {
		t.Fatalf("user 1 holds %d entries, want 2", len(d.got))
	}
}

// Put and PutMany racing on the same users keep each user's versions
// unique and increasing for every writer, and each entry once.
func TestPutManyConcurrentWithPut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ib, _ := open(t, t.TempDir(), Options{})
	// Users whose lock stripes interleave, so batches overlap in
	// different orders.
	users := []uint64{5, 1 << 40, 77, 3, 1<<63 | 9, 12, 4096, 8}
	const singles, batchers, rounds = 4, 3, 30

	var mu sync.Mutex
	seen := map[uint64]map[uint64]string{} // user → version → dedup id
	record := func(u, v uint64, id string) {
		mu.Lock()
		defer mu.Unlock()
		if seen[u] == nil {
			seen[u] = map[uint64]string{}
		}
		if prev, ok := seen[u][v]; ok && prev != id {
			t.Errorf("user %d version %d given to %s and %s", u, v, prev, id)
		}
		seen[u][v] = id
	}
	var wg sync.WaitGroup
	for s := range singles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := map[uint64]uint64{}
			for r := range rounds {
				u := users[(s+r)%len(users)]
				id := fmt.Sprintf("one/%d/%d", s, r)
				rc, err := ib.Put(ctx, u, Messages, []byte(id), id)
				if err != nil {
					t.Error(err)
					return
				}
				if rc.Version <= last[u] {
					t.Errorf("%s: version %d after %d", id, rc.Version, last[u])
				}
				last[u] = rc.Version
				record(u, rc.Version, id)
			}
		}()
	}
	for b := range batchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := map[uint64]uint64{}
			for r := range rounds {
				// A rotating subset, in a rotating order.
				var us []uint64
				for i := range 5 {
					us = append(us, users[(b+r+i*3)%len(users)])
				}
				us = slices.Compact(us)
				id := fmt.Sprintf("many/%d/%d", b, r)
				rs, err := ib.PutMany(ctx, us, Messages, []byte(id), id)
				if err != nil {
					t.Error(err)
					return
				}
				for i, u := range us {
					if rs[i].Duplicate || rs[i].Version <= last[u] {
						t.Errorf("%s user %d: %+v after version %d", id, u, rs[i], last[u])
					}
					last[u] = rs[i].Version
					record(u, rs[i].Version, id)
				}
			}
		}()
	}
	wg.Wait()
	for _, u := range users {
		d := newDevice("phone", u)
		d.drain(t, ib, 9)
		if len(d.got) != len(seen[u]) {
			t.Errorf("user %d: synced %d entries, %d written", u, len(d.got), len(seen[u]))
		}
		for _, e := range d.got {
			if id := seen[u][e.Version]; id != string(e.Payload) {
				t.Errorf("user %d version %d holds %q, written as %q", u, e.Version, e.Payload, id)
			}
		}
	}
}
