package kv

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/maphash"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Batch is a list of writes and conditions that Apply commits atomically:
// either every condition holds and every write lands, or nothing is written.
// Operations run in order, and later ones see earlier ones (a Put then a Check
// of the same key in one batch checks the new version). The zero value is an
// empty batch. Key and value slices are referenced, not copied, until Apply
// returns. A Batch is not safe for concurrent use.
type Batch struct {
	ops []op
	// NoSync commits without waiting for the WAL fsync. Use it only for
	// writes whose loss in a crash is harmless; a later synced write makes
	// it durable too.
	NoSync bool
}

type opKind uint8

const (
	opPut opKind = iota
	opDelete
	opCheck
	opAppend
	opPutEntry
	opTrim
)

type op struct {
	kind  opKind
	key   []byte // KV key or row
	value []byte
	// version is the expected version (Put, Delete, Check), the entry
	// version (PutEntry) or the trim bound (Trim).
	version uint64
}

func (o *op) onRow() bool { return o.kind >= opAppend }

// Put writes value under key if the key's version is expectVersion (0: must
// not exist; AnyVersion: no check). Its result is the new version.
func (b *Batch) Put(key, value []byte, expectVersion uint64) {
	b.ops = append(b.ops, op{kind: opPut, key: key, value: value, version: expectVersion})
}

// Delete removes key if its version is expectVersion. Its result is 0.
func (b *Batch) Delete(key []byte, expectVersion uint64) {
	b.ops = append(b.ops, op{kind: opDelete, key: key, version: expectVersion})
}

// Check writes nothing but fails the batch unless key's version is
// expectVersion (0: must not exist). Its result is the current version.
func (b *Batch) Check(key []byte, expectVersion uint64) {
	b.ops = append(b.ops, op{kind: opCheck, key: key, version: expectVersion})
}

// Append adds an entry to row at the row's max version + 1, the op's result.
func (b *Batch) Append(row, value []byte) {
	b.ops = append(b.ops, op{kind: opAppend, key: row, value: value})
}

// PutEntry adds an entry to row at version, which must be above the row's
// max version. Its result is version.
func (b *Batch) PutEntry(row []byte, version uint64, value []byte) {
	b.ops = append(b.ops, op{kind: opPutEntry, key: row, value: value, version: version})
}

// Trim deletes row's entries with version <= uptoVersion, clamped to the
// row's max version. Its result is the row's trimmed watermark afterwards.
func (b *Batch) Trim(row []byte, uptoVersion uint64) {
	b.ops = append(b.ops, op{kind: opTrim, key: row, version: uptoVersion})
}

// Len returns the number of operations in the batch.
func (b *Batch) Len() int { return len(b.ops) }

// Reset empties the batch, keeping its memory.
func (b *Batch) Reset() {
	clear(b.ops)
	b.ops = b.ops[:0]
	b.NoSync = false
}

func (b *Batch) validate() error {
	for i := range b.ops {
		o := &b.ops[i]
		what := "key"
		if o.onRow() {
			what = "row"
		}
		if err := checkKey(what, o.key); err != nil {
			return err
		}
		if len(o.value) > MaxValueLen {
			return invalidf("batch op %d: value of %d bytes exceeds %d", i, len(o.value), MaxValueLen)
		}
		if o.kind == opPutEntry && (o.version == 0 || o.version == math.MaxUint64) {
			return invalidf("batch op %d: entry version %d outside [1, 2^64-2]", i, o.version)
		}
	}
	return nil
}

func checkKey(what string, key []byte) error {
	if len(key) == 0 {
		return invalidf("empty %s", what)
	}
	if len(key) > MaxKeyLen {
		return invalidf("%s of %d bytes exceeds %d", what, len(key), MaxKeyLen)
	}
	return nil
}

// keyState is the state of one KV key or row as the batch sees it: loaded
// from the store on first use, then updated by the batch's own ops.
type keyState struct {
	onRow   bool
	key     []byte
	version uint64  // KV: current version, 0 when absent
	meta    RowMeta // row: current metadata
	dirty   bool    // row: meta changed and must be written
}

// applyState finds the keyState of a key. Batches are usually a handful of
// keys, so a slice scan beats a map; big batches get a map index.
type applyState struct {
	states []keyState
	index  map[string]int
	// keyBuf is scratch for encoding store keys: pebble copies the keys
	// of Get, Set and Delete, so one buffer serves the whole batch.
	keyBuf []byte
}

