package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/examples/im/link"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/wire"
)

// TestTCPLink walks a native client through the protocol: auth, requests
// by link cmdid, heartbeats, a push, link-level refusals that keep the
// connection, and a clean close that tells the backend.
func TestTCPLink(t *testing.T) {
	be := newFakeBackend(t)
	s := startGateway(t, Config{Heartbeat: 7 * time.Second, IdleTimeout: time.Minute}, be)
	c := dialTCP(t, s)
	f := c.auth(be.token(t, 42, "phone", time.Hour), link.MetaDeviceID, "phone")
	if f.Kind != wire.KindResponse || f.Status != 0 || f.ReqID != 1 {
		t.Fatalf("auth answered %v status %d %q", f.Kind, f.Status, f.Msg)
	}
	var ar im.LinkAuthReply
	if err := proto.Unmarshal(f.Body, &ar); err != nil {
		t.Fatal(err)
	}
	if ar.GetUserId() != 42 || ar.GetDeviceId() != "phone" || ar.GetHeartbeatMs() != 7000 || ar.GetIdleTimeoutMs() != 60000 || ar.GetConnId() == 0 {
		t.Fatalf("auth reply %v", &ar)
	}
	if on, _, _ := be.counts(); on != 1 {
		t.Fatalf("Online called %d times before the auth was answered, want 1", on)
	}
	if st := s.Stats(); st.Authenticated != 1 || st.Unauthenticated != 0 {
		t.Errorf("stats %+v", st)
	}

	// A request acts for the connection's session.
	r := c.call(2, 103, &im.GetProfileRequest{})
	var p im.Profile
	if err := proto.Unmarshal(r.Body, &p); r.Status != 0 || err != nil || p.GetUserId() != 42 {
		t.Fatalf("GetProfile: status %d %q, %v", r.Status, r.Msg, &p)
	}
	// The backend's errors pass through with their codes.
	wantStatus(t, "SendText", c.call(3, 301, &im.SendTextRequest{Text: "hi"}), svrkit.NotFound, "no user")
	// Refusals that leave the connection open.
	wantStatus(t, "unknown cmdid", c.call(4, 999, &im.SyncRequest{}), svrkit.Unimplemented, "unknown link cmdid 999")
	c.write(wire.Header{Kind: wire.KindRequest, ReqID: 5, CmdID: 401}, nil, []byte{0xff, 0xff})
	wantStatus(t, "garbage body", c.mustRead(), svrkit.InvalidArgument, "cannot decode im.Sync/Sync request")

	// Heartbeat.
	c.write(wire.Header{Kind: wire.KindPing, ReqID: 77}, nil, []byte("beat"))
	if f := c.mustRead(); f.Kind != wire.KindPong || f.ReqID != 77 || string(f.Body) != "beat" {
		t.Fatalf("ping answered %v %d %q", f.Kind, f.ReqID, f.Body)
	}

	// A push reaches the connection it names, and only that one.
	target := &im.LinkTarget{UserId: 42, DeviceId: "phone", ConnId: ar.GetConnId()}
	if !s.Push(target, &im.SyncNotify{Type: im.SyncType_SYNC_TYPE_MESSAGES, Version: 9}) {
		t.Fatal("Push did not find the connection")
	}
	f = c.mustRead()
	var n im.SyncNotify
	if err := proto.Unmarshal(f.Body, &n); f.Kind != wire.KindPush || f.CmdID != link.PushSyncNotify || f.ReqID != 0 || err != nil || n.GetVersion() != 9 {
		t.Fatalf("push frame %v cmd %d: %v", f.Kind, f.CmdID, &n)
	}
	for _, wrong := range []*im.LinkTarget{
		{UserId: 43, DeviceId: "phone", ConnId: ar.GetConnId()},
		{UserId: 42, DeviceId: "tablet", ConnId: ar.GetConnId()},
		{UserId: 42, DeviceId: "phone", ConnId: ar.GetConnId() + 1},
	} {
		if s.Push(wrong, &im.SyncNotify{}) {
			t.Errorf("Push to %v found a connection", wrong)
		}
	}

	// The client closes: the backend hears of it once.
	c.c.Close()
	waitFor(t, 10*time.Second, "Offline", func() bool { _, off, _ := be.counts(); return off == 1 })
	waitFor(t, 10*time.Second, "the count", func() bool { return s.Stats() == Stats{} })
}

