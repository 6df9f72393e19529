package shard

import (
	"fmt"
	"slices"
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

// Each runs every group, concurrently, and returns the first error by
// group index whatever order they finish in.
func TestEach(t *testing.T) {
	started := make(chan struct{})
	ran := make([]bool, 4)
	err := Each(4, func(k int) error {
		ran[k] = true
		if k == 3 {
			close(started)
			return fmt.Errorf("group %d", k)
		}
		if k == 1 {
			<-started // group 1 ends after group 3: the two run at once
			return fmt.Errorf("group %d", k)
		}
		return nil
	})
	if err == nil || err.Error() != "group 1" {
		t.Fatalf("Each = %v, want group 1's error", err)
	}
	if !slices.Equal(ran, []bool{true, true, true, true}) {
		t.Fatalf("ran %v", ran)
	}
	if err := Each(0, func(int) error { return fmt.Errorf("ran") }); err != nil {
		t.Fatalf("no groups: %v", err)
	}
}