func (s *applyState) find(onRow bool, key []byte) (int, bool) {
	if s.index != nil {
		i, ok := s.index[stateKey(onRow, key)]
		return i, ok
	}
	for i := range s.states {
		if s.states[i].onRow == onRow && string(s.states[i].key) == string(key) {
			return i, true
		}
	}
	return 0, false
}

func (s *applyState) add(st keyState) int {
	s.states = append(s.states, st)
	i := len(s.states) - 1
	if s.index == nil && len(s.states) > 16 {
		s.index = make(map[string]int, 2*len(s.states))
		for j := range s.states {
			s.index[stateKey(s.states[j].onRow, s.states[j].key)] = j
		}
	} else if s.index != nil {
		s.index[stateKey(st.onRow, st.key)] = i
	}
	return i
}

func stateKey(onRow bool, key []byte) string {
	if onRow {
		return "r" + string(key)
	}
	return "k" + string(key)
}

// Apply commits b atomically and returns one result per operation (see each
// operation for what its result is). On a failed condition it returns a
// *ConflictError (matching ErrConflict) and writes nothing.
func (db *DB) Apply(ctx context.Context, b *Batch) ([]uint64, error) {
	return db.apply(ctx, b, 0)
}

// apply is Apply, or with index > 0 ApplyCommitted's deterministic apply of
// log entry index (ctx nil then: a committed entry is applied whatever
// happened to the call that proposed it).
func (db *DB) apply(ctx context.Context, b *Batch, index uint64) ([]uint64, error) {
	committed := index > 0
	if committed {
		ctx = context.Background()
	}
	if err := b.validate(); err != nil {
		if committed {
			return nil, db.recordApplied(index, err)
		}
		return nil, err
	}
	if err := db.begin(ctx); err != nil {
		return nil, err
	}
	defer db.end()
	if len(b.ops) == 0 {
		if committed {
			return nil, db.recordApplied(index, nil)
		}
		return nil, nil
	}

	stripes := db.stripesOf(b)
	for _, s := range stripes {
		db.stripes[s].Lock()
	}
	defer func() {
		for _, s := range stripes {
			db.stripes[s].Unlock()
		}
	}()
	// Waiting for the stripes may have taken a while.
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	pb := db.pdb.NewBatch()
	defer pb.Close()
	var st applyState
	results := make([]uint64, len(b.ops))
	var buf []byte
	// A committed apply numbers Puts after the exact last revision, which
	// it persists with the batch (see replicated.go).
	rev := db.revs.current()
	for i := range b.ops {
		o := &b.ops[i]
		si, err := db.state(&st, o)
		if err != nil {
			if committed {
				return nil, db.recordApplied(index, err)
			}
			return nil, err
		}
		s := &st.states[si]
		switch o.kind {
		case opPut, opDelete, opCheck:
			if o.version != AnyVersion && o.version != s.version {
				return nil, db.failed(index, &ConflictError{Op: i, Key: clone(o.key), Expected: o.version, Actual: s.version})
			}
			switch o.kind {
			case opPut:
				if committed {
					if rev >= AnyVersion-1 {
						return nil, db.failed(index, internalError("allocate revision", errors.New("revision space exhausted")))
					}
					rev++
				} else {
					var err error
					if rev, err = db.revs.next(); err != nil {
						return nil, err
					}
				}
				buf = encodeRecord(buf[:0], rev, o.value)
				st.keyBuf = kvKey(st.keyBuf[:0], o.key)
				if err := pb.Set(st.keyBuf, buf, nil); err != nil {
					return nil, internalError("batch", err)
				}
				s.version = rev
				results[i] = rev
			case opDelete:
				if s.version != 0 {
					st.keyBuf = kvKey(st.keyBuf[:0], o.key)
					if err := pb.Delete(st.keyBuf, nil); err != nil {
						return nil, internalError("batch", err)
					}
					s.version = 0
				}
			case opCheck:
				results[i] = s.version
			}
		case opAppend, opPutEntry:
			v := o.version
			if o.kind == opAppend {
				if s.meta.MaxVersion >= math.MaxUint64-1 {
					return nil, db.failed(index, invalidf("batch op %d: row %q has no versions left", i, o.key))
				}
				v = s.meta.MaxVersion + 1
			} else if v <= s.meta.MaxVersion {
				return nil, db.failed(index, &ConflictError{Op: i, Key: clone(o.key), Row: true, Expected: v, Actual: s.meta.MaxVersion})
			}
			if err := pb.Set(entryKey(buf[:0], o.key, v), o.value, nil); err != nil {
				return nil, internalError("batch", err)
			}
			s.meta.MaxVersion = v
			s.dirty = true
			results[i] = v
		case opTrim:
			upto := min(o.version, s.meta.MaxVersion)
			if upto > s.meta.TrimmedUpTo {
				from := entryKey(nil, o.key, s.meta.TrimmedUpTo+1)
				to := entryKey(nil, o.key, upto+1)
				if err := pb.DeleteRange(from, to, nil); err != nil {
					return nil, internalError("batch", err)
				}
				s.meta.TrimmedUpTo = upto
				s.dirty = true
			}
			results[i] = s.meta.TrimmedUpTo
		}
	}
	for i := range st.states {
		s := &st.states[i]
		if s.dirty {
			buf = encodeRowMeta(buf[:0], s.meta)
			st.keyBuf = rowMetaKey(st.keyBuf[:0], s.key)
			if err := pb.Set(st.keyBuf, buf, nil); err != nil {
				return nil, internalError("batch", err)
			}
		}
	}
	wo := pebble.Sync
	if b.NoSync {
		wo = pebble.NoSync
	}
	if committed {
		wo = pebble.NoSync
		if rev != db.revs.current() {
			buf = binary.BigEndian.AppendUint64(buf[:0], rev)
			if err := pb.Set(revisionBoundKey, buf, nil); err != nil {
				return nil, internalError("batch", err)
			}
		}
		if err := pb.Set(appliedIndexKey, binary.BigEndian.AppendUint64(nil, index), nil); err != nil {
			return nil, internalError("batch", err)
		}
	}
	if err := pb.Commit(wo); err != nil {
		return nil, internalError("commit", err)
	}
	if committed {
		db.revs.setExact(rev)
		db.applied.Store(index)
	}
	return results, nil
}

