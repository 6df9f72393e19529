package shard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/svrkit/svrkit/svrkit"
)

// lastDigit routes a key by its last digit's parity.
type lastDigit struct{}

func (lastDigit) Route(key string) string { return fmt.Sprint("ep", (key[len(key)-1]-'0')%2) }

func TestGroup(t *testing.T) {
	users := []uint64{11, 20, 31, 42, 53}
	got := Group(users, lastDigit{})
	if want := [][]int{{0, 2, 4}, {1, 3}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("Group = %v, want %v", got, want)
	}
	if got := Group(users, nil); !slices.EqualFunc(got, [][]int{{0, 1, 2, 3, 4}}, slices.Equal) {
		t.Fatalf("Group without a router = %v, want every user in one group", got)
	}
}

func TestTogether(t *testing.T) {
	for _, c := range []struct {
		name string
		r    svrkit.KeyRouter
		a, b uint64
		want bool
	}{
		{"same route", lastDigit{}, 11, 31, true},
		{"different routes", lastDigit{}, 11, 20, false},
		{"no router: one instance", nil, 11, 20, true},
		{"unplaceable", nowhere{}, 11, 31, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Together(c.r, c.a, c.b); got != c.want {
				t.Fatalf("Together(%d, %d) = %v, want %v", c.a, c.b, got, c.want)
			}
		})
	}
}

// nowhere routes nothing, as a client with no endpoints.
type nowhere struct{}

func (nowhere) Route(string) string { return "" }

// BatchIndexes cuts each route's group into even parts of at most the
// limit, and Batches names the same users.
func TestBatchIndexes(t *testing.T) {
	users := []uint64{11, 20, 31, 42, 53, 11, 31}
	got := BatchIndexes(users, lastDigit{}, 2)
	if want := [][]int{{0}, {2, 4}, {5, 6}, {1, 3}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("BatchIndexes = %v, want %v", got, want)
	}
	ids := Batches(users, lastDigit{}, 2)
	if want := [][]uint64{{11}, {31, 53}, {11, 31}, {20, 42}}; !slices.EqualFunc(ids, want, slices.Equal) {
		t.Fatalf("Batches = %v, want %v", ids, want)
	}
}

// CheckBatch refuses a user named twice and a routing user outside the
// batch, as InvalidArgument.
func TestCheckBatch(t *testing.T) {
	if err := CheckBatch([]uint64{1, 2, 3}, 2); err != nil {
		t.Fatalf("a good batch: %v", err)
	}
	for _, c := range []struct {
		users   []uint64
		routing uint64
	}{{[]uint64{1, 2, 1}, 1}, {[]uint64{1, 2}, 3}} {
		if err := CheckBatch(c.users, c.routing); svrkit.CodeOf(err) != svrkit.InvalidArgument {
			t.Errorf("CheckBatch(%v, %d) = %v, want invalid_argument", c.users, c.routing, err)
		}
	}
}

// ForEach calls f for every index, at most parallel at a time, and stops
// taking new ones after an error, which it returns.
func TestForEach(t *testing.T) {
	var n, running, most atomic.Int64
	err := ForEach(context.Background(), 100, 8, func(ctx context.Context, i int) error {
		r := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if r <= m || most.CompareAndSwap(m, r) {
				break
			}
		}
		n.Add(1)
		return nil
	})
	if err != nil || n.Load() != 100 || most.Load() > 8 {
		t.Fatalf("ForEach: %v, %d calls, %d at once", err, n.Load(), most.Load())
	}
	boom := errors.New("boom")
	n.Store(0)
	err = ForEach(context.Background(), 1000, 4, func(ctx context.Context, i int) error {
		n.Add(1)
		if i == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || n.Load() >= 1000 {
		t.Fatalf("after an error: %v, %d calls", err, n.Load())
	}
}
