package inbox

import (
	"errors"
	"fmt"
)

// Error kinds of this package; each error matches its kind with errors.Is.
// They are plain Go errors; the storage service maps them to its status
// codes (in parentheses) in one place:
//
//	ErrMalformedSyncKey  the key is damaged, edited or another user's (InvalidArgument)
//	ErrFutureSyncKey     the key claims versions the server never wrote (OutOfRange)
//	ErrInvalid           any other bad argument (InvalidArgument)
//	ErrCorrupt           a stored record does not decode (DataLoss)
//
// A client that gets ErrMalformedSyncKey or ErrFutureSyncKey should drop its
// key, reload its state from the data services and sync from CurrentKey.
// Errors of package kv (storage failures, conflicts) pass through unchanged.
var (
	ErrMalformedSyncKey = errors.New("inbox: malformed sync key")
	ErrFutureSyncKey    = errors.New("inbox: sync key from the future")
	ErrInvalid          = errors.New("inbox: invalid argument")
	ErrCorrupt          = errors.New("inbox: corrupt record")
)

// newError returns an error of kind whose message is the kind's and the
// details'.
func newError(kind error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, args...))
}

func malformedKey(format string, args ...any) error {
	return newError(ErrMalformedSyncKey, format, args...)
}

func invalidf(format string, args ...any) error {
	return newError(ErrInvalid, format, args...)
}

func corruptf(format string, args ...any) error {
	return newError(ErrCorrupt, format, args...)
}