// failed returns err, recording index as applied first when the apply is
// a committed one: a batch whose condition fails writes nothing but is
// still an applied entry (see replicated.go).
func (db *DB) failed(index uint64, err error) error {
	if index == 0 {
		return err
	}
	return db.recordApplied(index, err)
}

// recordApplied persists index as the applied index (unsynced) and returns
// err, or the write's own failure.
func (db *DB) recordApplied(index uint64, err error) error {
	if werr := db.pdb.Set(appliedIndexKey, binary.BigEndian.AppendUint64(nil, index), pebble.NoSync); werr != nil {
		return internalError("record applied index", werr)
	}
	db.applied.Store(index)
	return err
}

// state returns the index of o's key in st, loading it from the store the
// first time. The caller holds the key's stripe, so what it loads stays
// current until the batch commits.
func (db *DB) state(st *applyState, o *op) (int, error) {
	onRow := o.onRow()
	if i, ok := st.find(onRow, o.key); ok {
		return i, nil
	}
	s := keyState{onRow: onRow, key: o.key}
	if onRow {
		st.keyBuf = rowMetaKey(st.keyBuf[:0], o.key)
		m, err := db.loadRowMeta(st.keyBuf)
		if err != nil {
			return 0, err
		}
		s.meta = m
	} else {
		st.keyBuf = kvKey(st.keyBuf[:0], o.key)
		raw, closer, err := db.pdb.Get(st.keyBuf)
		switch {
		case errors.Is(err, pebble.ErrNotFound):
		case err != nil:
			return 0, internalError("read", err)
		default:
			v, _, derr := decodeRecord(raw)
			closer.Close()
			if derr != nil {
				return 0, derr
			}
			s.version = v
		}
	}
	return st.add(s), nil
}

// stripesOf returns the sorted, distinct stripe indexes of b's keys and rows:
// locking them in this order is what keeps two batches from deadlocking.
func (db *DB) stripesOf(b *Batch) []int {
	out := make([]int, 0, len(b.ops))
	for i := range b.ops {
		out = append(out, db.stripeOf(b.ops[i].onRow(), b.ops[i].key))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (db *DB) stripeOf(onRow bool, key []byte) int {
	h := maphash.Bytes(db.seed, key)
	if onRow {
		// A row and a KV key with the same bytes are different things.
		h ^= 0x9e3779b97f4a7c15
	}
	return int(h % stripeCount)
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
