package shard

import (
	"fmt"
	"slices"
	"testing"
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
