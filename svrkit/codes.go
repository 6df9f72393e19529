package svrkit

import "strconv"

// Code is a call's status. The values 0–16 mean what gRPC's codes mean, so
// people who know gRPC read them at once; 17 (Overloaded) is svrkit's own; values from AppCodeBase up belong to
// applications (the IM backend's "wrong password" is one), and cross the wire
// unchanged.
type Code uint32

// The framework's status codes.
const (
	OK                 Code = 0
	Canceled           Code = 1
	Unknown            Code = 2
	InvalidArgument    Code = 3
	DeadlineExceeded   Code = 4
	NotFound           Code = 5
	AlreadyExists      Code = 6
	PermissionDenied   Code = 7
	ResourceExhausted  Code = 8
	FailedPrecondition Code = 9
	Aborted            Code = 10
	OutOfRange         Code = 11
	Unimplemented      Code = 12
	Internal           Code = 13
	Unavailable        Code = 14
	DataLoss           Code = 15
	Unauthenticated    Code = 16
	// Overloaded refuses a request, unrun, because the server is
	// overloaded and sheds the request's priority (see WithOverloadControl).
	// It is never retried on the same endpoint; being unrun, it may be
	// retried on another.
	Overloaded Code = 17
)

// AppCodeBase is the first application-defined code. Codes between
// Unauthenticated and AppCodeBase are reserved for the framework.
const AppCodeBase Code = 1000

var codeNames = [...]string{
	OK:                 "ok",
	Canceled:           "canceled",
	Unknown:            "unknown",
	InvalidArgument:    "invalid_argument",
	DeadlineExceeded:   "deadline_exceeded",
	NotFound:           "not_found",
	AlreadyExists:      "already_exists",
	PermissionDenied:   "permission_denied",
	ResourceExhausted:  "resource_exhausted",
	FailedPrecondition: "failed_precondition",
	Aborted:            "aborted",
	OutOfRange:         "out_of_range",
	Unimplemented:      "unimplemented",
	Internal:           "internal",
	Unavailable:        "unavailable",
	DataLoss:           "data_loss",
	Unauthenticated:    "unauthenticated",
	Overloaded:         "overloaded",
}

// String returns the code's snake_case name (as Connect spells them), or
// "app_N" / "code_N" for application and unassigned codes.
func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	if c >= AppCodeBase {
		return "app_" + strconv.FormatUint(uint64(c), 10)
	}
	return "code_" + strconv.FormatUint(uint64(c), 10)
}

// CodeFromString parses what String returns. ok is false for names it does
// not know.
func CodeFromString(s string) (c Code, ok bool) {
	for i, n := range codeNames {
		if n == s {
			return Code(i), true
		}
	}
	for _, p := range []string{"app_", "code_"} {
		if len(s) > len(p) && s[:len(p)] == p {
			n, err := strconv.ParseUint(s[len(p):], 10, 32)
			if err == nil {
				return Code(n), true
			}
		}
	}
	return Unknown, false
}
