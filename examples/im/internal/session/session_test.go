package session

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svrkit/svrkit/svrkit"
)

func newSigner(t testing.TB, secret string, now time.Time) *Signer {
	t.Helper()
	s, err := NewSigner(secret, DefaultTTL)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return now }
	return s
}

func TestIssueVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := newSigner(t, "secret", now)
	tok, c, err := s.Issue(42, "phone", 9, time.Hour)
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
	if got != c || got.UserID != 42 || got.DeviceID != "phone" || got.Counter != 9 || !got.Expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("claims %+v, issued %+v", got, c)
	}
	long := strings.Repeat("d", MaxDeviceIDBytes)
	tok, _, err = s.Issue(1<<63, long, 1<<63, time.Hour)
	if err != nil || len(tok) != MaxTokenBytes {
		t.Fatalf("longest token: %d bytes (MaxTokenBytes %d), %v", len(tok), MaxTokenBytes, err)
	}
	if c, err := s.Verify(tok); err != nil || c.DeviceID != long {
		t.Fatalf("longest token: %+v %v", c, err)
	}
	// Issue caps the lifetime at the signer's maximum.
	_, c, _ = s.Issue(42, "phone", 0, 10*365*24*time.Hour)
	if !c.Expires.Equal(now.Add(DefaultTTL)) {
		t.Fatalf("a 10-year Issue expires %v, want %v", c.Expires, now.Add(DefaultTTL))
	}
}