// TestAuthRefusals: every way to fail the auth gets its status and a
// closed connection, and nothing is registered.
func TestAuthRefusals(t *testing.T) {
	be := newFakeBackend(t)
	s := startGateway(t, Config{}, be)
	expired, _ := be.signer.Sign(session.Claims{UserID: 1, DeviceID: "d", IssuedAt: time.Unix(1, 0), Expires: time.Unix(2, 0)})
	other, _ := session.NewSigner("another secret", session.DefaultTTL)
	forged, _, _ := other.Issue(1, "d", 0, time.Hour)
	for _, tc := range []struct {
		name, token string
		meta        []string
		msg         string
	}{
		{"no token", "", nil, "missing session token"},
		{"garbage token", "not a token", nil, "invalid session token"},
		{"forged token", forged, nil, "invalid session token"},
		{"expired token", expired, nil, "session expired"},
		{"another device's token", be.token(t, 1, "tablet", time.Hour), []string{link.MetaDeviceID, "phone"}, "for another device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialTCP(t, s)
			f := c.auth(tc.token, tc.meta...)
			if f.Kind != wire.KindResponse {
				t.Fatalf("auth answered with a %v frame", f.Kind)
			}
			wantStatus(t, "auth", f, svrkit.Unauthenticated, tc.msg)
			c.expectClose()
		})
	}
	t.Run("request before auth", func(t *testing.T) {
		c := dialTCP(t, s)
		c.write(wire.Header{Kind: wire.KindRequest, ReqID: 1, CmdID: 103}, nil, nil)
		g := c.expectClose()
		if g == nil {
			t.Fatal("closed without a goaway")
		}
		wantStatus(t, "goaway", *g, svrkit.Unauthenticated, "the first frame must be auth")
	})
	if on, _, _ := be.counts(); on != 0 {
		t.Errorf("refused auths registered %d connections", on)
	}
	waitFor(t, 10*time.Second, "connections gone", func() bool { return s.Stats() == Stats{} })
}

// TestMalformedFrames: garbage, an oversized frame, a second auth and a
// frame kind a client may not send each close the connection with a
// goaway saying why.
func TestMalformedFrames(t *testing.T) {
	be := newFakeBackend(t)
	s := startGateway(t, Config{}, be)
	good, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindPing, ReqID: 1}, nil, "", nil, 0)
	badVersion := bytes.Clone(good)
	badVersion[4] = 9
	huge := binary.BigEndian.AppendUint32(nil, link.MaxClientFrame)
	for _, tc := range []struct {
		name  string
		auth  bool
		bytes []byte
		frame *wire.Header
		code  svrkit.Code
		msg   string
	}{
		{"garbage", false, []byte("\x00\x00\x00\x1cgarbage garbage garbage garbag"), nil, svrkit.InvalidArgument, "malformed frame"},
		{"length below the header", false, []byte{0, 0, 0, 3, 1, 1, 1}, nil, svrkit.InvalidArgument, "malformed frame"},
		{"oversized", false, huge, nil, svrkit.ResourceExhausted, "over the 131072-byte limit"},
		{"bad version after auth", true, badVersion, nil, svrkit.InvalidArgument, "malformed frame"},
		{"second auth", true, nil, &wire.Header{Kind: wire.KindAuth, ReqID: 2}, svrkit.InvalidArgument, "a second auth"},
		{"a response from the client", true, nil, &wire.Header{Kind: wire.KindResponse, ReqID: 2}, svrkit.InvalidArgument, "may not send response"},
		{"a push from the client", true, nil, &wire.Header{Kind: wire.KindPush}, svrkit.InvalidArgument, "may not send push"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialTCP(t, s)
			if tc.auth {
				if f := c.auth(be.token(t, 5, "d", time.Hour)); f.Status != 0 {
					t.Fatalf("auth: %d %q", f.Status, f.Msg)
				}
			}
			if tc.frame != nil {
				c.write(*tc.frame, nil, nil)
			} else {
				c.writeRaw(tc.bytes)
			}
			g := c.expectClose()
			if g == nil {
				t.Fatal("closed without a goaway")
			}
			wantStatus(t, "goaway", *g, tc.code, tc.msg)
		})
	}
	// A ping with a body over the limit.
	c := dialTCP(t, s)
	c.auth(be.token(t, 5, "e", time.Hour))
	c.write(wire.Header{Kind: wire.KindPing, ReqID: 3}, nil, make([]byte, link.MaxPingBody+1))
	if g := c.expectClose(); g == nil || svrkit.Code(g.Status) != svrkit.InvalidArgument {
		t.Errorf("oversized ping: goaway %v", g)
	}
}

