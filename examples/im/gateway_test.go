package im_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/imclient"
	"github.com/svrkit/svrkit/examples/im/imtest"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/examples/im/link"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/wire"
)

// devSessionSecret is topology.json's development session secret, with
// which the test signs tokens the account Logicsvr would not issue (an
// expired one).
const devSessionSecret = "dev-only: set your own secret in production"

// TestGatewayFaults runs the real backend under svrkit up and gives its
// gateway bad input and faults over real TCP: each gets the status or
// close reason package link documents, nothing crashes (the gateway
// serves a good client throughout and is never restarted by up), and no
// message is lost.
func TestGatewayFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole backend")
	}
	b := imtest.Start(t)
	addrs, err := imclient.ReadStateFile(b.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	gwAddr := addrs.Link
	alice := imclient.New(addrs)
	aliceID, err := alice.Register(ctx, "alice", "password-alice", "")
	if err != nil {
		t.Fatal(err)
	}
	phone, err := alice.Login(ctx, "alice", "password-alice", "phone")
	if err != nil {
		t.Fatal(err)
	}
	gwPID := b.Instance("gateway").PID

	t.Run("auth refusals", func(t *testing.T) {
		signer, err := session.NewSigner(devSessionSecret, session.DefaultTTL)
		if err != nil {
			t.Fatal(err)
		}
		expired, _ := signer.Sign(session.Claims{UserID: aliceID, DeviceID: "phone", IssuedAt: time.Now().Add(-2 * time.Hour), Expires: time.Now().Add(-time.Hour)})
		old := imclient.New(addrs)
		if _, err := old.Login(ctx, "alice", "password-alice", "old"); err != nil {
			t.Fatal(err)
		}
		revoked := old.Session().Token
		if err := old.Logout(ctx, false); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ name, token, device, msg string }{
			{"no token", "", "", "missing session token"},
			{"bad token", "not-a-token", "", "invalid session token"},
			{"expired token", expired, "", "session expired"},
			{"another device's token", phone.Token, "tablet", "for another device"},
			{"revoked token", revoked, "", "session revoked"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := dialLink(t, gwAddr)
				f := c.auth(tc.token, tc.device)
				wantStatus(t, f, wire.KindResponse, svrkit.Unauthenticated, tc.msg)
				c.expectClosed()
			})
		}
	})

	t.Run("bad frames", func(t *testing.T) {
		// An unknown cmdid is answered and the connection stays usable.
		c := dialLink(t, gwAddr)
		wantStatus(t, c.auth(phone.Token, ""), wire.KindResponse, svrkit.OK, "")
		c.write(wire.Header{Kind: wire.KindRequest, ReqID: 7, CmdID: 999}, nil)
		wantStatus(t, c.read(), wire.KindResponse, svrkit.Unimplemented, "unknown link cmdid 999")
		body, _ := proto.Marshal(&im.SyncRequest{})
		c.write(wire.Header{Kind: wire.KindRequest, ReqID: 8, CmdID: 401}, body)
		wantStatus(t, c.read(), wire.KindResponse, svrkit.OK, "")

		// Garbage: a goaway invalid_argument, then the close.
		g := dialLink(t, gwAddr)
		wantStatus(t, g.auth(phone.Token, ""), wire.KindResponse, svrkit.OK, "")
		g.raw([]byte{0, 0, 0, 40, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44})
		wantStatus(t, g.expectClosed(), wire.KindGoAway, svrkit.InvalidArgument, "")

		// A frame over the client limit: resource_exhausted.
		o := dialLink(t, gwAddr)
		wantStatus(t, o.auth(phone.Token, ""), wire.KindResponse, svrkit.OK, "")
		o.write(wire.Header{Kind: wire.KindRequest, ReqID: 1, CmdID: 401}, make([]byte, link.MaxClientFrame+1))
		wantStatus(t, o.expectClosed(), wire.KindGoAway, svrkit.ResourceExhausted, "")
	})

	t.Run("a client that never reads", func(t *testing.T) {
		// Pings whose pongs (echoing the body) the client never reads:
		// the gateway holds at most its limit for it and then closes the
		// connection, which the client sees as a write that fails.
		c := dialLink(t, gwAddr)
		_ = c.nc.(*net.TCPConn).SetReadBuffer(4 << 10) // keep the kernel's share small
		wantStatus(t, c.auth(phone.Token, ""), wire.KindResponse, svrkit.OK, "")
		ping, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindPing, ReqID: 1}, nil, "", make([]byte, link.MaxPingBody), 0)
		batch := bytes.Repeat(ping, 1000)
		deadline := time.Now().Add(60 * time.Second)
		sent := 0
		for {
			_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			n, err := c.nc.Write(batch)
			sent += n
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("after %d bytes the gateway neither reads nor closes", sent)
			}
			if err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("still connected after sending %d bytes of pings without reading", sent)
			}
		}
		t.Logf("cut off after %d KiB of pings", sent>>10)
		// The gateway lives on and serves others.
		o := dialLink(t, gwAddr)
		wantStatus(t, o.auth(phone.Token, ""), wire.KindResponse, svrkit.OK, "")
	})

	t.Run("connections that never authenticate", func(t *testing.T) {
		const n = 10_000
		conns := make([]net.Conn, 0, n)
		defer func() {
			for _, nc := range conns {
				nc.Close()
			}
		}()
		var d net.Dialer
		for range n {
			nc, err := d.DialContext(ctx, "tcp", gwAddr)
			if err != nil {
				t.Fatalf("dial %d: %v", len(conns), err)
			}
			conns = append(conns, nc)
		}
		// Meanwhile an authenticated client is served.
		c := dialLink(t, gwAddr)
		wantStatus(t, c.auth(phone.Token, ""), wire.KindResponse, svrkit.OK, "")
		// Every silent connection is closed by the auth timeout (10s,
		// checked every second), with a goaway unauthenticated.
		var cut, goaways atomic.Int64
		var wg sync.WaitGroup
		deadline := time.Now().Add(45 * time.Second)
		for _, nc := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = nc.SetReadDeadline(deadline)
				br := bufio.NewReader(nc)
				for {
					f, err := readFrame(br)
					if err != nil {
						var ne net.Error
						if !errors.As(err, &ne) || !ne.Timeout() {
							cut.Add(1)
						}
						return
					}
					if f.Kind == wire.KindGoAway && svrkit.Code(f.Status) == svrkit.Unauthenticated {
						goaways.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if cut.Load() != n || goaways.Load() != n {
			t.Fatalf("of %d silent connections %d were closed and %d told why within 45s", n, cut.Load(), goaways.Load())
		}
		body, _ := proto.Marshal(&im.SyncRequest{})
		c.write(wire.Header{Kind: wire.KindRequest, ReqID: 2, CmdID: 401}, body)
		wantStatus(t, c.read(), wire.KindResponse, svrkit.OK, "")
	})

	if in := b.Instance("gateway"); in.PID != gwPID || in.Restarts != 0 {
		t.Fatalf("the gateway was restarted during bad input (pid %d → %d, %d restarts)", gwPID, in.PID, in.Restarts)
	}

	t.Run("gateway SIGKILLed mid-load and presence restarted", func(t *testing.T) {
		chatUnderFaults(t, ctx, b, addrs)
	})
}

// chatUnderFaults: users send to each other over HTTP while each user's
// tablet receives over the long link by push alone (imclient.Watch, no
// polling). The gateway is SIGKILLed in the middle, and later presence:
// every tablet reconnects and resyncs, and receives every acknowledged
// message exactly once.
func chatUnderFaults(t *testing.T, ctx context.Context, b *imtest.Backend, addrs imclient.Addrs) {
	const users, perSender = 4, 60
	type user struct {
		id            uint64
		phone, tablet *imclient.Client
		mu            sync.Mutex
		got           map[string]int
	}
	us := make([]*user, users)
	for i := range us {
		name := fmt.Sprintf("load%d", i)
		u := &user{phone: imclient.New(addrs), tablet: imclient.New(addrs), got: map[string]int{}}
		id, err := u.phone.Register(ctx, name, "password-"+name, "")
		if err != nil {
			t.Fatal(err)
		}
		u.id = id
		if _, err := u.phone.Login(ctx, name, "password-"+name, "phone"); err != nil {
			t.Fatal(err)
		}
		if _, err := u.tablet.Login(ctx, name, "password-"+name, "tablet"); err != nil {
			t.Fatal(err)
		}
		if err := u.tablet.Connect(ctx, imclient.WithBackoff(50*time.Millisecond, time.Second)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { u.tablet.Close() })
		us[i] = u
	}
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	var watchers sync.WaitGroup
	for _, u := range us {
		watchers.Add(1)
		go func() {
			defer watchers.Done()
			_ = u.tablet.Watch(watchCtx, func(r *im.SyncReply) error {
				u.mu.Lock()
				defer u.mu.Unlock()
				for _, it := range r.GetItems() {
					if m := it.GetMessage(); m != nil && m.GetFromUserId() != u.id {
						u.got[m.GetClientMsgId()]++
					}
				}
				return nil
			})
		}()
	}
	// Senders: each phone sends perSender messages round robin, one at a
	// time; the faults come at a third and at two thirds.
	var sent atomic.Int64
	expect := make([]map[string]bool, users)
	for i := range expect {
		expect[i] = map[string]bool{}
	}
	var mu sync.Mutex
	var senders sync.WaitGroup
	for i, u := range us {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for n := range perSender {
				to := (i + 1 + n%(users-1)) % users
				id := fmt.Sprintf("m-%d-%d", i, n)
				if _, err := u.phone.SendText(ctx, us[to].id, id, "hello "+id); err != nil {
					t.Errorf("send %s: %v", id, err)
					return
				}
				mu.Lock()
				expect[to][id] = true
				mu.Unlock()
				sent.Add(1)
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	fault := func(name string, at int64) {
		waitUntil(t, 2*time.Minute, fmt.Sprintf("%d messages sent before killing %s", at, name), func() bool { return sent.Load() >= at })
		pid, err := b.Kill(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.WaitReady(ctx, name, pid, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	fault("gateway", users*perSender/3)
	fault("presence", 2*users*perSender/3)
	senders.Wait()
	complete := func() bool {
		for i, u := range us {
			u.mu.Lock()
			n := 0
			for id := range expect[i] {
				if u.got[id] > 0 {
					n++
				}
			}
			u.mu.Unlock()
			if n < len(expect[i]) {
				return false
			}
		}
		return true
	}
	// No polling anywhere: only pushes (and the sync after a reconnect)
	// bring these messages.
	waitUntil(t, 60*time.Second, "every tablet to have every message", complete)
	stopWatching()
	watchers.Wait()
	for i, u := range us {
		for id, n := range u.got {
			if n != 1 {
				t.Errorf("user %d received %s %d times", i, id, n)
			}
			if !expect[i][id] {
				t.Errorf("user %d received %s, never acknowledged to its sender", i, id)
			}
		}
		if st := u.tablet.LinkStats(); st.Connects < 2 || st.Pushes == 0 {
			t.Errorf("user %d's link: %+v; want a reconnect after the gateway's death, and pushes", i, st)
		}
	}
}

// rawLink is a long-link client that writes whatever a test tells it.
type rawLink struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialLink(t *testing.T, addr string) *rawLink {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawLink{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *rawLink) raw(b []byte) {
	c.t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawLink) write(h wire.Header, body []byte) {
	c.t.Helper()
	b, err := wire.AppendFrame(nil, &h, nil, "", body, 0)
	if err != nil {
		c.t.Fatal(err)
	}
	c.raw(b)
}

func (c *rawLink) auth(token, device string) wire.Frame {
	c.t.Helper()
	var md []byte
	if device != "" {
		md = wire.AppendMeta(nil, link.MetaDeviceID, device)
	}
	b, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindAuth}, md, "", []byte(token), 0)
	c.raw(b)
	return c.read()
}

func (c *rawLink) read() wire.Frame {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	f, err := readFrame(c.br)
	if err != nil {
		c.t.Fatalf("reading a frame: %v", err)
	}
	return f
}

// expectClosed reads until the gateway closes the connection (bounded)
// and returns the last frame read (a goaway, if it sent one).
func (c *rawLink) expectClosed() wire.Frame {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var last wire.Frame
	for {
		f, err := readFrame(c.br)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatal("the gateway did not close the connection within 30s")
			}
			return last
		}
		last = f
	}
}

func readFrame(br *bufio.Reader) (wire.Frame, error) {
	pre, err := br.Peek(wire.PrefixSize)
	if err != nil {
		return wire.Frame{}, err
	}
	size, err := wire.FrameSize(pre, link.MaxServerFrame)
	if err != nil {
		return wire.Frame{}, err
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(br, buf); err != nil {
		return wire.Frame{}, err
	}
	return wire.Parse(buf, link.MaxServerFrame)
}

func wantStatus(t *testing.T, f wire.Frame, kind wire.Kind, code svrkit.Code, msg string) {
	t.Helper()
	if f.Kind != kind || svrkit.Code(f.Status) != code || !strings.Contains(string(f.Msg), msg) {
		t.Fatalf("got a %v frame with status %v %q; want a %v frame with %v %q", f.Kind, svrkit.Code(f.Status), f.Msg, kind, code, msg)
	}
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
