package session

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// DeviceCookieTTL is how long a device cookie proves its device: longer
// than a session, since it is for the login after a session ends.
const DeviceCookieTTL = 180 * 24 * time.Hour

// Device cookies, after OWASP's "slow down online guessing attacks with
// device cookies": a successful login answers one, and a login that sends
// it back proves the device logged in to this account before. Such an
// attempt is throttled under the cookie alone, not under its account and
// client address, so an attacker who locks an account with wrong
// passwords does not lock out its owner's devices; a stolen cookie buys
// the thief only that cookie's few attempts (the password is still
// needed). A cookie is not a session and grants nothing else.
//
// Format, unpadded base64url of:
//
//	format (1 byte, 1)
//	user id (8 bytes), issued at (8 bytes, unix seconds), id (8 random bytes)
//	login name length (1 byte), login name
//	HMAC-SHA256(session secret, "svrkit/im/device-cookie\x00" || everything before), first 16 bytes
const (
	cookieFormat    = 1
	cookieLabel     = "svrkit/im/device-cookie\x00"
	cookieHeaderLen = 1 + 8 + 8 + 8 + 1
	cookieMACLen    = 16
	maxCookieName   = 64
	// maxCookieBytes bounds an encoded cookie.
	maxCookieBytes = ((cookieHeaderLen+maxCookieName+cookieMACLen)*8 + 5) / 6
)

// DeviceCookie is what a device cookie says.
type DeviceCookie struct {
	UserID   uint64
	Name     string // the login name it was issued for
	ID       uint64 // random: the key its attempts are throttled under
	IssuedAt time.Time
}

// IssueDeviceCookie returns a new device cookie for the user with this
// login name.
func (s *Signer) IssueDeviceCookie(userID uint64, name string) string {
	if len(name) > maxCookieName {
		return ""
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	b := make([]byte, cookieHeaderLen, cookieHeaderLen+len(name)+sha256.Size)
	b[0] = cookieFormat
	binary.BigEndian.PutUint64(b[1:], userID)
	binary.BigEndian.PutUint64(b[9:], uint64(s.now().Unix()))
	copy(b[17:25], id[:])
	b[25] = byte(len(name))
	b = append(b, name...)
	b = append(b, s.cookieMAC(b)[:cookieMACLen]...)
	return strictB64.EncodeToString(b)
}

func (s *Signer) cookieMAC(msg []byte) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(cookieLabel))
	m.Write(msg)
	return m.Sum(nil)
}

// VerifyDeviceCookie returns what cookie says if this secret issued it for
// the login name, less than DeviceCookieTTL ago; ok is false for anything
// else, which a login treats as no cookie.
func (s *Signer) VerifyDeviceCookie(cookie, name string) (DeviceCookie, bool) {
	if cookie == "" || len(cookie) > maxCookieBytes || !canonicalBase64URL(cookie) {
		return DeviceCookie{}, false
	}
	b, err := strictB64.DecodeString(cookie)
	if err != nil || len(b) < cookieHeaderLen+cookieMACLen {
		return DeviceCookie{}, false
	}
	body, sum := b[:len(b)-cookieMACLen], b[len(b)-cookieMACLen:]
	if !hmac.Equal(sum, s.cookieMAC(body)[:cookieMACLen]) {
		return DeviceCookie{}, false
	}
	if body[0] != cookieFormat || int(body[25]) != len(body)-cookieHeaderLen || string(body[cookieHeaderLen:]) != name {
		return DeviceCookie{}, false
	}
	c := DeviceCookie{
		UserID:   binary.BigEndian.Uint64(body[1:]),
		IssuedAt: time.Unix(int64(binary.BigEndian.Uint64(body[9:])), 0),
		ID:       binary.BigEndian.Uint64(body[17:]),
		Name:     name,
	}
	now := s.now()
	if c.IssuedAt.After(now.Add(maxClockSkew)) || !now.Before(c.IssuedAt.Add(DeviceCookieTTL)) {
		return DeviceCookie{}, false
	}
	return c, true
}