func TestVerifyRefuses(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := newSigner(t, "secret", now)
	good, _, _ := s.Issue(7, "default", 0, time.Hour)
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	other, _, _ := newSigner(t, "other secret", now).Issue(7, "default", 0, time.Hour)
	expired, _ := s.Sign(Claims{UserID: 7, DeviceID: "default", IssuedAt: now.Add(-2 * time.Hour), Expires: now})
	tenYears, _ := s.Sign(Claims{UserID: 7, DeviceID: "default", IssuedAt: now, Expires: now.AddDate(10, 0, 0)})
	justOver, _ := s.Sign(Claims{UserID: 7, DeviceID: "default", IssuedAt: now, Expires: now.Add(DefaultTTL + time.Second)})
	future, _ := s.Sign(Claims{UserID: 7, DeviceID: "default", IssuedAt: now.Add(time.Hour), Expires: now.Add(2 * time.Hour)})
	backwards, _ := s.Sign(Claims{UserID: 7, DeviceID: "default", IssuedAt: now.Add(time.Hour), Expires: now.Add(time.Minute)})
	// The last character carries padding bits the encoder leaves zero.
	last := good[len(good)-1]
	lastVal := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", last)
	nonzeroPad := good[:len(good)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[lastVal|1])
	for _, tc := range []struct {
		name, token string
		want        *svrkit.Error
	}{
		{"empty", "", ErrInvalid},
		{"not base64", "!!!!", ErrInvalid},
		{"padded base64", good + "==", ErrInvalid},
		{"newline inside", good[:20] + "\n" + good[20:], ErrInvalid},
		{"carriage return inside", good[:20] + "\r" + good[20:], ErrInvalid},
		{"standard alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(good) + "+", ErrInvalid},
		{"non-zero padding bits", nonzeroPad, ErrInvalid},
		{"truncated", good[:len(good)-4], ErrInvalid},
		{"too long", strings.Repeat("A", MaxTokenBytes+4), ErrInvalid},
		{"edited user id", flip(8), ErrInvalid},
		{"edited expiry", flip(24), ErrInvalid},
		{"edited counter", flip(32), ErrInvalid},
		{"edited mac", flip(len(raw) - 1), ErrInvalid},
		{"another secret", other, ErrInvalid},
		{"ten-year expiry", tenYears, ErrInvalid},
		{"one second over the TTL", justOver, ErrInvalid},
		{"issued in the future", future, ErrInvalid},
		{"expires before issued", backwards, ErrInvalid},
		{"expired", expired, ErrExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.token == good {
				t.Fatal("the case is the good token")
			}
			_, err := s.Verify(tc.token)
			if err != tc.want {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	if nonzeroPad == good {
		t.Fatal("padding case did not change the token")
	}
}

// A token of the first format (no counter, no label in the MAC) is refused:
// it could not be revoked.
func TestVerifyRefusesFormat1(t *testing.T) {
	// AQAA... is a format-1 token for user 7 signed with "secret"
	// (the seed testdata/fuzz/FuzzVerify/format1).
	const v1 = "AQAAAAAAAAAHAAAAAGVT8QAAAAAAZVP_EAdkZWZhdWx0E_204QOZ9posggC54BlknqJGCWSWnGhv05x7PjOTA-c"
	if _, err := newSigner(t, "secret", time.Unix(1_700_000_000, 0)).Verify(v1); err != ErrInvalid {
		t.Fatalf("format-1 token: %v, want ErrInvalid", err)
	}
}

func TestCaller(t *testing.T) {
	s := newSigner(t, "secret", time.Unix(1_700_000_000, 0))
	tok, _, _ := s.Issue(9, "laptop", 0, time.Minute)
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
			var c Claims
			tok, err := bearer(tc.header)
			if err == nil {
				c, err = s.Verify(tok)
			}
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
	if _, err := NewSigner("", time.Hour); err == nil {
		t.Error("NewSigner with an empty secret succeeded")
	}
	if _, err := NewSigner("secret", 0); err == nil {
		t.Error("NewSigner with no lifetime succeeded")
	}
}

// FuzzVerify feeds Verify arbitrary tokens: it must never panic, and any
// token it accepts must be one this secret signed, spelt as Sign spells it
// (re-signing its claims gives the same string back). The seeds in
// testdata/fuzz/FuzzVerify include a valid token with a newline inside,
// which Go's base64 decoder skips.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	s := newSigner(f, "secret", now)
	good, _, _ := s.Issue(7, "default", 3, time.Hour)
	f.Add(good)
	f.Add("")
	f.Add(good[:20])
	f.Add(good[:20] + "\n" + good[20:])
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
		if c.Expires.Sub(c.IssuedAt) > s.MaxTTL() {
			t.Fatalf("accepted a lifetime of %v", c.Expires.Sub(c.IssuedAt))
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	s := newSigner(b, "secret", time.Unix(1_700_000_000, 0))
	tok, _, _ := s.Issue(7, "default", 0, time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// requireService is a hand-written im.Account/im.AccountData look-alike
// whose methods answer the user the session interceptor found, or 7 for
// the methods it lets through without a token.
type requireService struct{}

func (requireService) answer(ctx context.Context, open bool) (proto.Message, error) {
	if open {
		return wrapperspb.UInt64(7), nil
	}
	return wrapperspb.UInt64(From(ctx).UserID), nil
}

// serveRequire serves requireService behind ic on a loopback port and
// returns a client of it and the method descriptors by full name.
func serveRequire(t *testing.T, ic svrkit.UnaryServerInterceptor) (*svrkit.Client, map[string]*svrkit.MethodDesc) {
	t.Helper()
	methods := map[string]*svrkit.MethodDesc{}
	method := func(cmd uint32, name string, open bool) svrkit.MethodDesc {
		return svrkit.MethodDesc{
			CmdID: cmd, FullName: name,
			NewRequest:  func() proto.Message { return &wrapperspb.UInt64Value{} },
			NewResponse: func() proto.Message { return &wrapperspb.UInt64Value{} },
			Handler: func(impl any, ctx context.Context, _ proto.Message) (proto.Message, error) {
				return impl.(requireService).answer(ctx, open)
			},
		}
	}
	account := &svrkit.ServiceDesc{Name: "im.Account", HandlerType: (*any)(nil), Methods: []svrkit.MethodDesc{
		method(1, "/im.Account/GetProfile", false),
		method(2, "/im.Account/SetProfile", false),
		method(3, "/im.Account/Login", true),
	}}
	data := &svrkit.ServiceDesc{Name: "im.AccountData", HandlerType: (*any)(nil), Methods: []svrkit.MethodDesc{
		method(4, "/im.AccountData/GetAccount", true),
	}}
	srv := svrkit.NewServer(svrkit.WithServerInterceptors(ic))
	for _, d := range []*svrkit.ServiceDesc{account, data} {
		srv.RegisterService(d, requireService{})
		for i := range d.Methods {
			methods[d.Methods[i].FullName] = &d.Methods[i]
		}
	}
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	c, err := svrkit.NewClient(srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, methods
}

// The interceptor runs in a real server: the token travels as the call's
// metadata over loopback, the way every CGI and long-link call brings it.
func TestRequire(t *testing.T) {
	s := newSigner(t, "secret", time.Unix(1_700_000_000, 0))
	tok, _, _ := s.Issue(9, "laptop", 0, time.Minute)
	expired, _ := s.Sign(Claims{UserID: 9, DeviceID: "laptop", IssuedAt: time.Unix(1, 0), Expires: time.Unix(2, 0)})
	client, methods := serveRequire(t, newChecker(s, nil).Require("im.Account", "/im.Account/Login"))
	for _, tc := range []struct {
		name, method, header string
		want                 *svrkit.Error
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
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if tc.header != "" {
				ctx = svrkit.WithOutgoingMetadata(ctx, svrkit.Metadata{MetadataKey: tc.header})
			}
			resp := &wrapperspb.UInt64Value{}
			err := client.Invoke(ctx, methods[tc.method], &wrapperspb.UInt64Value{}, resp)
			if tc.want != nil {
				var got *svrkit.Error
				if !errors.As(err, &got) || got.Code() != tc.want.Code() || got.Message() != tc.want.Message() {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetValue() != tc.user {
				t.Fatalf("handler acted for user %d, want %d", resp.GetValue(), tc.user)
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
