package svrkit

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Error is a failed call's status: a code, a readable message, optionally
// the error that caused it and typed details. Handlers return one to choose
// the code the caller sees; clients get one back for every failure, whether
// the server, the network or the deadline caused it. Match it with
// errors.As or CodeOf, never by its text.
//
// The cause stays on the side that created the error: it is for errors.Is
// and errors.As there (a storage layer's ErrNotFound under the NotFound a
// handler returns), and only its text, as part of the message, crosses the
// wire. Details cross the wire whole (see wire's error responses), so a
// caller can branch on typed data instead of parsing a message.
type Error struct {
	code    Code
	msg     string
	cause   error
	details []*anypb.Any
}

// NewError returns an error with the given code and message.
func NewError(c Code, msg string) *Error { return &Error{code: c, msg: msg} }

// Errorf returns an error with the given code and a message formatted as
// fmt.Errorf formats it. An operand of a %w verb becomes the error's cause,
// so errors.Is and errors.As see through it:
//
//	return svrkit.Errorf(svrkit.NotFound, "user %d: %w", id, err)
func Errorf(c Code, format string, args ...any) *Error {
	wrapped := fmt.Errorf(format, args...)
	e := &Error{code: c, msg: wrapped.Error()}
	switch u := wrapped.(type) {
	case interface{ Unwrap() error }:
		e.cause = u.Unwrap()
	case interface{ Unwrap() []error }:
		e.cause = wrapped // keeps every %w operand reachable
	}
	return e
}

// Code returns the error's status code.
func (e *Error) Code() Code { return e.code }

// Message returns the error's message without the code.
func (e *Error) Message() string { return e.msg }

func (e *Error) Error() string {
	if e.msg == "" {
		return "svrkit: " + e.code.String()
	}
	return "svrkit: " + e.code.String() + ": " + e.msg
}

// Unwrap returns the error's cause, or nil.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, svrkit.NewError(svrkit.NotFound, "")) matches any NotFound.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.code == e.code
}

// AddDetail attaches a typed detail (any protobuf message; an *anypb.Any
// is attached as it is) that travels to the caller with the error. It
// returns e, for chaining, or an error if the message cannot be encoded.
func (e *Error) AddDetail(m proto.Message) (*Error, error) {
	if a, ok := m.(*anypb.Any); ok {
		e.details = append(e.details, a)
		return e, nil
	}
	a, err := anypb.New(m)
	if err != nil {
		return e, fmt.Errorf("svrkit: error detail: %w", err)
	}
	e.details = append(e.details, a)
	return e, nil
}

// Details returns the error's typed details. Read one with
// anypb.UnmarshalTo, or UnmarshalNew when the type is registered.
func (e *Error) Details() []*anypb.Any { return e.details }

// CodeOf returns the status code of err: OK for nil, the code of an *Error
// anywhere in its chain, Canceled or DeadlineExceeded for the context errors,
// and Unknown for anything else.
func CodeOf(err error) Code {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.code
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return Canceled
	}
	return Unknown
}

// AsError converts any error into an *Error, keeping an existing one and
// wrapping others (as their cause) with the code CodeOf gives them. It
// returns nil for nil.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{code: CodeOf(err), msg: err.Error(), cause: err}
}

// appendDetails encodes an error response's body: a google.rpc.Status
// carrying only the details (the code and the message travel in the
// frame), or nothing when there are none.
func (e *Error) appendDetails(b []byte) ([]byte, error) {
	if len(e.details) == 0 {
		return b, nil
	}
	return marshalOpts.MarshalAppend(b, &status.Status{Details: e.details})
}

// errorFromWire rebuilds an error response's *Error. A body that does not
// decode loses its details, not the status.
func errorFromWire(c Code, msg, body []byte) *Error {
	e := &Error{code: c, msg: string(msg)}
	if len(body) > 0 {
		var st status.Status
		if proto.Unmarshal(body, &st) == nil {
			e.details = st.Details
		}
	}
	return e
}
