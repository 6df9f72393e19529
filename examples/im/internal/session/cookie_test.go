package session

import (
	"strings"
	"testing"
	"time"
)

func TestDeviceCookie(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := newSigner(t, "secret", now)
	ck := s.IssueDeviceCookie(42, "bob")
	c, ok := s.VerifyDeviceCookie(ck, "bob")
	if !ok || c.UserID != 42 || c.Name != "bob" || c.ID == 0 || !c.IssuedAt.Equal(now) {
		t.Fatalf("VerifyDeviceCookie = %+v, %v", c, ok)
	}
	if again := s.IssueDeviceCookie(42, "bob"); again == ck {
		t.Fatal("two cookies are equal: the id is not random")
	}
	later := newSigner(t, "secret", now.Add(DeviceCookieTTL))
	other := newSigner(t, "other secret", now)
	session, _, _ := s.Issue(42, "bob", 0, time.Hour)
	for _, tc := range []struct {
		name, cookie, login string
		s                   *Signer
	}{
		{"another name", ck, "alice", s},
		{"another secret", ck, "bob", other},
		{"expired", ck, "bob", later},
		{"newline inside", ck[:10] + "\n" + ck[10:], "bob", s},
		{"truncated", ck[:len(ck)-2], "bob", s},
		{"empty", "", "bob", s},
		{"a session token", session, "bob", s},
		{"too long", strings.Repeat("A", 200), "bob", s},
	} {
		if _, ok := tc.s.VerifyDeviceCookie(tc.cookie, tc.login); ok {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

// FuzzVerifyDeviceCookie: never a panic, and a cookie accepted is one
// issued for that name with this secret, spelt as issued.
func FuzzVerifyDeviceCookie(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	s := newSigner(f, "secret", now)
	ck := s.IssueDeviceCookie(7, "bob")
	f.Add(ck, "bob")
	f.Add(ck[:10]+"\n"+ck[10:], "bob")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, cookie, name string) {
		c, ok := s.VerifyDeviceCookie(cookie, name)
		if !ok {
			return
		}
		if c.Name != name || !canonicalBase64URL(cookie) {
			t.Fatalf("accepted %q for %q: %+v", cookie, name, c)
		}
	})
}
