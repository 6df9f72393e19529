package seq

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/svrkit/svrkit/examples/im/internal/kv"
)

// NextMany is Next for each of users (distinct) and one data type, with
// every raise it needs in one kv batch: one fsync for all the segments
// whose bound must move, where Next one user after another would fsync
// once per segment. User ids are spread over the 64-bit space, so the
// members of a group are in as many segments as there are members, and
// after a restart (or on a fresh store) each one's first version needs a
// raise: a fan-out batch would otherwise wait for a hundred fsyncs in a
// row.
//
// It locks the users' segments in ascending order and holds them until it
// returns (Next holds one segment at a time, so no two lockers can wait
// on each other), so each user's number is above every number Next or
// NextMany handed it out before, as Next's is. If another allocator
// raised one of the bounds (the compare-and-set fails) the segments are
// reloaded and the whole allocation made again; nothing is handed out
// until the raises are durable.
func (a *Allocator) NextMany(ctx context.Context, users []uint64, typ uint8) ([]uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	segOf := make([]uint64, len(users))
	for i, u := range users {
		segOf[i] = u / a.segmentUsers
	}
	order := slices.Clone(segOf)
	slices.Sort(order)
	order = slices.Compact(order)
	segs := make(map[uint64]*segment, len(order))
	for _, id := range order {
		s := a.segment(segmentID{typ: typ, seg: id})
		s.mu.Lock()
		defer s.mu.Unlock()
		segs[id] = s
	}

	out := make([]uint64, len(users))
	seen := make(map[uint64]bool, len(users))
	for range raiseAttempts {
		for _, id := range order {
			if s := segs[id]; !s.loaded {
				if err := s.load(ctx, a.db); err != nil {
					return nil, err
				}
			}
		}
		raise := map[uint64]uint64{} // segment → its new bound
		clear(seen)
		for i, u := range users {
			if seen[u] {
				return nil, fmt.Errorf("seq: user %d twice in one NextMany", u)
			}
			seen[u] = true
			s := segs[segOf[i]]
			cur, ok := s.cur[u]
			if !ok {
				cur = s.floor
			}
			if cur >= math.MaxUint64-a.step {
				return nil, fmt.Errorf("%w: user %d type %d", ErrExhausted, u, typ)
			}
			out[i] = cur + 1
			if out[i] > s.bound {
				raise[segOf[i]] = max(raise[segOf[i]], out[i]-1+a.step)
			}
		}
		if len(raise) > 0 {
			var b kv.Batch
			raised := make([]uint64, 0, len(raise))
			for _, id := range order {
				if nb, ok := raise[id]; ok {
					b.Put(segs[id].key, binary.BigEndian.AppendUint64(nil, nb), segs[id].boundVer)
					raised = append(raised, id)
				}
			}
			vs, err := a.db.Apply(ctx, &b)
			if errors.Is(err, kv.ErrConflict) {
				// Another allocator raised a bound: it may have handed out
				// anything below its new bound. Reload what we raise.
				for _, id := range raised {
					segs[id].loaded = false
				}
				continue
			}
			if err != nil {
				return nil, err
			}
			for j, id := range raised {
				segs[id].bound, segs[id].boundVer = raise[id], vs[j]
			}
		}
		for i, u := range users {
			segs[segOf[i]].cur[u] = out[i]
		}
		return out, nil
	}
	return nil, fmt.Errorf("seq: segments of type %d are being raised by another allocator: %w", typ, kv.ErrConflict)
}
