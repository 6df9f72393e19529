package groups

import (
	"slices"
	"testing"

	"github.com/svrkit/svrkit/examples/im/internal/shard"
)

// byParity routes even users to "even", odd ones to "odd".
type byParity struct{}

func (byParity) Route(key string) string {
	if (key[len(key)-1]-'0')%2 == 0 {
		return "even"
	}
	return "odd"
}

// Batches groups users by route and cuts a group over the limit into
// even parts, keeping every user once.
func TestIndexBatches(t *testing.T) {
	users := make([]uint64, 1200)
	for i := range users {
		users[i] = uint64(1 + i)
	}
	for _, tc := range []struct {
		name  string
		route *Index
		sizes []int
	}{
		{"one instance", &Index{}, []int{400, 400, 400}},
		{"two instances", &Index{Route: byParity{}}, []int{300, 300, 300, 300}},
	} {
		bs := tc.route.Batches(users)
		var sizes []int
		var seen []uint64
		for _, b := range bs {
			sizes = append(sizes, len(b))
			seen = append(seen, b...)
			if len(b) > shard.MaxBatchUsers {
				t.Errorf("%s: a batch of %d", tc.name, len(b))
			}
			if tc.route.Route != nil {
				for _, u := range b {
					if tc.route.Route.Route(shard.Key(u)) != tc.route.Route.Route(shard.Key(b[0])) {
						t.Errorf("%s: users %d and %d in one batch route apart", tc.name, u, b[0])
					}
				}
			}
		}
		slices.Sort(seen)
		if !slices.Equal(seen, users) || !slices.Equal(sizes, tc.sizes) {
			t.Errorf("%s: batches of %v, %d users", tc.name, sizes, len(seen))
		}
	}
	if bs := (&Index{}).Batches(nil); len(bs) != 0 {
		t.Errorf("no users: %v", bs)
	}
}
