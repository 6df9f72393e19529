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
//	version (1 byte, 1)
//	user id (8 bytes, big endian)
//	issued at, expires (8 bytes each: unix seconds, big endian)
//	device id length (1 byte, 1..64), device id
//	HMAC-SHA256 over everything before it (32 bytes)
//
// keyed with the deployment's "session_secret" (the same value in the app
// config of every client-facing Logicsvr). Verify recomputes the MAC and
// compares it in constant time before it believes any field, so a token
// cannot be forged or edited without the secret; then it checks the expiry.
//
// # Why stateless
//
// Nothing about a session is stored: the token carries who and until when,
// and the MAC vouches for it. So a token stays valid across restarts of any
// Logicsvr (the account Logicsvr that issued it may be gone; send and sync
// check it on their own), and checking it costs a hash on the CPU, not a
// storage round trip on every call.
//
// What it costs: a token cannot be revoked before it expires. There is no
// server-side logout — a client "logs out" by forgetting its token, and a
// stolen token works until its expiry (session_ttl, 24h by default). The
// only way to end every session early is to change session_secret, which
// ends all of them. A deployment that needs per-session revocation would add
// a deny list (a storage read per call, the cost avoided here) or short
// tokens with a refresh step.
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

const (
	version   = 1
	headerLen = 1 + 8 + 8 + 8 + 1
	macLen    = sha256.Size
	// MaxTokenBytes bounds an encoded token; longer is invalid without
	// decoding it.
	MaxTokenBytes = (headerLen + MaxDeviceIDBytes + macLen + 2) / 3 * 4
)

// The errors Verify and Caller answer; the messages are what a client sees.
var (
	ErrMissing = svrkit.NewError(svrkit.Unauthenticated, "missing session token")
	ErrInvalid = svrkit.NewError(svrkit.Unauthenticated, "invalid session token")
	ErrExpired = svrkit.NewError(svrkit.Unauthenticated, "session expired; log in again")
)

// Claims is what a token says: which user, on which device, from when until
// when.
type Claims struct {
	UserID   uint64
	DeviceID string
	IssuedAt time.Time // unix seconds
	Expires  time.Time // unix seconds; the token is refused from this instant
}

// Signer signs and verifies tokens with one secret. It is safe for
// concurrent use.
type Signer struct {
	secret []byte
	now    func() time.Time
}

// NewSigner returns a Signer keyed with secret, which must not be empty.
func NewSigner(secret string) (*Signer, error) {
	if secret == "" {
		return nil, errors.New("session: empty secret")
	}
	return &Signer{secret: []byte(secret), now: time.Now}, nil
}

// Issue returns a token for userID on deviceID, valid for ttl from now.
func (s *Signer) Issue(userID uint64, deviceID string, ttl time.Duration) (string, Claims, error) {
	now := s.now().Truncate(time.Second)
	c := Claims{UserID: userID, DeviceID: deviceID, IssuedAt: now, Expires: now.Add(ttl)}
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
	b[0] = version
	binary.BigEndian.PutUint64(b[1:], c.UserID)
	binary.BigEndian.PutUint64(b[9:], uint64(c.IssuedAt.Unix()))
	binary.BigEndian.PutUint64(b[17:], uint64(c.Expires.Unix()))
	b[25] = byte(len(c.DeviceID))
	b = append(b, c.DeviceID...)
	b = s.mac(b, b)
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// mac appends the MAC of msg to dst.
func (s *Signer) mac(dst, msg []byte) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write(msg)
	return m.Sum(dst)
}

// Verify checks token and returns its claims: ErrInvalid for anything
// malformed or not signed with this secret, ErrExpired for a genuine token
// past its expiry.
func (s *Signer) Verify(token string) (Claims, error) {
	if len(token) > MaxTokenBytes {
		return Claims{}, ErrInvalid
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < headerLen+1+macLen {
		return Claims{}, ErrInvalid
	}
	body, sum := b[:len(b)-macLen], b[len(b)-macLen:]
	if !hmac.Equal(sum, s.mac(nil, body)) {
		return Claims{}, ErrInvalid
	}
	// Signed by us, so well formed unless the format changed: check anyway.
	n := int(body[25])
	if body[0] != version || n == 0 || n > MaxDeviceIDBytes || len(body) != headerLen+n {
		return Claims{}, ErrInvalid
	}
	c := Claims{
		UserID:   binary.BigEndian.Uint64(body[1:]),
		IssuedAt: time.Unix(int64(binary.BigEndian.Uint64(body[9:])), 0),
		Expires:  time.Unix(int64(binary.BigEndian.Uint64(body[17:])), 0),
		DeviceID: string(body[headerLen:]),
	}
	if c.UserID == 0 {
		return Claims{}, ErrInvalid
	}
	if !s.now().Before(c.Expires) {
		return Claims{}, ErrExpired
	}
	return c, nil
}

// Caller returns the claims of the token the call in ctx came with (the
// "authorization" metadata, "Bearer <token>"): ErrMissing without one,
// otherwise as Verify.
func (s *Signer) Caller(ctx context.Context) (Claims, error) {
	v := strings.TrimSpace(svrkit.IncomingMetadata(ctx)[MetadataKey])
	if v == "" {
		return Claims{}, ErrMissing
	}
	tok, ok := cutPrefixFold(v, "bearer ")
	if !ok {
		return Claims{}, ErrInvalid
	}
	return s.Verify(strings.TrimSpace(tok))
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
