package session

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svrkit/svrkit/svrkit"
)

func newSigner(t testing.TB, secret string, now time.Time) *Signer {
	t.Helper()
	s, err := NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return now }
	return s
}

func TestIssueVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := newSigner(t, "secret", now)
	tok, c, err := s.Issue(42, "phone", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) > MaxTokenBytes {
		t.Fatalf("token of %d bytes over MaxTokenBytes %d", len(tok), MaxTokenBytes)
	}
	got, err := s.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if got != c || got.UserID != 42 || got.DeviceID != "phone" || !got.Expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("claims %+v, issued %+v", got, c)
	}
	long := strings.Repeat("d", MaxDeviceIDBytes)
	tok, _, err = s.Issue(1<<63, long, time.Hour)
	if err != nil || len(tok) > MaxTokenBytes {
		t.Fatalf("longest token: %d bytes, %v", len(tok), err)
	}
	if c, err := s.Verify(tok); err != nil || c.DeviceID != long {
		t.Fatalf("longest token: %+v %v", c, err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := newSigner(t, "secret", now)
	good, _, _ := s.Issue(7, "default", time.Hour)
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	other, _, _ := newSigner(t, "other secret", now).Issue(7, "default", time.Hour)
	expired, _ := s.Sign(Claims{UserID: 7, DeviceID: "default", IssuedAt: now.Add(-2 * time.Hour), Expires: now})
	for _, tc := range []struct {
		name, token string
		want        *svrkit.Error
	}{
		{"empty", "", ErrInvalid},
		{"not base64", "!!!!", ErrInvalid},
		{"padded base64", good + "==", ErrInvalid},
		{"truncated", good[:len(good)-4], ErrInvalid},
		{"too long", strings.Repeat("A", MaxTokenBytes+4), ErrInvalid},
		{"edited user id", flip(8), ErrInvalid},
		{"edited expiry", flip(24), ErrInvalid},
		{"edited mac", flip(len(raw) - 1), ErrInvalid},
		{"another secret", other, ErrInvalid},
		{"expired", expired, ErrExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Verify(tc.token)
			if err != tc.want {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCaller(t *testing.T) {
	s := newSigner(t, "secret", time.Unix(1_700_000_000, 0))
	tok, _, _ := s.Issue(9, "laptop", time.Minute)
	for _, tc := range []struct {
		name, header string
		want         error
	}{
		{"bearer", Header(tok), nil},
		{"lower-case scheme", "bearer " + tok, nil},
		{"missing", "", ErrMissing},
		{"blank", "   ", ErrMissing},
		{"other scheme", "Basic " + tok, ErrInvalid},
		{"no scheme", tok, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.header != "" {
				ctx = svrkit.WithIncomingMetadata(ctx, svrkit.Metadata{MetadataKey: tc.header})
			}
			c, err := s.Caller(ctx)
			if err != tc.want {
				t.Fatalf("Caller = %+v, %v; want %v", c, err, tc.want)
			}
			if err == nil && (c.UserID != 9 || c.DeviceID != "laptop") {
				t.Fatalf("claims %+v", c)
			}
			if err != nil && svrkit.CodeOf(err) != svrkit.Unauthenticated {
				t.Fatalf("code %v", svrkit.CodeOf(err))
			}
		})
	}
}

func TestSignRefusesBadClaims(t *testing.T) {
	s := newSigner(t, "secret", time.Now())
	for _, c := range []Claims{
		{UserID: 0, DeviceID: "d"},
		{UserID: 1, DeviceID: ""},
		{UserID: 1, DeviceID: strings.Repeat("d", MaxDeviceIDBytes+1)},
	} {
		if _, err := s.Sign(c); err == nil {
			t.Errorf("Sign(%+v) succeeded", c)
		}
	}
	if _, err := NewSigner(""); err == nil {
		t.Error("NewSigner(\"\") succeeded")
	}
}

// FuzzVerify feeds Verify arbitrary tokens: it must never panic, and any
// token it accepts must be one this secret signed (so re-signing its claims
// gives the same token back).
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	s := newSigner(f, "secret", now)
	good, _, _ := s.Issue(7, "default", time.Hour)
	f.Add(good)
	f.Add("")
	f.Add(good[:20])
	f.Fuzz(func(t *testing.T, token string) {
		c, err := s.Verify(token)
		if err != nil {
			if err != ErrInvalid && err != ErrExpired {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		again, err := s.Sign(c)
		if err != nil || again != token {
			t.Fatalf("accepted %q, which re-signs as %q (%v)", token, again, err)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	s := newSigner(b, "secret", time.Unix(1_700_000_000, 0))
	tok, _, _ := s.Issue(7, "default", time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRequire(t *testing.T) {
	s := newSigner(t, "secret", time.Unix(1_700_000_000, 0))
	tok, _, _ := s.Issue(9, "laptop", time.Minute)
	expired, _ := s.Sign(Claims{UserID: 9, DeviceID: "laptop", IssuedAt: time.Unix(1, 0), Expires: time.Unix(2, 0)})
	ic := s.Require("im.Account", "/im.Account/Login")
	handler := func(ctx context.Context, _ proto.Message) (proto.Message, error) {
		return wrapperspb.UInt64(From(ctx).UserID), nil
	}
	for _, tc := range []struct {
		name, method, header string
		want                 error
		user                 uint64
	}{
		{"valid token", "/im.Account/GetProfile", Header(tok), nil, 9},
		{"missing", "/im.Account/GetProfile", "", ErrMissing, 0},
		{"forged", "/im.Account/GetProfile", Header(tok + "x"), ErrInvalid, 0},
		{"expired", "/im.Account/SetProfile", Header(expired), ErrExpired, 0},
		{"open method", "/im.Account/Login", "", nil, 7},
		{"other service", "/im.AccountData/GetAccount", "", nil, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.header != "" {
				ctx = svrkit.WithIncomingMetadata(ctx, svrkit.Metadata{MetadataKey: tc.header})
			}
			ran := false
			next := handler
			if tc.user == 7 { // the handler of a method Require lets through
				next = func(ctx context.Context, _ proto.Message) (proto.Message, error) {
					ran = true
					return wrapperspb.UInt64(7), nil
				}
			}
			resp, err := ic(ctx, nil, &svrkit.MethodDesc{FullName: tc.method}, next)
			if err != tc.want {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err == nil && resp.(*wrapperspb.UInt64Value).GetValue() != tc.user {
				t.Fatalf("handler acted for user %v, want %d", resp, tc.user)
			}
			if tc.user == 7 && !ran {
				t.Fatal("the handler did not run")
			}
		})
	}
}

func TestFromWithoutRequirePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("From outside Require did not panic")
		}
	}()
	From(context.Background())
}
