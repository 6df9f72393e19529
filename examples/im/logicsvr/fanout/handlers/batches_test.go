package handlers

import (
	"fmt"
	"testing"

	"github.com/svrkit/svrkit/examples/im/internal/shard"
)

// parity routes user ids by their last digit's parity.
type parity struct{}

func (parity) Route(key string) string { return fmt.Sprint((key[len(key)-1] - '0') % 2) }

func TestBatches(t *testing.T) {
	members := func(n int) []uint64 {
		out := make([]uint64, n)
		for i := range out {
			out[i] = uint64(i + 1)
		}
		return out
	}
	sizes := func(bs [][]uint64) []int {
		var out []int
		for _, b := range bs {
			out = append(out, len(b))
		}
		return out
	}
	// By default a whole group is one batch (see the package doc).
	if got := fmt.Sprint(sizes(New(nil, nil, nil, Config{}, nil).batches(members(500), 200))); got != "[500]" {
		t.Errorf("a 500-member group by default: batch sizes %s, want [500]", got)
	}
	w := New(nil, nil, nil, Config{Batch: 128}, nil)
	for _, c := range []struct {
		name     string
		users    int
		itemSize int
		route    bool
		want     string
	}{
		{"a 500-member group: four even batches", 500, 200, false, "[125 125 125 125]"},
		{"fits in one", 128, 200, false, "[128]"},
		{"one more than a batch", 129, 200, false, "[64 65]"},
		{"large items: the byte limit (68 of 60 KiB)", 100, 60 << 10, false, "[50 50]"},
		{"two messagedata instances", 10, 200, true, "[5 5]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w.route = nil
			if c.route {
				w.route = parity{}
			}
			bs := w.batches(members(c.users), c.itemSize)
			if got := fmt.Sprint(sizes(bs)); got != c.want {
				t.Fatalf("batch sizes %s, want %s", got, c.want)
			}
			seen := map[uint64]bool{}
			for _, b := range bs {
				if len(b)*c.itemSize > shard.MaxBatchBytes {
					t.Errorf("batch of %d × %d bytes over the limit", len(b), c.itemSize)
				}
				for _, u := range b {
					if seen[u] {
						t.Errorf("user %d in two batches", u)
					}
					seen[u] = true
					if r := (parity{}); c.route && r.Route(shard.Key(u)) != r.Route(shard.Key(b[0])) {
						t.Errorf("batch %v mixes routes", b)
					}
				}
			}
			if len(seen) != c.users {
				t.Errorf("%d of %d users batched", len(seen), c.users)
			}
		})
	}
}
