package kv

import (
	"errors"
	"fmt"
)

// Error kinds. Every error the store returns matches one of these with
// errors.Is; they are plain Go errors, and the storage service maps them to
// its status codes in one place:
//
//	ErrNotFound  the key does not exist
//	ErrConflict  a version condition failed (*ConflictError)
//	ErrInvalid   the request itself is wrong
//	ErrCorrupt   a stored record does not decode
//	ErrClosed    the store is closed
//
// Failures of the disk or of pebble match none of the kinds (they keep
// pebble's error in their chain). A canceled or expired context is
// returned as ctx.Err().
var (
	ErrNotFound = errors.New("kv: not found")
	ErrConflict = errors.New("kv: version conflict")
	ErrInvalid  = errors.New("kv: invalid argument")
	ErrCorrupt  = errors.New("kv: corrupt record")
	ErrClosed   = errors.New("kv: closed")
)

// kindError is an error of one kind with its own message.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func notFound(key []byte) error {
	return &kindError{ErrNotFound, fmt.Sprintf("kv: key %q not found", key)}
}

func invalidf(format string, args ...any) error {
	return &kindError{ErrInvalid, "kv: " + fmt.Sprintf(format, args...)}
}

func corruptf(format string, args ...any) error {
	return &kindError{ErrCorrupt, "kv: corrupt " + fmt.Sprintf(format, args...)}
}

var errClosed = &kindError{ErrClosed, "kv: store is closed"}

// internalError wraps a failure of pebble or the disk, keeping it in the
// chain (errors.Is on it still works).
func internalError(op string, err error) error {
	return fmt.Errorf("kv: %s: %w", op, err)
}

// ConflictError is the ErrConflict a batch returns when one of its
// conditions fails. Nothing of the batch was written.
type ConflictError struct {
	// Op is the index of the failed operation in the batch.
	Op int
	// Key is the KV key or, when Row is true, the Key-Table row.
	Key []byte
	Row bool
	// For a KV key: the expected version, and the actual one (0 when the
	// key does not exist). For a row (PutEntry): the entry version written,
	// and the row's max version it had to exceed.
	Expected, Actual uint64
}

func (e *ConflictError) Error() string {
	if e.Row {
		return fmt.Sprintf("kv: version conflict in batch op %d: entry version %d of row %q is not above the row's max version %d",
			e.Op, e.Expected, e.Key, e.Actual)
	}
	return fmt.Sprintf("kv: version conflict in batch op %d: key %q has version %d, expected %d",
		e.Op, e.Key, e.Actual, e.Expected)
}

// Unwrap makes the error match ErrConflict: the caller read stale state
// and should re-read and retry its read-modify-write.
func (e *ConflictError) Unwrap() error { return ErrConflict }
