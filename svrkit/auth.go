package svrkit

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/svrkit/svrkit/svrkit/wire"
)

// Service authentication.
//
// A server that requires it (WithRequireAuth) accepts calls only from
// connections that proved an identity — a Logicsvr's name, or an
// operator's — and each service admits only the identities its IDL lists
// as callers (ServiceDesc.Callers). The proof is one Ed25519 signature per
// connection: the server's hello frame carries a fresh nonce, the client
// answers with an auth frame signing it (see package wire). Every later
// call on the connection costs one comparison of the identity against the
// service's caller list, nothing cryptographic.
//
// Why signatures and not TLS or a shared secret: gnet has no TLS, and
// encrypting every frame costs CPU on every call, while the threat this
// answers is a caller that should not be calling at all (anything that can
// reach an internal port). With one key pair per identity, a service holds
// only its own private key: it cannot mint another service's identity, and
// servers need only public keys. What this does not give: secrecy or
// integrity of the bytes after the handshake — an attacker who can
// intercept and modify traffic on the network between services can read and
// change calls. Run services on loopback or a private network, or put the
// links inside an encrypted one (WireGuard, a VPC); say so to users, as the
// README does.

// Keyring maps identities to the Ed25519 public keys that prove them.
type Keyring map[string]ed25519.PublicKey

// WithRequireAuth makes the server require service authentication: a
// request on a connection that has not proved an identity in keys is
// answered Unauthenticated, and one from an identity that the service's
// Callers do not list is answered PermissionDenied, whatever the cmdid.
// The identities in operators may call every service.
func WithRequireAuth(keys Keyring, operators ...string) ServerOption {
	return serverOptionFunc(func(o *serverOptions) {
		o.auth = &serverAuth{keys: keys, operators: operators}
	})
}

// WithIdentity makes the client prove identity with key on every
// connection it opens. Servers that require authentication refuse clients
// without one.
func WithIdentity(identity string, key ed25519.PrivateKey) ClientOption {
	return clientOptionFunc(func(o *clientOptions) { o.identity, o.key = identity, key })
}

// CallerIdentity returns the identity the connection of the call being
// handled proved, or "" when the server does not require authentication
// (or ctx is not a call's).
func CallerIdentity(ctx context.Context) string {
	id, _ := ctx.Value(identityKey{}).(string)
	return id
}

type identityKey struct{}

type serverAuth struct {
	keys      Keyring
	operators []string
}

// hello returns the frame a server sends first on a new connection, and
// the nonce it carries.
func (s *Server) hello() (wire.Header, []byte) {
	nonce := make([]byte, wire.NonceSize)
	_, _ = rand.Read(nonce) // crypto/rand.Read does not fail on Linux
	h := wire.Header{Kind: wire.KindHello}
	if s.opts.auth != nil {
		h.Flags = wire.FlagAuthRequired
	}
	return h, nonce
}

// authenticate checks an auth frame against the connection's nonce. A
// second auth frame on one connection is a protocol error.
func (sc *serverConn) authenticate(f *wire.Frame) error {
	if sc.authTried {
		return fmt.Errorf("second auth frame on one connection")
	}
	sc.authTried = true
	auth := sc.s.opts.auth
	if auth == nil {
		return nil // nothing to prove to this server
	}
	var identity string
	_ = wire.RangeMeta(f.Meta, func(k, v []byte) bool {
		if string(k) == "identity" {
			identity = string(v)
		}
		return true
	})
	key, ok := auth.keys[identity]
	switch {
	case identity == "":
		sc.authErr = "the auth frame names no identity"
	case !ok:
		sc.authErr = fmt.Sprintf("identity %q is not known to this server", identity)
	case !ed25519.Verify(key, wire.AuthMessage(sc.nonce, identity), f.Body):
		sc.authErr = fmt.Sprintf("the signature for identity %q does not verify", identity)
	default:
		sc.identity = identity
		sc.operator = slices.Contains(auth.operators, identity)
		return nil
	}
	sc.s.log.Warn("svrkit: service authentication failed", "peer", sc.c.RemoteAddr(), "reason", sc.authErr)
	return nil
}

// admit decides whether the connection may call m, when the server
// requires authentication; it returns the refusal's code and message.
func (sc *serverConn) admit(m *serverMethod) (Code, string) {
	if sc.identity == "" {
		msg := "this server requires service authentication"
		switch {
		case sc.authErr != "":
			msg += ": " + sc.authErr
		default:
			msg += "; the caller sent no identity"
		}
		return Unauthenticated, msg
	}
	if m == nil || sc.operator || len(m.callers) == 0 || slices.Contains(m.callers, sc.identity) {
		return OK, ""
	}
	return PermissionDenied, fmt.Sprintf("%s may not call %s (its callers are %s)", sc.identity, m.desc.FullName, strings.Join(m.callers, ", "))
}

// readHello reads the server's hello from a new connection and returns
// the auth frame to send, if the client has an identity.
func (o *clientOptions) readHello(br *bufio.Reader, addr string) ([]byte, error) {
	pre, err := br.Peek(wire.PrefixSize)
	if err != nil {
		return nil, fmt.Errorf("no hello from %s: %w", addr, err)
	}
	size, err := wire.FrameSize(pre, o.maxFrameSize)
	if err != nil {
		return nil, fmt.Errorf("hello from %s: %w", addr, err)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(br, buf); err != nil {
		return nil, fmt.Errorf("no hello from %s: %w", addr, err)
	}
	f, err := wire.Parse(buf, o.maxFrameSize)
	if err != nil {
		return nil, fmt.Errorf("hello from %s: %w", addr, err)
	}
	if f.Kind != wire.KindHello || len(f.Body) != wire.NonceSize {
		return nil, fmt.Errorf("%s did not start with a hello frame (got %v): is it a svrkit server?", addr, f.Kind)
	}
	if o.key == nil {
		return nil, nil
	}
	sig := ed25519.Sign(o.key, wire.AuthMessage(f.Body, o.identity))
	md := wire.AppendMeta(nil, "identity", o.identity)
	return wire.AppendFrame(nil, &wire.Header{Kind: wire.KindAuth}, md, "", sig, o.maxFrameSize)
}
