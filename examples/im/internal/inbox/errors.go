package inbox

import (
	"errors"
	"fmt"

	"github.com/svrkit/svrkit/svrkit"
)

// Error kinds of this package; each error matches its kind with errors.Is and
// carries the svrkit code the sync service answers with (svrkit.CodeOf):
//
//	ErrMalformedSyncKey  svrkit.InvalidArgument  the key is damaged, edited or another user's
//	ErrFutureSyncKey     svrkit.OutOfRange       the key claims versions the server never wrote
//	ErrInvalid           svrkit.InvalidArgument  any other bad argument
//	ErrCorrupt           svrkit.DataLoss         a stored record does not decode
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

type kindError struct {
	kind   error
	status *svrkit.Error
}

func (e *kindError) Error() string   { return e.status.Message() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.status} }

func newError(kind error, code svrkit.Code, format string, args ...any) error {
	return &kindError{kind: kind, status: svrkit.NewError(code, kind.Error()+": "+fmt.Sprintf(format, args...))}
}

func malformedKey(format string, args ...any) error {
	return newError(ErrMalformedSyncKey, svrkit.InvalidArgument, format, args...)
}

func invalidf(format string, args ...any) error {
	return newError(ErrInvalid, svrkit.InvalidArgument, format, args...)
}

func corruptf(format string, args ...any) error {
	return newError(ErrCorrupt, svrkit.DataLoss, format, args...)
}