// TestDeadlines: a connection that never authenticates, one that goes
// silent and one whose token expires are each closed by the sweep with
// their goaway; a connection that keeps pinging stays.
func TestDeadlines(t *testing.T) {
	be := newFakeBackend(t)
	s := startGateway(t, Config{AuthTimeout: 300 * time.Millisecond, IdleTimeout: 600 * time.Millisecond}, be)
	start := time.Now()
	mute := dialTCP(t, s) // never authenticates
	silent := dialTCP(t, s)
	silent.auth(be.token(t, 1, "silent", time.Hour))
	expiring := dialTCP(t, s)
	tok, _ := be.signer.Sign(session.Claims{UserID: 2, DeviceID: "exp", IssuedAt: time.Now(), Expires: time.Now().Add(2 * time.Second)})
	expiring.auth(tok)
	alive := dialTCP(t, s)
	alive.auth(be.token(t, 3, "alive", time.Hour))

	stop := make(chan struct{})
	pinged := make(chan struct{})
	go func() {
		defer close(pinged)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				b, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindPing, ReqID: 1}, nil, "", nil, 0)
				_, _ = alive.c.Write(b) // pongs pile up unread: a few bytes
				_, _ = expiring.c.Write(b)
			}
		}
	}()
	g := mute.expectClose()
	if g == nil {
		t.Fatal("unauthenticated connection closed without a goaway")
	}
	wantStatus(t, "auth timeout", *g, svrkit.Unauthenticated, "no auth within the auth timeout")
	if g := silent.expectClose(); g == nil || svrkit.Code(g.Status) != svrkit.DeadlineExceeded {
		t.Fatalf("silent connection: goaway %v", g)
	}
	if g := expiring.expectClose(); g == nil {
		t.Fatal("expired session closed without a goaway")
	} else {
		wantStatus(t, "token expiry", *g, svrkit.Unauthenticated, "session expired")
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("token expiring after 1-2s (whole seconds) closed after %v", el)
	}
	close(stop)
	<-pinged
	if st := s.Stats(); st.Authenticated != 1 {
		t.Errorf("after the sweeps %+v, want the pinging connection only", st)
	}
}

// TestSecondLoginReplaces: a device that authenticates again replaces its
// older connection, which is told and closed; Kick does the same for a
// login on another gateway.
func TestSecondLoginReplaces(t *testing.T) {
	be := newFakeBackend(t)
	s := startGateway(t, Config{}, be)
	tok := be.token(t, 8, "phone", time.Hour)
	first := dialTCP(t, s)
	first.auth(tok)
	second := dialTCP(t, s)
	f := second.auth(tok)
	var ar im.LinkAuthReply
	_ = proto.Unmarshal(f.Body, &ar)
	g := first.expectClose()
	if g == nil {
		t.Fatal("replaced connection closed without a goaway")
	}
	wantStatus(t, "replaced", *g, svrkit.Aborted, "replaced by a newer login")
	if r := second.call(2, 401, &im.SyncRequest{}); r.Status != 0 {
		t.Fatalf("the new connection: %d %q", r.Status, r.Msg)
	}
	// The replaced connection's close is not the device going offline.
	if _, off, _ := be.counts(); off != 0 {
		t.Errorf("Offline called %d times for a replaced connection", off)
	}
	if !s.Kick(&im.LinkTarget{UserId: 8, DeviceId: "phone", ConnId: ar.GetConnId()}) {
		t.Fatal("Kick did not find the connection")
	}
	if g := second.expectClose(); g == nil || svrkit.Code(g.Status) != svrkit.Aborted {
		t.Fatalf("kicked connection: goaway %v", g)
	}
}

// TestCancel: a canceled request's call is canceled and gets no response.
func TestCancel(t *testing.T) {
	be := newFakeBackend(t)
	s := startGateway(t, Config{}, be)
	c := dialTCP(t, s)
	c.auth(be.token(t, 1, "d", time.Hour))
	body, _ := proto.Marshal(&im.SendTextRequest{Text: "block"})
	c.write(wire.Header{Kind: wire.KindRequest, ReqID: 9, CmdID: 301}, nil, body)
	waitFor(t, 5*time.Second, "the call in flight", func() bool { return s.inflight.Load() == 1 })
	c.write(wire.Header{Kind: wire.KindCancel, ReqID: 9}, nil, nil)
	waitFor(t, 5*time.Second, "the call canceled", func() bool { _, _, n := be.counts(); return n == 1 })
	// The next answer on the connection is a pong, not the canceled call's.
	c.write(wire.Header{Kind: wire.KindPing, ReqID: 10}, nil, nil)
	if f := c.mustRead(); f.Kind != wire.KindPong {
		t.Fatalf("after the cancel: %v %d %q", f.Kind, f.ReqID, f.Msg)
	}
	// A timeout from the frame bounds the call too.
	c.write(wire.Header{Kind: wire.KindRequest, ReqID: 11, CmdID: 301, Timeout: 50_000}, nil, body)
	wantStatus(t, "timed out call", c.mustRead(), svrkit.DeadlineExceeded, "")
}

