package kv

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"
)

// Replicated use: a consensus log (package examples/im/internal/replica)
// orders batches, and every replica applies the committed ones with
// ApplyCommitted, in log order, to its own DB. For the replicas to stay
// identical, applying must be deterministic: a batch's outcome (its
// results, or the conflict that fails it) and the bytes it writes depend
// only on the DB's contents and the batch. Two things make that so:
//
//   - revisions: Apply hands them out from memory and persists only an
//     upper bound (see revisions), so two replicas that restarted at
//     different moments would number the same Put differently.
//     ApplyCommitted instead takes the next revision after the exact last
//     one, which it writes in the same pebble batch as the data;
//   - the applied index: ApplyCommitted records the log index of the batch
//     in the same pebble batch, so a replica that restarts knows which
//     entries its DB already holds and skips them when the log is replayed
//     (AppliedIndex).
//
// ApplyCommitted does not fsync: the log already holds the batch durably on
// a majority, and pebble's WAL recovers a prefix of the batches after a
// crash, so a replica that lost its last applies replays them from the log.
// SyncApplied makes everything applied durable, before the log may drop the
// entries (a snapshot).

var appliedIndexKey = []byte{nsStore, 'a', 'p', 'p'}

// EncodeBatch appends the binary form of b's operations (not NoSync) to dst:
// the command a replicated store puts in its log.
//
//	byte     format (1)
//	uvarint  number of operations
//	per op:  byte kind, uvarint version, uvarint len(key), key,
//	         uvarint len(value), value
func EncodeBatch(dst []byte, b *Batch) []byte {
	dst = append(dst, recordFormat)
	dst = binary.AppendUvarint(dst, uint64(len(b.ops)))
	for i := range b.ops {
		o := &b.ops[i]
		dst = append(dst, byte(o.kind))
		dst = binary.AppendUvarint(dst, o.version)
		dst = binary.AppendUvarint(dst, uint64(len(o.key)))
		dst = append(dst, o.key...)
		dst = binary.AppendUvarint(dst, uint64(len(o.value)))
		dst = append(dst, o.value...)
	}
	return dst
}

// DecodeBatch decodes what EncodeBatch wrote. The batch's keys and values
// alias raw.
func DecodeBatch(raw []byte) (*Batch, error) {
	if len(raw) == 0 || raw[0] != recordFormat {
		return nil, corruptf("batch command of format %s", formatByte(raw))
	}
	b := raw[1:]
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	bytesOf := func() ([]byte, bool) {
		n, ok := uv()
		if !ok || n > uint64(len(b)) {
			return nil, false
		}
		out := b[:n:n]
		b = b[n:]
		return out, true
	}
	count, ok := uv()
	if !ok || count > uint64(len(b)) {
		return nil, corruptf("batch command: bad operation count")
	}
	out := &Batch{ops: make([]op, 0, count)}
	for i := range count {
		if len(b) == 0 || opKind(b[0]) > opTrim {
			return nil, corruptf("batch command: op %d: bad kind", i)
		}
		o := op{kind: opKind(b[0])}
		b = b[1:]
		var ok1, ok2, ok3 bool
		o.version, ok1 = uv()
		o.key, ok2 = bytesOf()
		o.value, ok3 = bytesOf()
		if !ok1 || !ok2 || !ok3 {
			return nil, corruptf("batch command: op %d truncated", i)
		}
		out.ops = append(out.ops, o)
	}
	if len(b) != 0 {
		return nil, corruptf("batch command: %d trailing bytes", len(b))
	}
	return out, nil
}

// ApplyCommitted applies b, the committed log entry at index, as Apply
// does but deterministically and without fsync (see above), and records
// index as applied. An entry at or below AppliedIndex was applied before
// and is skipped (nil results, nil error). Calls must come in log order,
// from one goroutine.
func (db *DB) ApplyCommitted(b *Batch, index uint64) ([]uint64, error) {
	if index <= db.applied.Load() {
		return nil, nil
	}
	res, err := db.apply(nil, b, index)
	if err != nil {
		// A failed condition writes nothing, and fails the same way on
		// every replica; the index is recorded with the next write. Any
		// other failure is the disk's, and not a result to hand back as
		// if it were the batch's.
		var ce *ConflictError
		if !errors.As(err, &ce) && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrCorrupt) {
			return nil, fmt.Errorf("kv: apply log entry %d: %w", index, err)
		}
	}
	return res, err
}

// AppliedIndex returns the index of the last log entry ApplyCommitted
// applied (0 for a DB never replicated).
func (db *DB) AppliedIndex() uint64 { return db.applied.Load() }

// SyncApplied makes every applied batch durable (one WAL fsync).
func (db *DB) SyncApplied() error {
	if err := db.pdb.LogData(nil, pebble.Sync); err != nil {
		return internalError("sync", err)
	}
	return nil
}

func (db *DB) loadApplied() error {
	raw, closer, err := db.pdb.Get(appliedIndexKey)
	if errors.Is(err, pebble.ErrNotFound) {
		db.applied.Store(0)
		return nil
	}
	if err != nil {
		return internalError("read applied index", err)
	}
	defer closer.Close()
	if len(raw) != 8 {
		return corruptf("applied index of %d bytes", len(raw))
	}
	db.applied.Store(binary.BigEndian.Uint64(raw))
	return nil
}

