package session

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/cgi"
)

// whoSync answers Sync with the session it acts for, "user/device", as
// the key.
type whoSync struct{ im.UnimplementedSyncServer }

func (whoSync) Sync(ctx context.Context, _ *im.SyncRequest) (*im.SyncReply, error) {
	c := From(ctx)
	return &im.SyncReply{SyncKey: []byte(strings.Join([]string{c.DeviceID, c.Expires.UTC().Format(time.RFC3339)}, "|"))}, nil
}

// TestForwardedSessionTrustBoundary calls a client-facing service behind
// Require over real svrkit RPC with service authentication, as the
// gateway and as other identities, and over HTTP: forwarded sessions are
// believed from the gateway only.
func TestForwardedSessionTrustBoundary(t *testing.T) {
	now := time.Now()
	s := newSigner(t, "secret", now)
	// User 9 logged out everywhere after the session the gateway holds.
	ck := newChecker(s, &accounts{states: map[uint64]*im.SessionState{7: {}, 8: {}, 9: {Counter: 2, Floor: 2}}})
	ring := svrkit.Keyring{}
	keys := map[string]ed25519.PrivateKey{}
	for _, id := range []string{GatewayIdentity, "send", "operator"} {
		pub, priv, _ := ed25519.GenerateKey(nil)
		ring[id], keys[id] = pub, priv
	}
	srv := svrkit.NewServer(svrkit.WithRequireAuth(ring, "operator"), svrkit.WithServerInterceptors(ck.Require(im.Sync_ServiceName)))
	im.RegisterSyncServer(srv, whoSync{})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	call := func(identity string, md svrkit.Metadata) (string, error) {
		t.Helper()
		c, err := svrkit.NewClient(srv.Addr().String(), svrkit.WithIdentity(identity, keys[identity]))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := im.NewSyncClient(c).Sync(svrkit.WithOutgoingMetadata(ctx, md), &im.SyncRequest{})
		return string(r.GetSyncKey()), err
	}
	alice := Claims{UserID: 7, DeviceID: "phone", IssuedAt: now.Add(-time.Minute), Expires: now.Add(time.Hour).Truncate(time.Second)}
	expired := alice
	expired.Expires = now.Add(-time.Second)
	tok, _ := s.Sign(Claims{UserID: 8, DeviceID: "tablet", IssuedAt: now, Expires: now.Add(time.Hour)})
	revoked := Claims{UserID: 9, DeviceID: "phone", IssuedAt: alice.IssuedAt, Expires: alice.Expires, Counter: 1}
	garbled := ForwardMetadata(alice)
	garbled[ForwardedIssuedKey] = "yesterday"

	for _, tc := range []struct {
		name, identity string
		md             svrkit.Metadata
		want           string
		err            error
		code           svrkit.Code
	}{
		{"the gateway forwards", GatewayIdentity, ForwardMetadata(alice), "phone|" + alice.Expires.UTC().Format(time.RFC3339), nil, 0},
		{"the gateway forwards an expired session", GatewayIdentity, ForwardMetadata(expired), "", ErrExpired, 0},
		{"the gateway forwards garbage", GatewayIdentity, garbled, "", ErrInvalid, 0},
		{"the gateway forwards a revoked session", GatewayIdentity, ForwardMetadata(revoked), "", ErrRevoked, 0},
		{"the gateway with a token", GatewayIdentity, svrkit.Metadata{MetadataKey: Header(tok)}, "tablet|", nil, 0},
		// An operator may call every service, but cannot forge a session.
		{"an operator forges", "operator", ForwardMetadata(alice), "", ErrMissing, 0},
		{"an operator forges beside a token", "operator", merge(ForwardMetadata(alice), svrkit.Metadata{MetadataKey: Header(tok)}), "tablet|", nil, 0},
		// Another Logicsvr is not a caller of the service at all.
		{"another service forges", "send", ForwardMetadata(alice), "", nil, svrkit.PermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := call(tc.identity, tc.md)
			switch {
			case tc.code != 0:
				if svrkit.CodeOf(err) != tc.code {
					t.Fatalf("err = %v, want code %v", err, tc.code)
				}
			case tc.err != nil:
				if svrkit.CodeOf(err) != svrkit.CodeOf(tc.err) || !strings.Contains(err.Error(), svrkit.AsError(tc.err).Message()) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
			case err != nil:
				t.Fatal(err)
			case !strings.HasPrefix(got, tc.want):
				t.Fatalf("acted as %q, want %q", got, tc.want)
			}
		})
	}

	// Over HTTP there is no identity, and headers become metadata: a
	// forwarded session in headers is ignored.
	front := cgi.NewHandler(cgi.WithInterceptors(ck.Require(im.Sync_ServiceName)))
	im.RegisterSyncServer(front, whoSync{})
	ts := httptest.NewServer(front)
	defer ts.Close()
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/cgi-bin/sync", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range ForwardMetadata(alice) {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("HTTP with forwarded-session headers answered %d, want 401", resp.StatusCode)
	}
}

func merge(a, b svrkit.Metadata) svrkit.Metadata {
	for k, v := range b {
		a[k] = v
	}
	return a
}
