package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The kinds of failure a caller can branch on with errors.Is. Each error
// the package returns wraps one of them and, where there is one, the cause
// underneath (a context error, the NATS client's or JetStream's own error),
// so errors.Is(err, context.DeadlineExceeded) also works.
var (
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("queue: client closed")
	// ErrInvalidKey: a key that is empty, longer than MaxKeyLen, or holds
	// a line break or another control character.
	ErrInvalidKey = errors.New("queue: invalid key")
	// ErrInvalidID: a message id that is empty, longer than MaxIDLen, or
	// holds a control character.
	ErrInvalidID = errors.New("queue: invalid message id")
	// ErrTooLarge: a payload that, with its headers, exceeds the largest
	// message the server accepts.
	ErrTooLarge = errors.New("queue: payload too large")
	// ErrUnavailable: the queue did not acknowledge in time: the server is
	// unreachable, or a clustered stream has no leader or no quorum. The
	// item may or may not have been stored; retry with the same id
	// (PublishWithID) and it is stored once.
	ErrUnavailable = errors.New("queue: unavailable")
	// ErrConfig: a Config or Option that cannot work, or one that
	// contradicts the stream already on the server (its partition count).
	ErrConfig = errors.New("queue: bad configuration")
	// ErrRejected: the server refused the item for good (the stream is
	// full, the account is out of storage); retrying will not help until
	// an operator acts.
	ErrRejected = errors.New("queue: rejected by the server")
)

// Permanent marks a handler's error as one that no retry can fix (a
// payload the handler cannot decode, a reference to something deleted):
// the message goes to the dead-letter stream at once instead of being
// redelivered. errors.Is and errors.As see through it to err.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (p *permanentError) Error() string { return "permanent: " + p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

func isPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// retryable reports whether a failed JetStream request may succeed if sent
// again: nobody answered (a stream or meta leader is being elected, the
// connection is being re-established) or the cluster said so.
func retryable(err error) bool {
	switch {
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrDisconnected):
		return true
	}
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode {
		case 10008, // JetStream system temporarily unavailable
			10118, 10194, // stream is offline
			10119, 10195: // consumer is offline
			return true
		}
	}
	return false
}

// unavailable wraps the error of an operation that ran out of time,
// keeping the last attempt's error and the context's.
func unavailable(op string, last, ctxErr error) error {
	const why = "no answer from the queue before the deadline (not running, unreachable, or a cluster without a leader)"
	if errors.Is(last, context.DeadlineExceeded) || errors.Is(last, context.Canceled) {
		last = nil // the attempt's own deadline says nothing more
	}
	if last == nil {
		return fmt.Errorf("queue: %s: %s: %w: %w", op, why, ErrUnavailable, ctxErr)
	}
	return fmt.Errorf("queue: %s: %s; last attempt: %v: %w: %w", op, why, last, ErrUnavailable, ctxErr)
}
