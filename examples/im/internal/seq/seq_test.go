package seq

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im/internal/crashtest"
	"github.com/svrkit/svrkit/examples/im/internal/kv"
)

func openKV(t testing.TB, dir string) *kv.DB {
	t.Helper()
	db, err := kv.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func storedBound(t *testing.T, db *kv.DB, typ uint8, seg uint64) uint64 {
	t.Helper()
	key := binary.BigEndian.AppendUint64(append([]byte("seq/"), typ), seg)
	val, _, err := db.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return binary.BigEndian.Uint64(val)
}

func TestSequentialAndBounds(t *testing.T) {
	ctx := context.Background()
	db := openKV(t, t.TempDir())
	a := New(db, Options{Step: 10, SegmentUsers: 100})
	for i := uint64(1); i <= 25; i++ {
		n, err := a.Next(ctx, 7, 1)
		if err != nil || n != i {
			t.Fatalf("next %d = %d, %v", i, n, err)
		}
	}
	// Only the section's bound is persisted: 25 numbers took 3 raises, and
	// the bound is at most one Step ahead.
	if b := storedBound(t, db, 1, 0); b != 30 {
		t.Fatalf("bound %d, want 30", b)
	}
	// Another user of the segment shares the bound and starts from the
	// floor, not from the busiest user's position.
	if n, _ := a.Next(ctx, 8, 1); n != 1 {
		t.Fatalf("user 8 starts at %d", n)
	}
	// Types and segments are independent.
	if n, _ := a.Next(ctx, 7, 2); n != 1 {
		t.Fatalf("type 2 starts at %d", n)
	}
	if n, _ := a.Next(ctx, 107, 1); n != 1 {
		t.Fatalf("user 107 (segment 1) starts at %d", n)
	}
	if b := storedBound(t, db, 1, 1); b != 10 {
		t.Fatalf("segment 1 bound %d", b)
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.Next(ctx2, 7, 1); err == nil {
		t.Fatal("next with a canceled context succeeded")
	}
}

// Many goroutines allocate for a few users, one at a time (Next) or
// several at once (NextMany): per user every number is distinct, and each
// goroutine sees its numbers strictly increase.
func TestConcurrentMonotonic(t *testing.T) {
	ctx := context.Background()
	db := openKV(t, t.TempDir())
	a := New(db, Options{Step: 50, SegmentUsers: 2})
	const workers, per = 8, 300
	users := []uint64{1, 2, 3, 4}
	var mu sync.Mutex
	got := map[uint64][]uint64{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := map[uint64]uint64{}
			mine := map[uint64][]uint64{}
			for i := range per {
				// Odd workers take a number for three users at once.
				us := []uint64{users[(w+i)%len(users)]}
				if w%2 == 1 {
					us = append(us, users[(w+i+1)%len(users)], users[(w+i+3)%len(users)])
				}
				var ns []uint64
				var err error
				if len(us) == 1 {
					var n uint64
					n, err = a.Next(ctx, us[0], 3)
					ns = []uint64{n}
				} else {
					ns, err = a.NextMany(ctx, us, 3)
				}
				if err != nil {
					t.Error(err)
					return
				}
				for j, u := range us {
					if ns[j] <= last[u] {
						t.Errorf("user %d: %d after %d", u, ns[j], last[u])
					}
					last[u] = ns[j]
					mine[u] = append(mine[u], ns[j])
				}
			}
			mu.Lock()
			for u, ns := range mine {
				got[u] = append(got[u], ns...)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	for u, ns := range got {
		slices.Sort(ns)
		if len(slices.Compact(slices.Clone(ns))) != len(ns) {
			t.Fatalf("user %d got a number twice", u)
		}
		// One process, no restart: numbers are dense.
		if ns[len(ns)-1] != uint64(len(ns)) {
			t.Fatalf("user %d: %d numbers, highest %d", u, len(ns), ns[len(ns)-1])
		}
	}
}

// Close and reopen: every user restarts above everything handed out,
// including users of the segment that never allocated in the first run.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := Options{Step: 100, SegmentUsers: 10}
	highest := map[uint64]uint64{}
	for run := range 3 {
		db, err := kv.Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		a := New(db, opts)
		// The previous run's highest number per segment: a restart skips
		// at most one Step past it.
		segMax := map[uint64]uint64{}
		for u, n := range highest {
			segMax[u/opts.SegmentUsers] = max(segMax[u/opts.SegmentUsers], n)
		}
		for u := uint64(0); u < 20; u++ {
			for i := range (int(u) + run) * 17 % 250 {
				n, err := a.Next(ctx, u, 1)
				if err != nil {
					t.Fatal(err)
				}
				if n <= highest[u] {
					t.Fatalf("run %d user %d: %d not above %d", run, u, n, highest[u])
				}
				if i == 0 && run > 0 && n > segMax[u/opts.SegmentUsers]+opts.Step {
					t.Fatalf("run %d user %d: restarted at %d, more than a Step past %d", run, u, n, segMax[u/opts.SegmentUsers])
				}
				highest[u] = n
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Two allocators on one store (a routing mistake) never hand out a number
// twice: the bound's compare-and-set keeps their windows apart.
func TestTwoAllocatorsNeverDuplicate(t *testing.T) {
	ctx := context.Background()
	db := openKV(t, t.TempDir())
	as := []*Allocator{New(db, Options{Step: 5}), New(db, Options{Step: 5})}
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, a := range as {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				n, err := a.Next(ctx, 1, 1)
				if err != nil {
					// Losing the compare-and-set repeatedly is allowed; a
					// duplicate is not.
					continue
				}
				mu.Lock()
				if seen[n] {
					t.Errorf("number %d handed out twice", n)
				}
				seen[n] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) < 200 {
		t.Fatalf("only %d of 400 allocations succeeded", len(seen))
	}
}

// TestCrashChild is the child of TestCrash: it allocates forever for a few
// users and reports every number after Next returned it.
func TestCrashChild(t *testing.T) {
	dir, ok := crashtest.ChildDir()
	if !ok {
		t.Skip("runs only as the child process of TestCrash")
	}
	db, err := kv.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := New(db, Options{Step: 37, SegmentUsers: 1000})
	users := []uint64{1, 2, 5000}
	for i := 0; ; i++ {
		u := users[i%len(users)]
		n, err := a.Next(context.Background(), u, 3)
		if err != nil {
			t.Fatal(err)
		}
		crashtest.Report("%d %d", u, n)
	}
}

// TestCrash SIGKILLs an allocating process and checks that, after reopening,
// each user's next number is above every number the child reported.
func TestCrash(t *testing.T) {
	dir := t.TempDir()
	reported := map[uint64]uint64{}
	count := 0
	crashtest.Run(t, "TestCrashChild", dir, 60*time.Second, func(line string) bool {
		var u, n uint64
		if _, err := fmt.Sscanf(line, "%d %d", &u, &n); err != nil {
			t.Fatalf("bad report %q", line)
		}
		if n <= reported[u] {
			t.Fatalf("child: user %d got %d after %d", u, n, reported[u])
		}
		reported[u] = n
		count++
		return count == 1000
	})
	db := openKV(t, dir)
	a := New(db, Options{Step: 37, SegmentUsers: 1000})
	for u, last := range reported {
		n, err := a.Next(context.Background(), u, 3)
		if err != nil {
			t.Fatal(err)
		}
		if n <= last {
			t.Fatalf("user %d: %d after the crash, but the child had handed out %d", u, n, last)
		}
	}
}

// NextMany hands each user the number Next would, raising every segment
// that needs it in one batch.
func TestNextMany(t *testing.T) {
	ctx := context.Background()
	db := &countingStore{DB: openKV(t, t.TempDir())}
	a := New(db, Options{Step: 10, SegmentUsers: 100})
	// User 7 is 12 numbers in; 8 shares its segment; 107 and 250 are
	// alone in theirs.
	for range 12 {
		if _, err := a.Next(ctx, 7, 1); err != nil {
			t.Fatal(err)
		}
	}
	before := db.applies.Load()
	got, err := a.NextMany(ctx, []uint64{250, 7, 107, 8}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{1, 13, 1, 1}; !slices.Equal(got, want) {
		t.Fatalf("NextMany = %v, want %v", got, want)
	}
	// Segments 1 and 2 were raised (segment 0's bound, 20, covered 13), in
	// one commit.
	if b := storedBound(t, db.DB, 1, 1); b != 10 {
		t.Fatalf("segment 1 bound %d", b)
	}
	if b := storedBound(t, db.DB, 1, 2); b != 10 {
		t.Fatalf("segment 2 bound %d", b)
	}
	if n := db.applies.Load() - before; n != 1 {
		t.Fatalf("%d commits for the raises, want 1", n)
	}
	// Next and NextMany go on from each other's numbers, across raises.
	for i := uint64(2); i <= 25; i++ {
		var n uint64
		if i%2 == 0 {
			ns, err := a.NextMany(ctx, []uint64{107, 250}, 1)
			if err != nil || ns[0] != ns[1] {
				t.Fatalf("NextMany = %v, %v", ns, err)
			}
			n = ns[0]
		} else {
			n, _ = a.Next(ctx, 107, 1)
			if m, _ := a.Next(ctx, 250, 1); m != n {
				t.Fatalf("users 107 and 250 at %d and %d", n, m)
			}
		}
		if n != i {
			t.Fatalf("step %d: got %d", i, n)
		}
	}
	if _, err := a.NextMany(ctx, []uint64{5, 5}, 1); err == nil {
		t.Fatal("NextMany with a user twice succeeded")
	}
	// After a restart everyone starts above the persisted bounds.
	b := New(db, Options{Step: 10, SegmentUsers: 100})
	ns, err := b.NextMany(ctx, []uint64{7, 107}, 1)
	if err != nil || ns[0] != 21 || ns[1] != 31 {
		t.Fatalf("after a restart NextMany = %v, %v; want [21 31]", ns, err)
	}
}

// countingStore counts commits.
type countingStore struct {
	*kv.DB
	applies atomic.Int64
}

func (s *countingStore) Apply(ctx context.Context, b *kv.Batch) ([]uint64, error) {
	s.applies.Add(1)
	return s.DB.Apply(ctx, b)
}
