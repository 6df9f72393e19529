// Package seq allocates versions, as WeChat's seqsvr does: for each (user,
// data type) a sequence of numbers that strictly increases, survives
// restarts and crashes, and never hands out the same number twice. The inbox
// stamps every entry with one, and a client's SyncKey is made of them.
//
// # Sections
//
// Persisting every number would cost an fsync per message. Instead the
// allocator persists only an upper bound, max_seq, and hands out numbers
// from memory below it: when a user's next number would pass max_seq, it
// first raises max_seq by Step (one fsync'd kv write, through package kv),
// then hands the number out. After a crash it restarts every user from the
// persisted max_seq, which is at least every number handed out before. Up to
// Step numbers per user are skipped at each restart; none is ever reused.
// Versions are therefore sparse — readers must never expect v+1 after v.
//
// # Segments
//
// Like seqsvr, one max_seq is shared by a segment of SegmentUsers
// consecutive user ids (per data type), not kept per user:
//
//   - a restart costs one kv read per segment touched, not per user;
//   - one raise covers every user of the segment, so a segment of mostly idle
//     users costs about one fsync per Step allocations of its busiest user,
//     where per-user bounds would cost an fsync for each user's first
//     allocation after every restart;
//   - the bounds are few and small (seqsvr kept them all in memory on its
//     storage tier; here they are a few kv keys).
//
// The price is that a restart moves every user of a segment up to the
// segment's bound, skipping more numbers than per-user bounds would. In a
// 64-bit space that costs nothing.
//
// In memory each segment keeps each active user's last number (cur) and a
// floor for users it has not seen since it loaded: the persisted bound at
// load time, which is at least anything handed out to them before.
//
// # Concurrency and ownership
//
// Next is safe for concurrent use; a segment has a mutex, held across the
// rare fsync of a raise. One Allocator must own a segment: the service
// routes users to seq instances by user id. Two allocators on one store
// would each hand out numbers from their own window — the raise is a kv
// compare-and-set, so their windows never overlap and no number is ever
// handed out twice, but one user's numbers could go backwards when calls
// alternate between them. An allocator that loses the compare-and-set
// reloads the bound and moves every user of the segment above it.
//
// # Storage
//
// The bound of segment s of data type t is the kv key "seq/" t s (t one
// byte, s 8 bytes big-endian), holding the bound as 8 bytes big-endian.
package seq

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/svrkit/svrkit/examples/im/internal/kv"
)

// Defaults for Options.
const (
	DefaultStep         = 10000
	DefaultSegmentUsers = 100000
)

// Options configure an Allocator.
type Options struct {
	// Step is how far a raise moves a segment's persisted bound: numbers
	// handed out per fsync, and the most a restart skips per user.
	Step uint64
	// SegmentUsers is how many consecutive user ids share one bound.
	SegmentUsers uint64
}

// Allocator hands out versions. It is safe for concurrent use.
type Allocator struct {
	db           kv.Store
	step         uint64
	segmentUsers uint64

	mu       sync.Mutex
	segments map[segmentID]*segment
}

type segmentID struct {
	typ uint8
	seg uint64
}

type segment struct {
	mu       sync.Mutex
	loaded   bool
	key      []byte
	floor    uint64            // cur of users not in cur
	bound    uint64            // the persisted max_seq
	boundVer uint64            // its kv version, for the compare-and-set
	cur      map[uint64]uint64 // user → last number handed out
}

// New returns an allocator storing its bounds in db. It reads nothing until
// a segment is first used.
func New(db kv.Store, opts Options) *Allocator {
	if opts.Step == 0 {
		opts.Step = DefaultStep
	}
	if opts.SegmentUsers == 0 {
		opts.SegmentUsers = DefaultSegmentUsers
	}
	return &Allocator{
		db:           db,
		step:         opts.Step,
		segmentUsers: opts.SegmentUsers,
		segments:     make(map[segmentID]*segment),
	}
}

// raiseAttempts bounds how often Next retries after losing the bound's
// compare-and-set to another allocator.
// Reset forgets every window of numbers handed out from memory, so the
// next Next reloads its segment's bound from the store. A replica that
// becomes its group's leader calls it: while it was not, another leader
// may have raised the bounds and handed out numbers above its windows.
func (a *Allocator) Reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.segments = make(map[segmentID]*segment)
}

// ErrExhausted: a user's versions of a type reached the end of the 64-bit
// space (the storage service answers ResourceExhausted).
var ErrExhausted = errors.New("seq: versions exhausted")

const raiseAttempts = 3

// Next returns the next version of (user, typ): above every version of the
// pair returned before, by this allocator or any earlier one on the store.
func (a *Allocator) Next(ctx context.Context, user uint64, typ uint8) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s := a.segment(segmentID{typ: typ, seg: user / a.segmentUsers})
	s.mu.Lock()
	defer s.mu.Unlock()
	for range raiseAttempts {
		if !s.loaded {
			if err := s.load(ctx, a.db); err != nil {
				return 0, err
			}
		}
		cur, ok := s.cur[user]
		if !ok {
			cur = s.floor
		}
		if cur >= math.MaxUint64-a.step {
			return 0, fmt.Errorf("%w: user %d type %d", ErrExhausted, user, typ)
		}
		n := cur + 1
		if n > s.bound {
			nb := n - 1 + a.step
			var b kv.Batch
			b.Put(s.key, binary.BigEndian.AppendUint64(nil, nb), s.boundVer)
			vs, err := a.db.Apply(ctx, &b)
			if errors.Is(err, kv.ErrConflict) {
				// Another allocator raised the bound: it may have handed out
				// anything up to its new bound, to any user of the segment.
				s.loaded = false
				continue
			}
			if err != nil {
				return 0, err
			}
			s.bound, s.boundVer = nb, vs[0]
		}
		s.cur[user] = n
		return n, nil
	}
	return 0, fmt.Errorf("seq: segment %q is being raised by another allocator: %w", s.key, kv.ErrConflict)
}

func (a *Allocator) segment(id segmentID) *segment {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.segments[id]
	if s == nil {
		key := append([]byte("seq/"), id.typ)
		s = &segment{key: binary.BigEndian.AppendUint64(key, id.seg)}
		a.segments[id] = s
	}
	return s
}

// load reads the segment's bound and restarts every user of it from there.
func (s *segment) load(ctx context.Context, db kv.Store) error {
	val, ver, err := db.Get(ctx, s.key)
	var bound uint64
	switch {
	case errors.Is(err, kv.ErrNotFound):
		ver = 0
	case err != nil:
		return err
	case len(val) != 8:
		return fmt.Errorf("seq: bound %q holds %d bytes, want 8: %w", s.key, len(val), kv.ErrCorrupt)
	default:
		bound = binary.BigEndian.Uint64(val)
	}
	if bound < s.bound {
		return fmt.Errorf("seq: bound %q went back from %d to %d: %w", s.key, s.bound, bound, kv.ErrCorrupt)
	}
	s.floor, s.bound, s.boundVer = bound, bound, ver
	s.cur = make(map[uint64]uint64)
	s.loaded = true
	return nil
}
