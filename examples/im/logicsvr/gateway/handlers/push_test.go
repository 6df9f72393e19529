package handlers

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/gateway"
	"github.com/svrkit/svrkit/examples/im/internal/rpctest"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/examples/im/link"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/wire"
)

// linkOnly is a gateway.Backend that verifies tokens and does nothing
// else: enough for connections to authenticate and be pushed to.
type linkOnly struct{ signer *session.Signer }

func (b linkOnly) Verify(token string) (session.Claims, error) { return b.signer.Verify(token) }
func (linkOnly) Online(context.Context, *gateway.Conn) error   { return nil }
func (linkOnly) Offline(*gateway.Conn)                         {}
func (linkOnly) Call(context.Context, *gateway.Conn, *link.Route, proto.Message, proto.Message) error {
	return svrkit.NewError(svrkit.Unimplemented, "not in this test")
}

// linkClient is one device's raw long link.
type linkClient struct {
	t      *testing.T
	c      net.Conn
	br     *bufio.Reader
	target *im.LinkTarget
}

// dialLink connects to gw and authenticates as (user, device).
func dialLink(t *testing.T, gw *gateway.Server, signer *session.Signer, user uint64, device string) *linkClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", gw.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	lc := &linkClient{t: t, c: c, br: bufio.NewReader(c)}
	tok, _, err := signer.Issue(user, device, 0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindAuth, ReqID: 1}, wire.AppendMeta(nil, link.MetaDeviceID, device), "", []byte(tok), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	f := lc.read()
	var ar im.LinkAuthReply
	if err := proto.Unmarshal(f.Body, &ar); f.Kind != wire.KindResponse || f.Status != 0 || err != nil {
		t.Fatalf("auth answered %v status %d %q", f.Kind, f.Status, f.Msg)
	}
	lc.target = &im.LinkTarget{UserId: user, DeviceId: device, ConnId: ar.GetConnId()}
	return lc
}

func (lc *linkClient) read() wire.Frame {
	lc.t.Helper()
	_ = lc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	pre, err := lc.br.Peek(wire.PrefixSize)
	if err != nil {
		lc.t.Fatal(err)
	}
	size, err := wire.FrameSize(pre, link.MaxServerFrame)
	if err != nil {
		lc.t.Fatal(err)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(lc.br, b); err != nil {
		lc.t.Fatal(err)
	}
	f, err := wire.Parse(b, link.MaxServerFrame)
	if err != nil {
		lc.t.Fatal(err)
	}
	return f
}

// readNotify returns the next sync notify pushed to the link.
func (lc *linkClient) readNotify() *im.SyncNotify {
	lc.t.Helper()
	f := lc.read()
	var n im.SyncNotify
	if err := proto.Unmarshal(f.Body, &n); f.Kind != wire.KindPush || f.CmdID != link.PushSyncNotify || err != nil {
		lc.t.Fatalf("frame %v cmd %d, want a sync notify push (%v)", f.Kind, f.CmdID, err)
	}
	return &n
}

// startGatewayService runs a long-link gateway and its im.Gateway on a
// real svrkit server, both on loopback, until the test ends; it returns a
// client of the service and the signer of the link's tokens.
func startGatewayService(t *testing.T) (im.GatewayClient, *gateway.Server, *session.Signer) {
	t.Helper()
	signer, err := session.NewSigner("push test secret", session.DefaultTTL)
	if err != nil {
		t.Fatal(err)
	}
	gw := gateway.New(gateway.Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, linkOnly{signer})
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
	})
	addr := rpctest.Serve(t, func(r svrkit.Registrar) { im.RegisterGatewayServer(r, &gatewayServer{gw: gw}) })
	c := rpctest.Dial(t, addr)
	return im.NewGatewayClient(c), gw, signer
}

// TestPushMany: PushMany answers each push as its own Push does — the
// notify written to every connection held, the others answered gone — in
// one call.
func TestPushMany(t *testing.T) {
	client, gw, signer := startGatewayService(t)
	alice := dialLink(t, gw, signer, 1, "phone")
	bob := dialLink(t, gw, signer, 2, "laptop")
	lost := &im.LinkTarget{UserId: 2, DeviceId: "tablet", ConnId: bob.target.GetConnId() + 1000}
	msgs := &im.SyncNotify{Type: im.SyncType_SYNC_TYPE_MESSAGES, Version: 3}
	contacts := &im.SyncNotify{Type: im.SyncType_SYNC_TYPE_CONTACTS, Version: 4}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := client.PushMany(ctx, &im.GatewayPushManyRequest{Pushes: []*im.GatewayPushRequest{
		{Targets: []*im.LinkTarget{alice.target}, Notify: msgs},
		{Targets: []*im.LinkTarget{bob.target, lost}, Notify: contacts},
	}})
	if err != nil {
		t.Fatal(err)
	}
	rs := r.GetReplies()
	if len(rs) != 2 || rs[0].GetPushed() != 1 || len(rs[0].GetGone()) != 0 ||
		rs[1].GetPushed() != 1 || !slices.Equal(rs[1].GetGone(), []uint64{lost.GetConnId()}) {
		t.Fatalf("PushMany answered %v", rs)
	}
	if n := alice.readNotify(); !proto.Equal(n, msgs) {
		t.Errorf("alice got %v, want %v", n, msgs)
	}
	if n := bob.readNotify(); !proto.Equal(n, contacts) {
		t.Errorf("bob got %v, want %v", n, contacts)
	}
	// Push answers as before: as PushMany did for the same push.
	one, err := client.Push(ctx, &im.GatewayPushRequest{Targets: []*im.LinkTarget{bob.target, lost}, Notify: contacts})
	if err != nil || !proto.Equal(one, rs[1]) {
		t.Errorf("Push answered %v, %v; PushMany answered the same push %v", one, err, rs[1])
	}
	if n := bob.readNotify(); !proto.Equal(n, contacts) {
		t.Errorf("bob got %v from Push, want %v", n, contacts)
	}
}
