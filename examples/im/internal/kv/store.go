package kv

import "context"

// Store is what the layers above the engine (packages seq and inbox, the
// storage service) need of it: reads, and atomic batches. *DB is the
// single-node Store; a replicated store (package
// examples/im/internal/replica) is another, which serves the same reads
// from its replica of the data and commits every batch through a
// consensus log before applying it with ApplyCommitted. Code written
// against Store runs unchanged on both.
type Store interface {
	// Get returns the value and version of key, or an error matching
	// ErrNotFound.
	Get(ctx context.Context, key []byte) (value []byte, version uint64, err error)
	// Scan returns a page of row (see DB.Scan).
	Scan(ctx context.Context, row []byte, afterVersion uint64, limit int) (ScanResult, error)
	// RowMeta returns row's metadata.
	RowMeta(ctx context.Context, row []byte) (RowMeta, error)
	// Apply commits b atomically (see DB.Apply).
	Apply(ctx context.Context, b *Batch) ([]uint64, error)
}

var _ Store = (*DB)(nil)
