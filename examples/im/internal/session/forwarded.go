package session

import (
	"context"
	"strconv"
	"time"

	"github.com/svrkit/svrkit/svrkit"
)

// Forwarded sessions: the trust boundary of the long link.
//
// The gateway (idl/im/gateway.proto) checks a connection's token once, when
// the connection authenticates, and forwards each of its requests to the
// Logicsvr that serves it with the session's claims in metadata instead of
// the token. A Logicsvr believes those claims only from a caller whose
// service authentication (svrkit.CallerIdentity) proved it is the gateway:
// the gateway's Ed25519 key is what vouches for them, as the session
// secret's MAC vouches for a token. From any other caller — an HTTP client
// (which has no identity, and whose headers become metadata), another
// Logicsvr, an operator — the forwarded keys are ignored and the call needs
// a token like any other. The IDL backs this up: the client-facing
// services list the gateway as their only RPC caller (operators aside),
// but the check here does not depend on that list.

// GatewayIdentity is the service identity (the Logicsvr name) whose
// forwarded sessions are trusted.
const GatewayIdentity = "gateway"

// The metadata keys of a forwarded session.
const (
	ForwardedUserKey    = "im-session-user"
	ForwardedDeviceKey  = "im-session-device"
	ForwardedIssuedKey  = "im-session-issued"  // unix seconds
	ForwardedExpiresKey = "im-session-expires" // unix seconds
	ForwardedCounterKey = "im-session-counter" // Claims.Counter
)

// ForwardMetadata returns the metadata that forwards c's session; the
// gateway sends it with every call it forwards.
func ForwardMetadata(c Claims) svrkit.Metadata {
	return svrkit.Metadata{
		ForwardedUserKey:    strconv.FormatUint(c.UserID, 10),
		ForwardedDeviceKey:  c.DeviceID,
		ForwardedIssuedKey:  strconv.FormatInt(c.IssuedAt.Unix(), 10),
		ForwardedExpiresKey: strconv.FormatInt(c.Expires.Unix(), 10),
		ForwardedCounterKey: strconv.FormatUint(c.Counter, 10),
	}
}

// admit returns the claims a call is made with: the forwarded session when
// the caller is the gateway and forwarded one, the token's otherwise (as
// Caller). A forwarded session is checked for revocation like a token, so
// a logout or password change ends a long link's calls within
// RevocationTTL even before the gateway closes the link.
func (c *Checker) admit(ctx context.Context) (Claims, error) {
	if svrkit.CallerIdentity(ctx) == GatewayIdentity {
		if md := svrkit.IncomingMetadata(ctx); md[ForwardedUserKey] != "" {
			cl, err := c.signer.forwarded(md)
			if err != nil {
				return Claims{}, err
			}
			return c.unrevoked(ctx, cl)
		}
	}
	return c.Caller(ctx)
}

// forwarded reads a forwarded session. The gateway wrote it, so anything
// malformed is a bug there: refused as an invalid session all the same.
func (s *Signer) forwarded(md svrkit.Metadata) (Claims, error) {
	user, err := strconv.ParseUint(md[ForwardedUserKey], 10, 64)
	if err != nil || user == 0 {
		return Claims{}, ErrInvalid
	}
	issued, err1 := strconv.ParseInt(md[ForwardedIssuedKey], 10, 64)
	expires, err2 := strconv.ParseInt(md[ForwardedExpiresKey], 10, 64)
	counter, err3 := strconv.ParseUint(md[ForwardedCounterKey], 10, 64)
	device := md[ForwardedDeviceKey]
	if err1 != nil || err2 != nil || err3 != nil || device == "" || len(device) > MaxDeviceIDBytes {
		return Claims{}, ErrInvalid
	}
	c := Claims{UserID: user, DeviceID: device, IssuedAt: time.Unix(issued, 0), Expires: time.Unix(expires, 0), Counter: counter}
	if !s.now().Before(c.Expires) {
		return Claims{}, ErrExpired
	}
	return c, nil
}
