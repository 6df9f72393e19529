package svrkit

import (
	"context"
	"errors"
	"fmt"
)

// Error is a failed call's status: a code and a readable message. Handlers
// return one to choose the code the caller sees; clients get one back for
// every failure, whether the server, the network or the deadline caused it.
// Match it with errors.As or CodeOf, never by its text.
type Error struct {
	code Code
	msg  string
}

// NewError returns an error with the given code and message.
func NewError(c Code, msg string) *Error { return &Error{code: c, msg: msg} }

// Errorf returns an error with the given code and a formatted message.
func Errorf(c Code, format string, args ...any) *Error {
	return &Error{code: c, msg: fmt.Sprintf(format, args...)}
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

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, svrkit.NewError(svrkit.NotFound, "")) matches any NotFound.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.code == e.code
}

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
// wrapping others with the code CodeOf gives them. It returns nil for nil.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{code: CodeOf(err), msg: err.Error()}
}
