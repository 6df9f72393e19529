package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/link"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/wire"
)

func dialWS(t testing.TB, s *Server) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, br, _, err := ws.Dial(ctx, "ws://"+s.Addr().String()+link.WebSocketPath)
	if err != nil {
		t.Fatal(err)
	}
	if br != nil {
		ws.PutReader(br)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sendJSON(t testing.TB, c net.Conn, m link.Message) {
	t.Helper()
	b, _ := json.Marshal(m)
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := wsutil.WriteClientText(c, b); err != nil {
		t.Fatal(err)
	}
}

// readWS returns the next data message (answering nothing: control frames
// are skipped), or a wsutil.ClosedError for the gateway's close frame.
func readWS(c net.Conn) ([]byte, ws.OpCode, error) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		h, err := ws.ReadHeader(c)
		if err != nil {
			return nil, 0, err
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(c, p); err != nil {
			return nil, 0, err
		}
		switch h.OpCode {
		case ws.OpClose:
			code, reason := ws.ParseCloseFrameData(p)
			return nil, h.OpCode, wsutil.ClosedError{Code: code, Reason: reason}
		case ws.OpPing, ws.OpPong:
			continue
		}
		return p, h.OpCode, nil
	}
}

func readJSON(t testing.TB, c net.Conn) *link.Message {
	t.Helper()
	b, op, err := readWS(c)
	if err != nil {
		t.Fatalf("reading a message: %v", err)
	}
	if op != ws.OpText {
		t.Fatalf("got a %v message in JSON mode", op)
	}
	m, err := link.ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// expectWSClose reads until the gateway's close frame and returns its
// code and reason.
func expectWSClose(t testing.TB, c net.Conn) (uint16, string) {
	t.Helper()
	for {
		_, _, err := readWS(c)
		var ce wsutil.ClosedError
		if errors.As(err, &ce) {
			return uint16(ce.Code), ce.Reason
		}
		if err != nil {
			t.Fatalf("waiting for a close frame: %v", err)
		}
	}
}

// TestWebSocketJSON is the browser's path: JSON messages on a WebSocket,
// methods by name or cmdid, pushes and pings, and a goaway as a close code.
func TestWebSocketJSON(t *testing.T) {
	be := newFakeBackend(t)
	s := startGateway(t, Config{}, be)
	c := dialWS(t, s)
	sendJSON(t, c, link.Message{Type: link.TypeAuth, ID: 5, Token: be.token(t, 42, "web", time.Hour), DeviceID: "web"})
	m := readJSON(t, c)
	var ar im.LinkAuthReply
	if m.Type != link.TypeResponse || m.ID != 5 || m.Err() != nil || protojson.Unmarshal(m.Body, &ar) != nil || ar.GetUserId() != 42 {
		t.Fatalf("auth answered %+v", m)
	}
	sendJSON(t, c, link.Message{Type: link.TypeRequest, ID: 6, Method: "im.Sync/Sync", Body: json.RawMessage(`{"limit": 10}`)})
	m = readJSON(t, c)
	var sr im.SyncReply
	if m.ID != 6 || m.Err() != nil || protojson.Unmarshal(m.Body, &sr) != nil || string(sr.GetSyncKey()) != "web" {
		t.Fatalf("Sync answered %+v", m)
	}
	sendJSON(t, c, link.Message{Type: link.TypeRequest, ID: 7, Cmd: 103})
	if m = readJSON(t, c); m.ID != 7 || !strings.Contains(string(m.Body), `"userId":"42"`) {
		t.Fatalf("GetProfile answered %+v", m)
	}
	sendJSON(t, c, link.Message{Type: link.TypeRequest, ID: 8, Method: "im.Nothing/Nope"})
	if m = readJSON(t, c); svrkit.CodeOf(m.Err()) != svrkit.Unimplemented || !strings.Contains(m.Text, `unknown method "im.Nothing/Nope"`) {
		t.Fatalf("unknown method answered %+v", m)
	}
	sendJSON(t, c, link.Message{Type: link.TypeRequest, ID: 9, Cmd: 301, Body: json.RawMessage(`{"text": 5}`)})
	if m = readJSON(t, c); svrkit.CodeOf(m.Err()) != svrkit.InvalidArgument {
		t.Fatalf("bad body answered %+v", m)
	}
	sendJSON(t, c, link.Message{Type: link.TypePing, ID: 10})
	if m = readJSON(t, c); m.Type != link.TypePong || m.ID != 10 {
		t.Fatalf("ping answered %+v", m)
	}
	// WebSocket pings are answered too.
	if err := wsutil.WriteClientMessage(c, ws.OpPing, []byte("hb")); err != nil {
		t.Fatal(err)
	}
	s.Push(&im.LinkTarget{UserId: 42, DeviceId: "web", ConnId: ar.GetConnId()}, &im.SyncNotify{Type: im.SyncType_SYNC_TYPE_CONTACTS, Version: 3})
	m = readJSON(t, c) // the pong is skipped
	if m.Type != link.TypePush || m.Cmd != link.PushSyncNotify || !strings.Contains(string(m.Body), `"SYNC_TYPE_CONTACTS"`) {
		t.Fatalf("push %+v", m)
	}
	// Replaced: close code 4000 + aborted.
	s.Kick(&im.LinkTarget{UserId: 42, DeviceId: "web", ConnId: ar.GetConnId()})
	code, reason := expectWSClose(t, c)
	if got, _ := link.CodeOfClose(code); got != svrkit.Aborted || !strings.Contains(reason, "replaced") {
		t.Fatalf("close %d %q, want 4010 replaced", code, reason)
	}
}

// TestWebSocketBinary: binary messages carry TCP frames unchanged.
func TestWebSocketBinary(t *testing.T) {
	be := newFakeBackend(t)
	s := startGateway(t, Config{}, be)
	c := dialWS(t, s)
	write := func(h wire.Header, body []byte) {
		t.Helper()
		b, _ := wire.AppendFrame(nil, &h, nil, "", body, 0)
		if err := wsutil.WriteClientBinary(c, b); err != nil {
			t.Fatal(err)
		}
	}
	read := func() wire.Frame {
		t.Helper()
		b, op, err := readWS(c)
		if err != nil || op != ws.OpBinary {
			t.Fatalf("read: %v %v", op, err)
		}
		f, err := wire.Parse(b, 0)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	write(wire.Header{Kind: wire.KindAuth, ReqID: 1}, []byte(be.token(t, 7, "app", time.Hour)))
	if f := read(); f.Status != 0 {
		t.Fatalf("auth: %d %q", f.Status, f.Msg)
	}
	body, _ := proto.Marshal(&im.SyncRequest{})
	write(wire.Header{Kind: wire.KindRequest, ReqID: 2, CmdID: 401}, body)
	f := read()
	var sr im.SyncReply
	if f.Status != 0 || proto.Unmarshal(f.Body, &sr) != nil || string(sr.GetSyncKey()) != "app" {
		t.Fatalf("Sync: %d %q %v", f.Status, f.Msg, &sr)
	}
	// A text message on a binary connection is a protocol error.
	if err := wsutil.WriteClientText(c, []byte(`{"type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	code, reason := expectWSClose(t, c)
	if got, _ := link.CodeOfClose(code); got != svrkit.InvalidArgument || !strings.Contains(reason, "mixed") {
		t.Fatalf("close %d %q", code, reason)
	}
}

// TestWebSocketRefusals: a bad upgrade gets an HTTP error; protocol
// violations and oversized messages close with their codes; an auth
// failure is answered and closed.
func TestWebSocketRefusals(t *testing.T) {
	be := newFakeBackend(t)
	s := startGateway(t, Config{}, be)

	for _, tc := range []struct{ req, status string }{
		{"GET /elsewhere HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", "404"},
		{"GET /link HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
		{"GET /link HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", link.MaxHandshake) + "\r\n\r\n", "431"},
	} {
		conn, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write([]byte(tc.req)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%.40q: %v", tc.req, err)
		}
		if !strings.HasPrefix(resp.Status, tc.status) {
			t.Errorf("%.40q answered %s, want %s", tc.req, resp.Status, tc.status)
		}
		conn.Close()
	}

	closeWith := func(name string, code svrkit.Code, msg string, act func(c net.Conn)) {
		t.Run(name, func(t *testing.T) {
			c := dialWS(t, s)
			act(c)
			got, reason := expectWSClose(t, c)
			if cc, _ := link.CodeOfClose(got); cc != code || !strings.Contains(reason, msg) {
				t.Fatalf("close %d %q, want %v %q", got, reason, code, msg)
			}
		})
	}
	authed := func(c net.Conn) {
		sendJSON(t, c, link.Message{Type: link.TypeAuth, Token: be.token(t, 1, "w", time.Hour)})
		readJSON(t, c)
	}
	closeWith("unmasked frame", svrkit.InvalidArgument, "must be masked", func(c net.Conn) {
		_ = ws.WriteFrame(c, ws.NewTextFrame([]byte(`{"type":"ping"}`)))
	})
	closeWith("oversized message", svrkit.ResourceExhausted, "over the 131072-byte limit", func(c net.Conn) {
		authed(c)
		_ = wsutil.WriteClientText(c, make([]byte, link.MaxClientFrame+1))
	})
	closeWith("not JSON", svrkit.InvalidArgument, "malformed JSON", func(c net.Conn) {
		_ = wsutil.WriteClientText(c, []byte("hello"))
	})
	closeWith("request first", svrkit.Unauthenticated, "first frame must be auth", func(c net.Conn) {
		sendJSON(t, c, link.Message{Type: link.TypeRequest, ID: 1, Cmd: 401})
	})
	closeWith("fragmented control frame", svrkit.InvalidArgument, "control frame", func(c net.Conn) {
		_ = ws.WriteFrame(c, ws.MaskFrame(ws.NewFrame(ws.OpPing, false, []byte("x"))))
	})
	t.Run("bad token", func(t *testing.T) {
		c := dialWS(t, s)
		sendJSON(t, c, link.Message{Type: link.TypeAuth, ID: 3, Token: "forged"})
		m := readJSON(t, c)
		if m.Type != link.TypeResponse || m.ID != 3 || svrkit.CodeOf(m.Err()) != svrkit.Unauthenticated {
			t.Fatalf("auth answered %+v", m)
		}
		if _, _, err := readWS(c); err == nil {
			t.Fatal("connection still open after a refused auth")
		}
	})
	t.Run("fragments reassembled", func(t *testing.T) {
		c := dialWS(t, s)
		msg, _ := json.Marshal(link.Message{Type: link.TypeAuth, ID: 4, Token: be.token(t, 1, "frag", time.Hour)})
		half := len(msg) / 2
		_ = ws.WriteFrame(c, ws.MaskFrame(ws.NewFrame(ws.OpText, false, msg[:half])))
		_ = ws.WriteFrame(c, ws.MaskFrame(ws.NewFrame(ws.OpContinuation, true, msg[half:])))
		if m := readJSON(t, c); m.ID != 4 || m.Err() != nil {
			t.Fatalf("fragmented auth answered %+v", m)
		}
		// The client closes: its close is echoed.
		_ = ws.WriteFrame(c, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye"))))
		if code, _ := expectWSClose(t, c); code != uint16(ws.StatusNormalClosure) {
			t.Fatalf("echoed close %d", code)
		}
	})
}

// FuzzWSHeader checks the frame header parser against gobwas's reader: the
// same header, or both incomplete.
func FuzzWSHeader(f *testing.F) {
	f.Add([]byte{0x81, 0x85, 1, 2, 3, 4})
	f.Add([]byte{0x82, 0xfe, 0x01, 0x00, 1, 2, 3, 4})
	f.Add([]byte{0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := parseWSHeader(b)
		r := strings.NewReader(string(b))
		want, err := ws.ReadHeader(r)
		consumed := len(b) - r.Len()
		if !ok {
			if err == nil {
				t.Fatalf("%x: incomplete, gobwas read %+v", b, want)
			}
			return
		}
		if err != nil {
			if errors.Is(err, ws.ErrHeaderLengthMSB) {
				return // a length gobwas refuses; ours is checked against the limit
			}
			t.Fatalf("%x: parsed %+v, gobwas: %v", b, h, err)
		}
		if h.fin != want.Fin || h.rsv>>4 != want.Rsv || h.op != want.OpCode || h.masked != want.Masked ||
			h.length != uint64(want.Length) || h.mask != want.Mask || h.size != consumed {
			t.Fatalf("%x: parsed %+v, gobwas %+v (%d bytes)", b, h, want, consumed)
		}
	})
}
