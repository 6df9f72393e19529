// Package session issues and checks the IM backend's session tokens: the
// "Authorization: Bearer <token>" every client-facing CGI but Register and
// Login wants (idl/im/account.proto). Each client-facing Logicsvr checks it
// in one place, the interceptor Require returns, before any handler runs;
// handlers read the caller with From.
//
// # Format
//
// A token is the unpadded base64url encoding of
//
//	format (1 byte, 2)
//	user id (8 bytes, big endian)
//	issued at, expires (8 bytes each: unix seconds, big endian)
//	session counter (8 bytes, big endian): the account's at login
//	device id length (1 byte, 1..64), device id
//	HMAC-SHA256(secret, "svrkit/im/session\x00" || everything before) (32 bytes)
//
// keyed with the deployment's "session_secret" (the same value in the app
// config of every client-facing Logicsvr). Verify recomputes the MAC and
// compares it in constant time before it believes any field, so a token
// cannot be forged or edited without the secret. A token has exactly one
// accepted spelling: Verify refuses any byte outside the base64url alphabet
// (Go's decoder would skip a newline inside it) and non-zero padding bits,
// so a token that verifies is the very string Sign produced.
//
// Then it checks time: a token is refused from its expiry on, and when it
// claims a lifetime longer than the signer's maximum (session_ttl) or to
// be issued in the future — a token minted with a leaked secret cannot
// give itself ten years.
//
// # Revocation
//
// Logout and ChangePassword must end sessions before they expire, without
// storing tokens. Each account keeps a session counter and floors
// (im.SessionState, in the account record): a token carries the counter of
// its login, and is revoked when it is below the account's floor (a
// password change, a logout of every device) or below its device's floor
// (a logout of that device). Issuing a token writes nothing.
//
// Checking costs a storage round trip per user and process at most once a
// RevocationTTL (Checker caches the account's floors; a hit is a map
// lookup), so a token is refused everywhere at most RevocationTTL after its
// revocation is stored. The account Logicsvr waits out that bound before
// Logout and ChangePassword answer: when they answer, the tokens they ended
// are refused by every Logicsvr. A Logicsvr that cannot fetch the floors
// (accountdata restarting) refuses the call as unavailable rather than let
// a revoked token through.
//
// The rest is stateless: the token carries who, which device and until
// when, the MAC vouches for it, and any Logicsvr checks it on its own.
package session

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"github.com/svrkit/svrkit/svrkit"
)

// MetadataKey is the incoming metadata key (the HTTP header, lower-cased)
// that carries the token, as "Bearer <token>".
const MetadataKey = "authorization"

// MaxDeviceIDBytes bounds a device id (account.proto's LoginRequest).
const MaxDeviceIDBytes = 64

// DefaultTTL is a session's lifetime unless the config says otherwise.
const DefaultTTL = 24 * time.Hour

// maxClockSkew is how far in the future a token's issue time may be: the
// Logicsvrs' clocks differ a little.
const maxClockSkew = time.Minute

const (
	format    = 2
	macLabel  = "svrkit/im/session\x00"
	headerLen = 1 + 8 + 8 + 8 + 8 + 1
	macLen    = sha256.Size
	// MaxTokenBytes bounds an encoded token; longer is invalid without
	// decoding it.
	MaxTokenBytes = ((headerLen+MaxDeviceIDBytes+macLen)*8 + 5) / 6
)

// The errors Verify and Caller answer; the messages are what a client sees.
var (
	ErrMissing = svrkit.NewError(svrkit.Unauthenticated, "missing session token")
	ErrInvalid = svrkit.NewError(svrkit.Unauthenticated, "invalid session token")
	ErrExpired = svrkit.NewError(svrkit.Unauthenticated, "session expired; log in again")
	ErrRevoked = svrkit.NewError(svrkit.Unauthenticated, "session revoked; log in again")
)

// Claims is what a token says: which user, on which device, from when until
// when, and the account's session counter at its login.
type Claims struct {
	UserID   uint64
	DeviceID string
	IssuedAt time.Time // unix seconds
	Expires  time.Time // unix seconds; the token is refused from this instant
	Counter  uint64    // im.SessionState.counter at login
}

// Signer signs and verifies tokens with one secret. It is safe for
// concurrent use.
type Signer struct {
	secret []byte
	maxTTL time.Duration
	now    func() time.Time
}

// NewSigner returns a Signer keyed with secret, which must not be empty,
// for sessions of at most maxTTL.
func NewSigner(secret string, maxTTL time.Duration) (*Signer, error) {
	if secret == "" {
		return nil, errors.New("session: empty secret")
	}
	if maxTTL <= 0 {
		return nil, errors.New("session: the maximum session lifetime must be positive")
	}
	return &Signer{secret: []byte(secret), maxTTL: maxTTL, now: time.Now}, nil
}

// MaxTTL returns the longest lifetime a token may have.
func (s *Signer) MaxTTL() time.Duration { return s.maxTTL }

