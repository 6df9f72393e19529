// Package kv is the IM backend's data-storage engine (the seed architecture's
// KVSvr): an embedded, on-disk store on pebble with the two data models the
// data-access services build on, per-key versions with compare-and-set, and
// atomic multi-key batches. It has no RPC of its own; the storage service
// wraps it and maps its errors to svrkit codes.
//
// # Data models
//
// KV: a key holds one value and a version. Get returns both; Put writes a new
// value only if the caller's expectVersion matches the current version (0
// means "the key must not exist", AnyVersion skips the check) and returns the
// new version. Delete is a conditional delete the same way.
//
// Key-Table: a row (for example user id + data type) holds many entries, each
// under a version, plus row metadata (RowMeta: the highest version ever
// written and the highest version trimmed). Append writes at max+1; PutEntry
// writes at a version the caller allocated (from package seq) that must be
// above the row's max; Scan reads entries with version > afterVersion in
// version order; Trim deletes entries <= a version. A user's inbox is a row.
//
// # Versions
//
// A KV key's version is a DB-wide revision, as etcd's mod_revision: every Put
// takes the next number of one counter shared by all keys. So versions of one
// key are strictly increasing, even across Delete and re-create — a writer
// holding a version from before a delete can never match the re-created key
// (no ABA), and Delete leaves no tombstone behind. The counter survives
// restarts without a write per Put: the store persists (fsync'd) an upper
// bound revisionSection ahead and hands out numbers from memory below it;
// after a crash it starts above the persisted bound, skipping at most one
// section, never reusing a number (the same scheme as package seq).
//
// A row's entry versions are per row and chosen by the writer (PutEntry) or
// max+1 (Append). The row's max only grows — Trim keeps it, and entries are
// only ever added above it — which gives readers the property an inbox needs:
// once a reader has seen version v, no entry <= v can appear later, so
// "everything after v" is a complete resume point.
//
// # Key encoding
//
// Everything lives in one pebble keyspace; the first byte is a namespace:
//
//	0x00 "rev"                          revision bound (8-byte big-endian)
//	0x01 key                            KV record
//	0x02 len(row) row 0x00              row metadata
//	0x02 len(row) row 0x01 version      Key-Table entry
//
// len(row) is 2 bytes big-endian and version 8 bytes big-endian, so all keys
// of a row share one prefix no other row's keys start with, the metadata
// sorts first, and entries sort by version: Scan is one range scan from
// (row, after+1) and Trim one range deletion up to (row, upto+1). Rows sort
// by (length, bytes), not lexicographically; nothing here lists rows.
//
// Values: a KV record is 0x01 (format), the revision (8 bytes big-endian) and
// the value; row metadata is 0x01, max and trimmed (8 bytes each); an entry's
// value is stored as given.
//
// # Write path and concurrency
//
// Pebble has no transactions: an indexed batch lets a writer read its own
// uncommitted writes but detects no conflict with another writer, so it
// cannot make a read-check-write atomic on its own. This package serialises
// writers per key instead, with a fixed array of mutexes striped by a hash of
// (namespace, key): Apply locks the stripes of every key and row in the batch
// in ascending order (so two batches cannot deadlock), reads the current
// versions and row metadata, checks every condition, builds one pebble batch
// and commits it with fsync (pebble.Sync) before unlocking and returning. Two
// concurrent CAS on one key therefore run one after the other and exactly one
// can win. Stripes, not a global lock, so writers to different keys proceed
// in parallel and pebble's commit pipeline folds their fsyncs into one.
// Readers (Get, Scan) take no locks: pebble gives each a consistent snapshot
// and a committed batch is visible to every read that starts after Apply
// returns. A failed condition leaves nothing written.
//
// The striping is only correct while one process owns the directory, which
// pebble enforces with a lock file; a deployment routes each user's data to
// one storage node (svrkit's key-hash routing), and replication belongs to a
// replicated engine, not to this package.
//
// # Durability
//
// Apply returns only after the WAL is fsync'd, unless the batch asks for
// NoSync — for writes whose loss in a crash is harmless, such as ACK
// watermarks that only need to be conservative.
//
// Concurrent commits share fsyncs through pebble's commit pipeline, with
// no hold: pebble's WALMinSyncInterval (hold the next fsync half a
// millisecond so more commits join it) was tried, also only while three
// or more synced commits were in flight, and left out. It halved the
// fsyncs of sixteen writers committing at once but saved them no CPU and
// made each commit wait more than twice as long (the hold ends on a timer,
// which fires late on a busy machine); the IM backend at 16 users spent
// less CPU per message with it, but the in-process ceiling, whose senders
// wait on each commit, delivered a third fewer messages.
//
// One caveat comes from pebble: a batch becomes visible to concurrent
// readers when it is applied to the memtable, which can be before its fsync
// completes. A reader racing a writer may therefore see a write that a crash
// in the next millisecond takes back. A caller that hands what it reads to a
// client as a promise (a SyncKey naming a version) must keep its readers off
// keys with writes in flight; package inbox does so with a per-user lock.
package kv

