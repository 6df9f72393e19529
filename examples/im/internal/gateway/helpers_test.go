package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/examples/im/link"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/wire"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeBackend verifies tokens with a test secret, records registrations
// and answers a few methods: GetProfile with the caller's id, Sync with its
// device as the key, SendText "block" by waiting for its context.
type fakeBackend struct {
	signer *session.Signer

	mu          sync.Mutex
	online      []uint64 // conn ids, in order
	offline     []uint64
	canceled    int
	onlineDelay time.Duration
}

func newFakeBackend(t testing.TB) *fakeBackend {
	s, err := session.NewSigner("test secret", session.DefaultTTL)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeBackend{signer: s}
}

func (b *fakeBackend) token(t testing.TB, user uint64, device string, ttl time.Duration) string {
	t.Helper()
	tok, _, err := b.signer.Issue(user, device, 0, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (b *fakeBackend) Verify(token string) (session.Claims, error) { return b.signer.Verify(token) }

func (b *fakeBackend) Online(ctx context.Context, c *Conn) error {
	b.mu.Lock()
	d := b.onlineDelay
	b.online = append(b.online, c.ID())
	b.mu.Unlock()
	if d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
	return nil
}

func (b *fakeBackend) Offline(c *Conn) {
	b.mu.Lock()
	b.offline = append(b.offline, c.ID())
	b.mu.Unlock()
}

func (b *fakeBackend) Call(ctx context.Context, c *Conn, r *link.Route, req, resp proto.Message) error {
	cl := c.Claims()
	switch r.Method.FullName {
	case im.Account_GetProfile_FullMethodName:
		proto.Merge(resp, &im.Profile{UserId: cl.UserID, Name: "u"})
	case im.Sync_Sync_FullMethodName:
		proto.Merge(resp, &im.SyncReply{SyncKey: []byte(cl.DeviceID)})
	case im.Send_SendText_FullMethodName:
		if req.(*im.SendTextRequest).GetText() == "slow" {
			time.Sleep(300 * time.Millisecond) // a call in progress during a shutdown
			return svrkit.NewError(svrkit.NotFound, "slow no user")
		}
		if req.(*im.SendTextRequest).GetText() == "block" {
			<-ctx.Done()
			b.mu.Lock()
			b.canceled++
			b.mu.Unlock()
			return svrkit.AsError(ctx.Err())
		}
		return svrkit.NewError(svrkit.NotFound, "no user")
	default:
		return svrkit.NewError(svrkit.Unimplemented, "not in the fake")
	}
	return nil
}

func (b *fakeBackend) counts() (online, offline, canceled int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.online), len(b.offline), b.canceled
}

// startGateway starts a gateway on a free loopback port, stopped when the
// test ends.
func startGateway(t testing.TB, cfg Config, be Backend) *Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	cfg.Logger = quiet
	if cfg.SweepEvery == 0 {
		cfg.SweepEvery = 50 * time.Millisecond
	}
	s := New(cfg, be)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

// tcpClient is a raw long-link client: it writes and reads frames.
type tcpClient struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialTCP(t testing.TB, s *Server) *tcpClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &tcpClient{t: t, c: c, br: bufio.NewReader(c)}
}

func (tc *tcpClient) write(h wire.Header, meta []byte, body []byte) {
	tc.t.Helper()
	b, err := wire.AppendFrame(nil, &h, meta, "", body, 0)
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.writeRaw(b)
}

func (tc *tcpClient) writeRaw(b []byte) {
	tc.t.Helper()
	_ = tc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := tc.c.Write(b); err != nil {
		tc.t.Fatal(err)
	}
}

// read returns the next frame, or an error (io.EOF when the gateway
// closed the connection) within 10s.
func (tc *tcpClient) read() (wire.Frame, error) {
	_ = tc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	pre, err := tc.br.Peek(wire.PrefixSize)
	if err != nil {
		return wire.Frame{}, err
	}
	size, err := wire.FrameSize(pre, link.MaxServerFrame)
	if err != nil {
		return wire.Frame{}, err
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(tc.br, b); err != nil {
		return wire.Frame{}, err
	}
	return wire.Parse(b, link.MaxServerFrame)
}

func (tc *tcpClient) mustRead() wire.Frame {
	tc.t.Helper()
	f, err := tc.read()
	if err != nil {
		tc.t.Fatalf("reading a frame: %v", err)
	}
	return f
}

// auth sends an auth frame and returns its response.
func (tc *tcpClient) auth(token string, meta ...string) wire.Frame {
	tc.t.Helper()
	var md []byte
	for i := 0; i+1 < len(meta); i += 2 {
		md = wire.AppendMeta(md, meta[i], meta[i+1])
	}
	tc.write(wire.Header{Kind: wire.KindAuth, ReqID: 1}, md, []byte(token))
	return tc.mustRead()
}

// call sends a request and returns its response frame, skipping pushes.
func (tc *tcpClient) call(id, cmd uint32, req proto.Message) wire.Frame {
	tc.t.Helper()
	body, _ := proto.Marshal(req)
	tc.write(wire.Header{Kind: wire.KindRequest, ReqID: id, CmdID: cmd}, nil, body)
	for {
		f := tc.mustRead()
		if f.Kind == wire.KindResponse && f.ReqID == id {
			return f
		}
	}
}

// expectClose reads until the gateway closes the connection and returns
// the goaway it sent first, if any.
func (tc *tcpClient) expectClose() (goaway *wire.Frame) {
	tc.t.Helper()
	for {
		f, err := tc.read()
		if err != nil {
			if errors.Is(err, io.EOF) || strings.Contains(err.Error(), "reset") {
				return goaway
			}
			tc.t.Fatalf("waiting for the gateway to close: %v", err)
		}
		if f.Kind == wire.KindGoAway {
			g := f
			goaway = &g
		}
	}
}

func wantStatus(t testing.TB, what string, f wire.Frame, code svrkit.Code, msg string) {
	t.Helper()
	if svrkit.Code(f.Status) != code || !strings.Contains(string(f.Msg), msg) {
		t.Errorf("%s: status %v %q, want %v %q", what, svrkit.Code(f.Status), f.Msg, code, msg)
	}
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
