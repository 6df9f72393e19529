package kv

import (
	"encoding/binary"
	"errors"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// revisionSection is how far ahead of the last handed-out revision the
// persisted bound is moved: one fsync'd write per revisionSection Puts, and
// a crash skips at most that many numbers of a 64-bit space.
const revisionSection = 1 << 20

// revisions hands out the DB-wide revisions that KV versions are made of.
// Invariant: every revision ever returned is <= the bound stored under
// revisionBoundKey, which was fsync'd before the revision was returned.
type revisions struct {
	pdb   *pebble.DB
	mu    sync.Mutex
	last  uint64 // the last revision handed out (or the bound at open)
	bound uint64 // the persisted bound
}

func (r *revisions) open(pdb *pebble.DB) error {
	r.pdb = pdb
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last, r.bound = 0, 0
	raw, closer, err := pdb.Get(revisionBoundKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return internalError("read revision bound", err)
	}
	defer closer.Close()
	if len(raw) != 8 {
		return corruptf("revision bound of %d bytes", len(raw))
	}
	r.bound = binary.BigEndian.Uint64(raw)
	// Revisions up to the bound may have been handed out before a crash.
	r.last = r.bound
	return nil
}

// next returns a revision above every revision returned before, in this
// process or any earlier one.
func (r *revisions) next() (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last >= r.bound {
		if r.bound > AnyVersion-2*revisionSection {
			return 0, internalError("allocate revision", errors.New("revision space exhausted"))
		}
		nb := r.last + revisionSection
		if err := r.pdb.Set(revisionBoundKey, binary.BigEndian.AppendUint64(nil, nb), pebble.Sync); err != nil {
			return 0, internalError("persist revision bound", err)
		}
		r.bound = nb
	}
	r.last++
	return r.last, nil
}

// current returns the last revision handed out (or the bound after open).
func (r *revisions) current() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// setExact records rev, persisted exactly by a committed apply, as both
// the last revision and the bound.
func (r *revisions) setExact(rev uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last, r.bound = rev, rev
}