// Snapshot is a consistent copy of the whole DB at one applied index, for
// a replica that must catch up without the log entries behind it.
type Snapshot struct {
	snap  *pebble.Snapshot
	Index uint64 // the applied index the snapshot holds
}

// Snapshot takes a snapshot of everything applied so far. It is cheap (a
// pebble snapshot); WriteTo does the copying. Call Release when done.
func (db *DB) Snapshot() *Snapshot {
	return &Snapshot{snap: db.pdb.NewSnapshot(), Index: db.applied.Load()}
}

// Release frees the snapshot.
func (s *Snapshot) Release() { _ = s.snap.Close() }

// snapshotMagic starts a snapshot stream.
const snapshotMagic = "svrkit-kv-snapshot-1\n"

// WriteTo writes the snapshot as a stream of (key, value) pairs:
// snapshotMagic, then per pair uvarint len(key), key, uvarint len(value),
// value, and a final uvarint 0.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	var n int64
	if _, err := bw.WriteString(snapshotMagic); err != nil {
		return n, err
	}
	n += int64(len(snapshotMagic))
	it, err := s.snap.NewIter(nil)
	if err != nil {
		return n, internalError("snapshot", err)
	}
	defer it.Close()
	var hdr []byte
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return n, internalError("snapshot", err)
		}
		k := it.Key()
		hdr = binary.AppendUvarint(hdr[:0], uint64(len(k)))
		hdr = append(hdr, k...)
		hdr = binary.AppendUvarint(hdr, uint64(len(v)))
		if _, err := bw.Write(hdr); err != nil {
			return n, err
		}
		if _, err := bw.Write(v); err != nil {
			return n, err
		}
		n += int64(len(hdr) + len(v))
	}
	if err := it.Error(); err != nil {
		return n, internalError("snapshot", err)
	}
	if err := bw.WriteByte(0); err != nil {
		return n, err
	}
	return n + 1, bw.Flush()
}

// Restore replaces the DB's whole contents with a snapshot stream
// (Snapshot.WriteTo), durably, and returns its applied index. Nothing else
// may use the DB meanwhile. A stream that ends early or does not decode
// leaves the DB partly written: the caller restores again (the replica
// does so from the same or a newer snapshot before it serves).
func (db *DB) Restore(r io.Reader) (uint64, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapshotMagic {
		return 0, corruptf("snapshot stream header")
	}
	// Everything goes: keys sort below 0xff 0xff... (the namespaces are
	// single bytes), so one range deletion covers the DB.
	if err := db.pdb.DeleteRange([]byte{0}, []byte{0xff, 0xff, 0xff, 0xff}, pebble.NoSync); err != nil {
		return 0, internalError("restore", err)
	}
	pb := db.pdb.NewBatch()
	defer func() { pb.Close() }()
	for {
		klen, err := binary.ReadUvarint(br)
		if err != nil {
			return 0, corruptf("snapshot stream: %v", err)
		}
		if klen == 0 {
			break
		}
		if klen > MaxKeyLen+64 {
			return 0, corruptf("snapshot stream: key of %d bytes", klen)
		}
		k := make([]byte, klen)
		if _, err := io.ReadFull(br, k); err != nil {
			return 0, corruptf("snapshot stream: %v", err)
		}
		vlen, err := binary.ReadUvarint(br)
		if err != nil || vlen > MaxValueLen+64 {
			return 0, corruptf("snapshot stream: bad value length")
		}
		v := make([]byte, vlen)
		if _, err := io.ReadFull(br, v); err != nil {
			return 0, corruptf("snapshot stream: %v", err)
		}
		if err := pb.Set(k, v, nil); err != nil {
			return 0, internalError("restore", err)
		}
		if pb.Len() > 4<<20 {
			if err := pb.Commit(pebble.NoSync); err != nil {
				return 0, internalError("restore", err)
			}
			pb.Close()
			pb = db.pdb.NewBatch()
		}
	}
	if err := pb.Commit(pebble.Sync); err != nil {
		return 0, internalError("restore", err)
	}
	if err := db.revs.open(db.pdb); err != nil {
		return 0, err
	}
	if err := db.loadApplied(); err != nil {
		return 0, err
	}
	return db.applied.Load(), nil
}

// clusterKey holds the id of the replica group whose log the DB follows.
var clusterKey = []byte{nsStore, 'c', 'l', 'u'}

// Cluster returns the replica group id recorded with SetCluster ("" for a
// DB never replicated, or replicated before groups were recorded).
func (db *DB) Cluster() (string, error) {
	raw, closer, err := db.pdb.Get(clusterKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", internalError("read cluster", err)
	}
	defer closer.Close()
	return string(raw), nil
}

// SetCluster records, durably, that the DB follows the log of replica
// group id. With forgetLog the applied index goes back to 0 as well: the
// DB's contents were copied from another group's replica to seed a new
// group, whose log starts again at 1 (see the replica package's doc on
// splitting a shard). Nothing else may use the DB meanwhile.
func (db *DB) SetCluster(id string, forgetLog bool) error {
	pb := db.pdb.NewBatch()
	defer pb.Close()
	if err := pb.Set(clusterKey, []byte(id), nil); err != nil {
		return internalError("set cluster", err)
	}
	if forgetLog {
		if err := pb.Delete(appliedIndexKey, nil); err != nil {
			return internalError("set cluster", err)
		}
	}
	if err := pb.Commit(pebble.Sync); err != nil {
		return internalError("set cluster", err)
	}
	if forgetLog {
		db.applied.Store(0)
	}
	return nil
}