import (
	"context"
	"errors"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// AnyVersion as an expectVersion skips the version check.
const AnyVersion uint64 = math.MaxUint64

// Limits on what the store accepts; larger input is InvalidArgument.
const (
	MaxKeyLen    = 1024    // a KV key or a row key
	MaxValueLen  = 1 << 20 // a KV value or an entry's value
	MaxScanLimit = 10000   // entries one Scan returns
)

// stripeCount is the number of writer mutexes. More stripes mean fewer
// unrelated keys sharing a lock; 1024 keeps a false-sharing chance of about
// 0.1% per pair of keys at 8 KiB of memory.
const stripeCount = 1024

// Options tune the store. The zero value is usable.
type Options struct {
	// CacheSize is pebble's block cache size in bytes (default 32 MiB).
	CacheSize int64
	// Logger receives pebble's log messages (default: only errors, through
	// the standard log package).
	Logger pebble.Logger
}

// DB is an open store. It is safe for concurrent use.
type DB struct {
	pdb     *pebble.DB
	revs    revisions
	seed    maphash.Seed
	stripes [stripeCount]sync.Mutex
	applied atomic.Uint64 // see ApplyCommitted

	closeMu sync.RWMutex // held shared by every operation, exclusively by Close
	closed  bool
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts *Options) (*DB, error) {
	if opts == nil {
		opts = &Options{}
	}
	cacheSize := opts.CacheSize
	if cacheSize <= 0 {
		cacheSize = 32 << 20
	}
	logger := opts.Logger
	if logger == nil {
		logger = quietLogger{}
	}
	cache := pebble.NewCache(cacheSize)
	defer cache.Unref()
	pdb, err := pebble.Open(dir, &pebble.Options{
		Cache:              cache,
		Logger:             logger,
		FormatMajorVersion: pebble.FormatNewest,
	})
	if err != nil {
		return nil, internalError("open", err)
	}
	db := &DB{pdb: pdb, seed: maphash.MakeSeed()}
	if err := db.revs.open(pdb); err != nil {
		pdb.Close()
		return nil, err
	}
	if err := db.loadApplied(); err != nil {
		pdb.Close()
		return nil, err
	}
	return db, nil
}

// Close flushes nothing extra (every acknowledged write is already in the
// fsync'd WAL) and releases the store. Operations after Close fail with
// ErrClosed; Close waits for operations in progress.
func (db *DB) Close() error {
	db.closeMu.Lock()
	defer db.closeMu.Unlock()
	if db.closed {
		return nil
	}
	db.closed = true
	if err := db.pdb.Close(); err != nil {
		return internalError("close", err)
	}
	return nil
}

// begin marks an operation in progress; the caller must call db.end.
func (db *DB) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.closeMu.RLock()
	if db.closed {
		db.closeMu.RUnlock()
		return errClosed
	}
	return nil
}

func (db *DB) end() { db.closeMu.RUnlock() }

