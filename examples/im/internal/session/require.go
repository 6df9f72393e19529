package session

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/svrkit"
)

// Require returns the server interceptor that checks sessions for a
// client-facing Logicsvr, declared once in its handler constructor
// (logicsvr.Host.Use) instead of in every method. A call of a method of
// service is admitted only with a valid, unrevoked token (as Caller checks
// it) or an unrevoked session the gateway forwarded (see forwarded.go), and
// its handler reads the session's claims with From. The methods named in
// open (full names: Register and Login) are admitted without one, and
// calls of other services pass untouched.
//
// A refused call is answered ErrMissing, ErrInvalid, ErrExpired or
// ErrRevoked (or unavailable, see Caller) before its handler runs, after
// its request was decoded and within its method's concurrency limit.
func (c *Checker) Require(service string, open ...string) svrkit.UnaryServerInterceptor {
	prefix := "/" + service + "/"
	return func(ctx context.Context, req proto.Message, m *svrkit.MethodDesc, next svrkit.UnaryHandler) (proto.Message, error) {
		if !strings.HasPrefix(m.FullName, prefix) || slices.Contains(open, m.FullName) {
			return next(ctx, req)
		}
		cl, err := c.admit(ctx)
		if err != nil {
			return nil, err
		}
		// The session names the user: every call behind this one carries
		// the user's priority, so an overloaded service downstream admits
		// or sheds all of one user's request together (svrkit's overload
		// control).
		ctx = svrkit.WithEntryPriority(ctx, 0, strconv.FormatUint(cl.UserID, 10))
		return next(context.WithValue(ctx, claimsKey{}, &cl), req)
	}
}

type claimsKey struct{}

// From returns the claims of the session that Require admitted the call in
// ctx with. It panics when Require did not admit the call (the method is
// open, or the interceptor was not installed): that is a wiring mistake, and
// the host answers the panic with an internal error rather than let a
// handler act for user 0.
func From(ctx context.Context) Claims {
	c, _ := ctx.Value(claimsKey{}).(*Claims)
	if c == nil {
		panic("session: no session in the context; install Checker.Require with Host.Use")
	}
	return *c
}