// Issue returns a token for userID on deviceID, valid for ttl from now
// (capped at MaxTTL), carrying the account's session counter.
func (s *Signer) Issue(userID uint64, deviceID string, counter uint64, ttl time.Duration) (string, Claims, error) {
	now := s.now().Truncate(time.Second)
	c := Claims{UserID: userID, DeviceID: deviceID, IssuedAt: now, Expires: now.Add(min(ttl, s.maxTTL)), Counter: counter}
	tok, err := s.Sign(c)
	return tok, c, err
}

// Sign returns the token for c as given; Issue is the usual way. Tests use
// it to mint expired tokens.
func (s *Signer) Sign(c Claims) (string, error) {
	if c.UserID == 0 {
		return "", errors.New("session: user id 0")
	}
	if len(c.DeviceID) == 0 || len(c.DeviceID) > MaxDeviceIDBytes {
		return "", errors.New("session: device id must be 1 to 64 bytes")
	}
	b := make([]byte, headerLen, headerLen+len(c.DeviceID)+macLen)
	b[0] = format
	binary.BigEndian.PutUint64(b[1:], c.UserID)
	binary.BigEndian.PutUint64(b[9:], uint64(c.IssuedAt.Unix()))
	binary.BigEndian.PutUint64(b[17:], uint64(c.Expires.Unix()))
	binary.BigEndian.PutUint64(b[25:], c.Counter)
	b[33] = byte(len(c.DeviceID))
	b = append(b, c.DeviceID...)
	b = s.mac(b, b)
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// mac appends the MAC of msg to dst.
func (s *Signer) mac(dst, msg []byte) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(macLabel))
	m.Write(msg)
	return m.Sum(dst)
}

// canonicalBase64URL reports whether tok is spelt only with the unpadded
// base64url alphabet, so that decoding cannot skip anything.
func canonicalBase64URL(tok string) bool {
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

var strictB64 = base64.RawURLEncoding.Strict()

// Verify checks token and returns its claims: ErrInvalid for anything
// malformed, not signed with this secret or claiming a lifetime over
// MaxTTL, ErrExpired for a genuine token past its expiry. It does not know
// about revocations; Checker does.
func (s *Signer) Verify(token string) (Claims, error) {
	if len(token) > MaxTokenBytes || !canonicalBase64URL(token) {
		return Claims{}, ErrInvalid
	}
	b, err := strictB64.DecodeString(token)
	if err != nil || len(b) < headerLen+1+macLen {
		return Claims{}, ErrInvalid
	}
	body, sum := b[:len(b)-macLen], b[len(b)-macLen:]
	if !hmac.Equal(sum, s.mac(nil, body)) {
		return Claims{}, ErrInvalid
	}
	// Signed by us, so well formed unless the format changed: check anyway.
	n := int(body[33])
	if body[0] != format || n == 0 || n > MaxDeviceIDBytes || len(body) != headerLen+n {
		return Claims{}, ErrInvalid
	}
	issued, expires := int64(binary.BigEndian.Uint64(body[9:])), int64(binary.BigEndian.Uint64(body[17:]))
	c := Claims{
		UserID:   binary.BigEndian.Uint64(body[1:]),
		IssuedAt: time.Unix(issued, 0),
		Expires:  time.Unix(expires, 0),
		Counter:  binary.BigEndian.Uint64(body[25:]),
		DeviceID: string(body[headerLen:]),
	}
	now := s.now()
	// In seconds, as signed: a lifetime past MaxTTL or an issue time in
	// the future is a token no Logicsvr with this config would issue.
	if c.UserID == 0 || expires < issued || expires-issued > int64(s.maxTTL/time.Second) ||
		issued > now.Add(maxClockSkew).Unix() {
		return Claims{}, ErrInvalid
	}
	if !now.Before(c.Expires) {
		return Claims{}, ErrExpired
	}
	return c, nil
}

// Token returns the token the call in ctx came with (the "authorization"
// metadata, "Bearer <token>"): ErrMissing without one, ErrInvalid for
// another scheme.
func Token(ctx context.Context) (string, error) {
	return bearer(svrkit.IncomingMetadata(ctx)[MetadataKey])
}

// bearer returns the token of an authorization value, "Bearer <token>".
func bearer(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", ErrMissing
	}
	tok, ok := cutPrefixFold(v, "bearer ")
	if !ok {
		return "", ErrInvalid
	}
	return strings.TrimSpace(tok), nil
}

// Caller returns the claims of the token the call in ctx came with, as
// Token and Verify check it (not revocations: Checker.Caller does).
func (s *Signer) Caller(ctx context.Context) (Claims, error) {
	tok, err := Token(ctx)
	if err != nil {
		return Claims{}, err
	}
	return s.Verify(tok)
}

// Header returns the header value (and metadata value) that carries token.
func Header(token string) string { return "Bearer " + token }

// cutPrefixFold is strings.CutPrefix ignoring ASCII case: RFC 6750 lets
// clients spell the scheme "bearer".
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}
