package kv

import (
	"errors"
	"fmt"

	"github.com/svrkit/svrkit/svrkit"
)

// Error kinds. Every error the store returns matches one of these with
// errors.Is, and carries the svrkit code a service answers with, which
// svrkit.CodeOf and svrkit.AsError read:
//
//	ErrNotFound  svrkit.NotFound         the key does not exist
//	ErrConflict  svrkit.Aborted          a version condition failed (*ConflictError)
//	ErrInvalid   svrkit.InvalidArgument  the request itself is wrong
//	ErrCorrupt   svrkit.DataLoss         a stored record does not decode
//	ErrClosed    svrkit.Unavailable      the store is closed
//
// Failures of the disk or of pebble are svrkit.Internal and match none of
// the kinds. A canceled or expired context is returned as ctx.Err().
var (
	ErrNotFound = errors.New("kv: not found")
	ErrConflict = errors.New("kv: version conflict")
	ErrInvalid  = errors.New("kv: invalid argument")
	ErrCorrupt  = errors.New("kv: corrupt record")
	ErrClosed   = errors.New("kv: closed")
)

// kindError is an error of one kind with its svrkit status.
type kindError struct {
	kind   error
	status *svrkit.Error
}

func (e *kindError) Error() string   { return e.status.Message() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.status} }

func newKindError(kind error, code svrkit.Code, msg string) error {
	return &kindError{kind: kind, status: svrkit.NewError(code, msg)}
}

func notFound(key []byte) error {
	return newKindError(ErrNotFound, svrkit.NotFound, fmt.Sprintf("kv: key %q not found", key))
}

func invalidf(format string, args ...any) error {
	return newKindError(ErrInvalid, svrkit.InvalidArgument, "kv: "+fmt.Sprintf(format, args...))
}

func corruptf(format string, args ...any) error {
	return newKindError(ErrCorrupt, svrkit.DataLoss, "kv: corrupt "+fmt.Sprintf(format, args...))
}

var errClosed = newKindError(ErrClosed, svrkit.Unavailable, "kv: store is closed")

// internalError wraps a failure of pebble or the disk. It keeps the cause in
// the chain (errors.Is on it still works) and reports svrkit.Internal.
func internalError(op string, err error) error {
	return &internalErr{cause: err, status: svrkit.Errorf(svrkit.Internal, "kv: %s: %v", op, err)}
}

type internalErr struct {
	cause  error
	status *svrkit.Error
}

func (e *internalErr) Error() string   { return e.status.Message() }
func (e *internalErr) Unwrap() []error { return []error{e.cause, e.status} }

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

// Unwrap makes the error match ErrConflict and carry svrkit.Aborted: the
// caller read stale state and should re-read and retry its read-modify-write.
func (e *ConflictError) Unwrap() []error {
	return []error{ErrConflict, svrkit.NewError(svrkit.Aborted, e.Error())}
}
