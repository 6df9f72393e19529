package svrkit_test

import (
	"crypto/ed25519"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/wire"
)

// keyPair returns a new Ed25519 key pair for an identity in tests.
func keyPair(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// startGuardedServer serves the test service, callable only by "send",
// on a server that requires authentication and trusts send, sync and the
// operator "ops".
func startGuardedServer(t *testing.T) (addr string, keys map[string]ed25519.PrivateKey) {
	t.Helper()
	keys = map[string]ed25519.PrivateKey{}
	ring := svrkit.Keyring{}
	for _, id := range []string{"send", "sync", "ops"} {
		pub, priv := keyPair(t)
		ring[id], keys[id] = pub, priv
	}
	desc := testDesc
	desc.Callers = []string{"send"}
	s := svrkit.NewServer(svrkit.WithLogger(testLogger(t)), svrkit.WithRequireAuth(ring, "ops"))
	s.RegisterService(&desc, &testService{})
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(ctxTimeout(t, 5*time.Second)) })
	return s.Addr().String(), keys
}

func TestServiceAuth(t *testing.T) {
	addr, keys := startGuardedServer(t)
	_, stranger := keyPair(t)
	for _, tc := range []struct {
		name     string
		opts     []svrkit.ClientOption
		cmd      uint32
		code     svrkit.Code
		msg      string // substring of the message
		identity string // the identity the handler sees, when the call succeeds
	}{
		{"allowed caller", []svrkit.ClientOption{svrkit.WithIdentity("send", keys["send"])}, cmdIdentity, svrkit.OK, "", "send"},
		{"operator", []svrkit.ClientOption{svrkit.WithIdentity("ops", keys["ops"])}, cmdIdentity, svrkit.OK, "", "ops"},
		{"no identity", nil, cmdIdentity, svrkit.Unauthenticated, "the caller sent no identity", ""},
		{"no identity, unknown cmdid", nil, 999, svrkit.Unauthenticated, "requires service authentication", ""},
		{"wrong key", []svrkit.ClientOption{svrkit.WithIdentity("send", stranger)}, cmdIdentity, svrkit.Unauthenticated, `signature for identity "send" does not verify`, ""},
		{"unknown identity", []svrkit.ClientOption{svrkit.WithIdentity("mallory", stranger)}, cmdIdentity, svrkit.Unauthenticated, `identity "mallory" is not known`, ""},
		{"known but not a caller", []svrkit.ClientOption{svrkit.WithIdentity("sync", keys["sync"])}, cmdIdentity, svrkit.PermissionDenied, "sync may not call /svrkit.test.Test/Identity (its callers are send)", ""},
		{"allowed caller, unknown cmdid", []svrkit.ClientOption{svrkit.WithIdentity("send", keys["send"])}, 999, svrkit.Unimplemented, "unknown cmdid 999", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, addr, tc.opts...)
			m := methodByCmd(cmdIdentity)
			if tc.cmd != cmdIdentity {
				m = &svrkit.MethodDesc{CmdID: tc.cmd, FullName: "/x.Y/Z"}
			}
			resp := new(wrapperspb.StringValue)
			err := c.Invoke(ctxTimeout(t, 5*time.Second), m, &emptypb.Empty{}, resp)
			if svrkit.CodeOf(err) != tc.code || (tc.msg != "" && !strings.Contains(err.Error(), tc.msg)) {
				t.Fatalf("err = %v, want code %v with %q", err, tc.code, tc.msg)
			}
			if err == nil && resp.Value != tc.identity {
				t.Fatalf("handler saw identity %q, want %q", resp.Value, tc.identity)
			}
		})
	}
}

// An auth frame recorded on one connection proves nothing on another: the
// nonce differs.
func TestServiceAuthReplay(t *testing.T) {
	ring := svrkit.Keyring{}
	pub, priv := keyPair(t)
	ring["send"] = pub
	s := startServer(t, &testService{}, svrkit.WithRequireAuth(ring))
	nc1, hello1 := dialRawHello(t, s)
	if hello1.Flags&wire.FlagAuthRequired == 0 {
		t.Fatal("hello does not say authentication is required")
	}
	auth, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindAuth}, wire.AppendMeta(nil, "identity", "send"), "",
		ed25519.Sign(priv, wire.AuthMessage(hello1.Body, "send")), 0)
	call := func(nc interface{ Write([]byte) (int, error) }) {
		req, _ := proto.Marshal(&emptypb.Empty{})
		f, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindRequest, ReqID: 1, CmdID: cmdIdentity}, nil, "", req, 0)
		nc.Write(f)
	}
	nc1.Write(auth)
	call(nc1)
	if f := readFrame(t, nc1); f.Status != uint32(svrkit.OK) {
		t.Fatalf("authenticated call: status %d %q", f.Status, f.Msg)
	}
	nc2, _ := dialRawHello(t, s)
	nc2.Write(auth) // replayed
	call(nc2)
	if f := readFrame(t, nc2); f.Status != uint32(svrkit.Unauthenticated) {
		t.Fatalf("replayed auth: status %d %q, want unauthenticated", f.Status, f.Msg)
	}
	// A second auth frame on a connection is a protocol error.
	nc1.Write(auth)
	expectClosed(t, nc1)
}

// A server that does not require authentication ignores an identity, and
// a client without one works with it.
func TestServiceAuthOptional(t *testing.T) {
	s := startServer(t, &testService{})
	_, priv := keyPair(t)
	for _, c := range []*svrkit.Client{
		newClient(t, s.Addr().String(), svrkit.WithIdentity("send", priv)),
		newClient(t, s.Addr().String()),
	} {
		resp := new(wrapperspb.StringValue)
		if err := c.Invoke(ctxTimeout(t, 5*time.Second), methodByCmd(cmdIdentity), &emptypb.Empty{}, resp); err != nil || resp.Value != "" {
			t.Fatalf("call: %v, identity %q", err, resp.Value)
		}
	}
}

// Generated key files round-trip, existing keys are kept, and a key file
// others can read is refused.
func TestKeyFiles(t *testing.T) {
	dir := t.TempDir() + "/keys"
	ring, err := svrkit.GenerateKeys(dir, []string{"send", "sync"})
	if err != nil {
		t.Fatal(err)
	}
	send, err := svrkit.ReadKey(svrkit.KeyPath(dir, "send"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svrkit.GenerateKeys(dir, []string{"send", "sync", "ops"}); err != nil {
		t.Fatal(err)
	}
	again, _ := svrkit.ReadKey(svrkit.KeyPath(dir, "send"))
	if !send.Equal(again) {
		t.Fatal("GenerateKeys replaced an existing key")
	}
	keys, err := svrkit.ReadKeyring(ring)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 || !keys["send"].Equal(send.Public()) {
		t.Fatalf("keyring %v", keys)
	}
	if err := os.Chmod(svrkit.KeyPath(dir, "send"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := svrkit.ReadKey(svrkit.KeyPath(dir, "send")); err == nil || !strings.Contains(err.Error(), "too open") {
		t.Fatalf("world-readable key: %v", err)
	}
	if err := os.WriteFile(ring, []byte(`{"keys": {"x": "bm90IGEga2V5"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := svrkit.ReadKeyring(ring); err == nil {
		t.Fatal("a keyring with a short key was accepted")
	}
}