// Get returns the value and version of key, or an error matching ErrNotFound.
func (db *DB) Get(ctx context.Context, key []byte) (value []byte, version uint64, err error) {
	if err := checkKey("key", key); err != nil {
		return nil, 0, err
	}
	if err := db.begin(ctx); err != nil {
		return nil, 0, err
	}
	defer db.end()
	raw, closer, err := db.pdb.Get(kvKey(nil, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, 0, notFound(key)
	}
	if err != nil {
		return nil, 0, internalError("get", err)
	}
	defer closer.Close()
	version, v, err := decodeRecord(raw)
	if err != nil {
		return nil, 0, err
	}
	return append([]byte(nil), v...), version, nil
}

// Put writes value under key if the key's version is expectVersion (0: the
// key must not exist; AnyVersion: no check) and returns the new version.
func (db *DB) Put(ctx context.Context, key, value []byte, expectVersion uint64) (uint64, error) {
	var b Batch
	b.Put(key, value, expectVersion)
	vs, err := db.Apply(ctx, &b)
	if err != nil {
		return 0, err
	}
	return vs[0], nil
}

// Delete removes key if its version is expectVersion (AnyVersion: no check).
// Deleting a key that does not exist with expectVersion 0 or AnyVersion
// succeeds and writes nothing.
func (db *DB) Delete(ctx context.Context, key []byte, expectVersion uint64) error {
	var b Batch
	b.Delete(key, expectVersion)
	_, err := db.Apply(ctx, &b)
	return err
}

// Append adds value to row at the row's max version + 1 and returns that
// version.
func (db *DB) Append(ctx context.Context, row, value []byte) (uint64, error) {
	var b Batch
	b.Append(row, value)
	vs, err := db.Apply(ctx, &b)
	if err != nil {
		return 0, err
	}
	return vs[0], nil
}

// PutEntry adds value to row at version, which must be above the row's max
// version (ErrConflict otherwise).
func (db *DB) PutEntry(ctx context.Context, row []byte, version uint64, value []byte) error {
	var b Batch
	b.PutEntry(row, version, value)
	_, err := db.Apply(ctx, &b)
	return err
}

// Trim deletes row's entries with version <= uptoVersion (clamped to the
// row's max) and returns the row's trimmed watermark afterwards.
func (db *DB) Trim(ctx context.Context, row []byte, uptoVersion uint64) (uint64, error) {
	var b Batch
	b.Trim(row, uptoVersion)
	vs, err := db.Apply(ctx, &b)
	if err != nil {
		return 0, err
	}
	return vs[0], nil
}

// Entry is one Key-Table entry.
type Entry struct {
	Version uint64
	Value   []byte
}

// RowMeta is a row's metadata. A row never written has the zero RowMeta.
type RowMeta struct {
	// MaxVersion is the highest version ever written to the row. It never
	// decreases, not even when Trim deletes every entry.
	MaxVersion uint64
	// TrimmedUpTo is the highest version Trim has deleted up to: entries
	// <= TrimmedUpTo are gone, so a reader resuming below it has missed some.
	TrimmedUpTo uint64
}

// ScanResult is one page of a row.
type ScanResult struct {
	Entries []Entry // versions > afterVersion, ascending
	More    bool    // entries above the last one returned exist
	Meta    RowMeta // the row's metadata, from the same snapshot as Entries
}

// Scan returns up to limit entries of row with version > afterVersion, in
// version order, with the row's metadata read from the same snapshot. A limit
// of 0 returns no entries but still Meta and More. A row never written reads
// as empty, not as an error.
func (db *DB) Scan(ctx context.Context, row []byte, afterVersion uint64, limit int) (ScanResult, error) {
	var res ScanResult
	if err := checkKey("row", row); err != nil {
		return res, err
	}
	if limit < 0 || limit > MaxScanLimit {
		return res, invalidf("scan limit %d outside [0, %d]", limit, MaxScanLimit)
	}
	if err := db.begin(ctx); err != nil {
		return res, err
	}
	defer db.end()

	prefix := rowPrefix(nil, row)
	metaKey := append(prefix[:len(prefix):len(prefix)], rowMetaTag)
	it, err := db.pdb.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: metaKey,
		UpperBound: append(prefix[:len(prefix):len(prefix)], rowEntryTag+1),
	})
	if err != nil {
		return res, internalError("scan", err)
	}
	defer it.Close()

	if it.First() && string(it.Key()) == string(metaKey) {
		if res.Meta, err = decodeRowMeta(it.Value()); err != nil {
			return res, err
		}
	}
	if afterVersion == math.MaxUint64 {
		return res, it.Error()
	}
	start := entryKey(nil, row, afterVersion+1)
	var arena []byte
	// Entries are above afterVersion and at most Meta.MaxVersion, so a row
	// with nothing new (most rows of a sync) costs no allocation.
	var room uint64
	if res.Meta.MaxVersion > afterVersion {
		room = res.Meta.MaxVersion - afterVersion
	}
	res.Entries = make([]Entry, 0, min(uint64(limit), 128, room))
	for valid := it.SeekGE(start); valid; valid = it.Next() {
		if len(res.Entries) == limit {
			res.More = true
			break
		}
		if len(res.Entries)%64 == 63 {
			if err := ctx.Err(); err != nil {
				return ScanResult{}, err
			}
		}
		k := it.Key()
		if len(k) != len(start) {
			return ScanResult{}, corruptf("entry key of length %d in row %q", len(k), row)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return ScanResult{}, internalError("scan", err)
		}
		// Values are copied into shared chunks: a page costs a few
		// allocations, not one per entry.
		if cap(arena)-len(arena) < len(v) {
			arena = make([]byte, 0, max(4096, 2*cap(arena), len(v)))
		}
		arena = append(arena, v...)
		res.Entries = append(res.Entries, Entry{
			Version: entryVersion(k),
			Value:   arena[len(arena)-len(v) : len(arena) : len(arena)],
		})
	}
	if err := it.Error(); err != nil {
		return ScanResult{}, internalError("scan", err)
	}
	return res, nil
}

// RowMeta returns row's metadata; a row never written has the zero value.
func (db *DB) RowMeta(ctx context.Context, row []byte) (RowMeta, error) {
	if err := checkKey("row", row); err != nil {
		return RowMeta{}, err
	}
	if err := db.begin(ctx); err != nil {
		return RowMeta{}, err
	}
	defer db.end()
	return db.loadRowMeta(rowMetaKey(nil, row))
}

func (db *DB) loadRowMeta(metaKey []byte) (RowMeta, error) {
	raw, closer, err := db.pdb.Get(metaKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return RowMeta{}, nil
	}
	if err != nil {
		return RowMeta{}, internalError("read row meta", err)
	}
	defer closer.Close()
	return decodeRowMeta(raw)
}

// quietLogger drops pebble's informational messages, which are about its own
// housekeeping, and keeps errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	pebble.DefaultLogger.Errorf(format, args...)
}
func (quietLogger) Fatalf(format string, args ...any) {
	pebble.DefaultLogger.Fatalf(format, args...)
}
