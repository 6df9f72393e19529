package kv

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Two writers CAS the same key from the same version at the same moment:
// exactly one wins, the other gets ErrConflict.
func TestConcurrentCASOneWins(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, "")
	k := []byte("contended")
	ver, err := db.Put(ctx, k, []byte("0"), 0)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 50 {
		var wins, conflicts atomic.Int32
		var newVer atomic.Uint64
		start := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				v, err := db.Put(ctx, k, fmt.Appendf(nil, "%d/%d", round, w), ver)
				switch {
				case err == nil:
					wins.Add(1)
					newVer.Store(v)
				case errors.Is(err, ErrConflict):
					conflicts.Add(1)
				default:
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != 1 {
			t.Fatalf("round %d: %d wins, %d conflicts", round, wins.Load(), conflicts.Load())
		}
		ver = newVer.Load()
	}
}

// Many goroutines increment counters with read-CAS-retry loops; no
// increment is lost and each key's versions only grow.
func TestConcurrentCounters(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, "")
	const workers, incs, keys = 8, 40, 3
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range incs {
				k := fmt.Appendf(nil, "counter/%d", (w+i)%keys)
				for attempt := 0; ; attempt++ {
					if attempt > 10000 {
						t.Error("livelock")
						return
					}
					val, ver, err := db.Get(ctx, k)
					n := uint64(0)
					switch {
					case errors.Is(err, ErrNotFound):
					case err != nil:
						t.Error(err)
						return
					default:
						n = binary.BigEndian.Uint64(val)
					}
					nv, err := db.Put(ctx, k, binary.BigEndian.AppendUint64(nil, n+1), ver)
					if errors.Is(err, ErrConflict) {
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					if nv <= ver {
						t.Errorf("version went from %d to %d", ver, nv)
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	total := uint64(0)
	for i := range keys {
		val, _, err := db.Get(ctx, fmt.Appendf(nil, "counter/%d", i))
		if err != nil {
			t.Fatal(err)
		}
		total += binary.BigEndian.Uint64(val)
	}
	if total != workers*incs {
		t.Fatalf("counters sum to %d, want %d", total, workers*incs)
	}
}

// Batches over overlapping key sets, in different orders, neither deadlock
// nor break atomicity: a pair of keys always written together in one batch
// always reads the same value.
func TestConcurrentBatchesOverlapping(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db := openTest(t, "")
	const workers, rounds = 6, 30
	keys := [][]byte{[]byte("x"), []byte("y"), []byte("z"), []byte("w")}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for r := range rounds {
				perm := rng.Perm(len(keys))
				var b Batch
				val := fmt.Appendf(nil, "%d/%d", w, r)
				for _, i := range perm {
					b.Put(keys[i], val, AnyVersion)
				}
				b.Append([]byte("log"), val)
				if _, err := db.Apply(ctx, &b); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("batches did not finish: deadlock?")
	}
	var first []byte
	for i, k := range keys {
		v, _, err := db.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = v
		} else if string(v) != string(first) {
			t.Fatalf("%s = %q but %s = %q: a batch was split", k, v, keys[0], first)
		}
	}
	res, err := db.Scan(ctx, []byte("log"), 0, MaxScanLimit)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != workers*rounds || res.Meta.MaxVersion != workers*rounds {
		t.Fatalf("log has %d entries, max %d; want %d", len(res.Entries), res.Meta.MaxVersion, workers*rounds)
	}
	// The last batch committed wrote both the keys and the log's last entry.
	if last := res.Entries[len(res.Entries)-1].Value; string(last) != string(first) {
		t.Fatalf("last log entry %q, keys hold %q", last, first)
	}
}

// Readers scanning a row while writers append never see a gap that later
// fills in: the entries a scan returns are a prefix of the final row.
func TestScanWhileAppending(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, "")
	row := []byte("r")
	const n = 200
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n / 4 {
				if _, err := db.Append(ctx, row, fmt.Appendf(nil, "%d/%d", w, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		var after uint64
		for {
			// Whether the writers were done before this scan started.
			writersDone := false
			select {
			case <-stop:
				writersDone = true
			default:
			}
			res, err := db.Scan(ctx, row, after, 7)
			if err != nil {
				t.Error(err)
				return
			}
			for _, e := range res.Entries {
				if e.Version != after+1 {
					t.Errorf("reader after %d saw %d", after, e.Version)
					return
				}
				after = e.Version
			}
			if after == n {
				return
			}
			if writersDone && !res.More {
				t.Errorf("reader stopped at %d of %d", after, n)
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	select {
	case <-readerDone:
	case <-time.After(30 * time.Second):
		t.Fatal("reader did not catch up")
	}
}
