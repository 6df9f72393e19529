package svrkit

import (
	"context"
	"errors"
	"slices"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/anypb"
)

// A redirect is a server's answer "not here: that endpoint serves this
// call" — a replica that is not its group's leader names the leader. It
// is an Unavailable error (a caller that does not know redirects just sees
// a refused call) carrying a google.rpc.ErrorInfo detail with
// reason "REDIRECT", domain "svrkit" and the endpoint under "endpoint".
//
// The Client follows a redirect when the endpoint it names is one of the
// service's own (from the routing table; a server cannot send a caller to
// an address nobody configured), and from then on sends every call of
// that Client there first, whatever its routing key, until that endpoint
// fails or redirects elsewhere. The refused call had not run, so it is
// retried there whether or not its method is idempotent, at most
// maxRedirects times per call. Redirects after the first wait a little
// (growing, within the call's deadline): a group in the middle of an
// election may bounce a call between replicas until it settles.
const (
	redirectReason = "REDIRECT"
	redirectDomain = "svrkit"
	redirectKey    = "endpoint"
	maxRedirects   = 8
)

// redirectPause waits before following the n-th redirect of a call; false
// if the call's context ended first.
func redirectPause(ctx context.Context, n int) bool {
	t := time.NewTimer(time.Duration(n*n) * 10 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Redirect returns the Unavailable error that sends the caller to the
// endpoint addr (host:port, as the caller's routing table spells it).
func Redirect(addr, msg string) *Error {
	e := NewError(Unavailable, msg)
	info, err := anypb.New(&errdetails.ErrorInfo{
		Reason: redirectReason, Domain: redirectDomain,
		Metadata: map[string]string{redirectKey: addr},
	})
	if err == nil {
		e.details = append(e.details, info)
	}
	return e
}

// RedirectOf returns the endpoint a redirect error names.
func RedirectOf(err error) (addr string, ok bool) {
	var e *Error
	if !errors.As(err, &e) || e.code != Unavailable {
		return "", false
	}
	for _, d := range e.details {
		var info errdetails.ErrorInfo
		if d.MessageIs(&info) && d.UnmarshalTo(&info) == nil &&
			info.Reason == redirectReason && info.Domain == redirectDomain && info.Metadata[redirectKey] != "" {
			return info.Metadata[redirectKey], true
		}
	}
	return "", false
}

// redirectTarget returns the client's endpoint at addr, or nil when addr
// is not one of them.
func (c *Client) redirectTarget(addr string) *endpoint {
	p := c.eps.Load()
	if p == nil {
		return nil
	}
	if i := slices.IndexFunc(*p, func(ep *endpoint) bool { return ep.addr == addr }); i >= 0 {
		return (*p)[i]
	}
	return nil
}