// TestInflightLimit: requests over the per-connection limit are refused at
// once, unrun.
func TestInflightLimit(t *testing.T) {
	be := newFakeBackend(t)
	s := startGateway(t, Config{MaxInflightPerConn: 2}, be)
	c := dialTCP(t, s)
	c.auth(be.token(t, 1, "d", time.Hour))
	body, _ := proto.Marshal(&im.SendTextRequest{Text: "block"})
	for id := uint32(1); id <= 2; id++ {
		c.write(wire.Header{Kind: wire.KindRequest, ReqID: id, CmdID: 301}, nil, body)
	}
	waitFor(t, 5*time.Second, "two calls in flight", func() bool { return s.inflight.Load() == 2 })
	c.write(wire.Header{Kind: wire.KindRequest, ReqID: 2, CmdID: 301}, nil, body)
	wantStatus(t, "duplicate id", c.mustRead(), svrkit.InvalidArgument, "already in flight")
	c.write(wire.Header{Kind: wire.KindRequest, ReqID: 3, CmdID: 301}, nil, body)
	wantStatus(t, "third call", c.mustRead(), svrkit.ResourceExhausted, "too many requests in flight")
}

// TestSlowReaderIsCutOff: a client that sends and never reads is cut off
// once the gateway holds MaxPending for it, and the gateway's memory for it
// stays bounded meanwhile.
func TestSlowReaderIsCutOff(t *testing.T) {
	be := newFakeBackend(t)
	const limit = 256 << 10
	s := startGateway(t, Config{MaxPending: limit}, be)
	c := dialTCP(t, s)
	c.auth(be.token(t, 1, "d", time.Hour))
	_ = c.c.(*net.TCPConn).SetReadBuffer(4 << 10) // keep the kernel's share small
	ping, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindPing, ReqID: 1}, nil, "", make([]byte, link.MaxPingBody), 0)
	batch := bytes.Repeat(ping, 1000)
	deadline := time.Now().Add(30 * time.Second)
	sent := 0
	for {
		_ = c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		n, err := c.c.Write(batch)
		sent += n
		if err != nil {
			break // cut off: the gateway closed the connection
		}
		if time.Now().After(deadline) {
			t.Fatalf("still connected after sending %d bytes of pings without reading", sent)
		}
	}
	waitFor(t, 10*time.Second, "the connection gone", func() bool { return s.Stats() == Stats{} })
	t.Logf("cut off after %d bytes of pings", sent)
}

// TestShutdown: every client gets goaway unavailable, a request already
// forwarded is still answered, then the connections close; WebSocket
// clients get close code 4014.
func TestShutdown(t *testing.T) {
	be := newFakeBackend(t)
	s := startGateway(t, Config{}, be)
	c := dialTCP(t, s)
	c.auth(be.token(t, 1, "d", time.Hour))
	w := dialWS(t, s)
	sendJSON(t, w, link.Message{Type: link.TypeAuth, Token: be.token(t, 2, "w", time.Hour)})
	readJSON(t, w)
	body, _ := proto.Marshal(&im.SendTextRequest{Text: "slow"})
	c.write(wire.Header{Kind: wire.KindRequest, ReqID: 4, CmdID: 301}, nil, body)
	waitFor(t, 5*time.Second, "the call in flight", func() bool { return s.inflight.Load() == 1 })
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	g := c.mustRead()
	if g.Kind != wire.KindGoAway {
		t.Fatalf("first frame after Shutdown: %v", g.Kind)
	}
	wantStatus(t, "goaway", g, svrkit.Unavailable, "shutting down")
	wantStatus(t, "the call in flight", c.mustRead(), svrkit.NotFound, "slow no user")
	c.expectClose()
	if code, _ := expectWSClose(t, w); code != 4014 {
		t.Errorf("WebSocket closed with %d, want 4014", code)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		t.Error("still accepting after Shutdown")
	}
}
