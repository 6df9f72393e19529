package gateway

import (
	"encoding/json"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/link"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor"
	"github.com/svrkit/svrkit/svrkit/wire"
)

// send queues one encoded frame (nil: nothing) and starts a write if none
// is in progress. Safe from any goroutine.
//
// Backpressure: frames collect in out only while a write is in progress
// (a write completes as soon as gnet has the bytes, whatever the client
// does), and the loop checks gnet's outbound buffer after each write (see
// flushed). A connection over MaxPending either way is cut off.
func (c *Conn) send(b []byte) {
	if b == nil {
		return
	}
	c.mu.Lock()
	if c.closed || c.closing {
		c.mu.Unlock()
		return
	}
	if len(c.out) > 0 && len(c.out)+len(b) > c.s.cfg.MaxPending {
		c.cutOffLocked()
		return
	}
	c.out = append(c.out, b...)
	c.startWriteLocked()
}

// startWriteLocked hands what is pending to gnet unless a write is in
// progress; called with c.mu held, it releases it.
func (c *Conn) startWriteLocked() {
	if c.writing || len(c.out) == 0 {
		c.mu.Unlock()
		return
	}
	buf := c.out
	c.out = nil
	c.writing = true
	c.mu.Unlock()
	if err := c.gc.AsyncWrite(buf, c.flushed); err != nil {
		c.mu.Lock()
		c.writing = false
		c.mu.Unlock()
	}
}

// flushed runs on the event loop when gnet has taken a write: it records
// what the client has not yet taken, cuts off a client over the limit,
// writes what was queued meanwhile, and closes a connection that was to be
// closed once flushed.
func (c *Conn) flushed(gc gnet.Conn, err error) error {
	c.mu.Lock()
	c.writing = false
	if err != nil || c.closed {
		c.closed = true
		c.out = nil
		c.mu.Unlock()
		return nil
	}
	c.backlog = gc.OutboundBuffered()
	if c.backlog > c.s.cfg.MaxPending {
		c.cutOffLocked()
		return nil
	}
	if len(c.out) > 0 {
		c.startWriteLocked()
		return nil
	}
	closing := c.closing
	c.mu.Unlock()
	if closing {
		_ = gc.Close()
	}
	return nil
}

// cutOffLocked closes a connection whose client does not read; called with
// c.mu held, it releases it. No goaway: the client would not read it.
func (c *Conn) cutOffLocked() {
	c.closing = true
	c.out = nil
	c.mu.Unlock()
	c.leave()
	monitor.Add(im.Monitor_LINK_CUTOFFS_ID, 1)
	c.s.log.Debug("gateway: cut off a client that does not read", "conn", c.id, "peer", c.gc.RemoteAddr())
	_ = c.gc.Close()
}

// leave moves the connection to stateClosing, once, and reports whether
// this call did.
func (c *Conn) leave() bool {
	prev := c.state.Swap(stateClosing)
	if prev == stateClosing {
		return false
	}
	c.s.mu.Lock()
	c.s.countLocked(prev, stateClosing)
	c.s.mu.Unlock()
	return true
}

// goAway tells the client why the gateway is done with the connection:
// a goaway frame on TCP; on a WebSocket, the close frame that
// closeAfterFlush sends. Reads stop at once; with closeNow the connection
// closes once that is written, otherwise (a shutdown) the caller closes it
// after the requests in flight are answered.
func (c *Conn) goAway(err error, closeNow bool) {
	if !c.leave() {
		return
	}
	e := svrkit.AsError(err)
	c.mu.Lock()
	c.bye = e
	c.mu.Unlock()
	if c.getMode() == modeTCP || c.getMode() == modeUnknown {
		c.send(c.encodeGoAway(e))
	}
	if e.Code() != svrkit.Unavailable {
		monitor.Add(im.Monitor_LINK_CUTOFFS_ID, 1)
	}
	if closeNow {
		c.closeAfterFlush()
	}
}

// closeAfterFlush closes the connection once what is queued is written
// (on a WebSocket after a close frame with the goaway's status).
func (c *Conn) closeAfterFlush() {
	c.leave()
	c.mu.Lock()
	if c.closed || c.closing {
		c.mu.Unlock()
		return
	}
	if c.getMode() >= modeWS && c.bye != nil {
		c.out = append(c.out, wsFrame(ws.OpClose, ws.NewCloseFrameBody(ws.StatusCode(link.CloseCode(c.bye.Code())), truncate(c.bye.Message(), 123)))...)
	}
	c.closing = true
	if !c.writing && len(c.out) == 0 {
		c.mu.Unlock()
		_ = c.gc.Close()
		return
	}
	c.startWriteLocked()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// binaryMode reports whether the connection's messages are wire frames
// (TCP or WebSocket binary) rather than JSON.
func (c *Conn) binaryMode() bool { return c.getMode() != modeWSJSON }

// frame wraps an encoded wire frame for the connection's transport.
func (c *Conn) frame(b []byte) []byte {
	if c.getMode() == modeWSBinary {
		return wsFrame(ws.OpBinary, b)
	}
	return b
}

// jsonFrame encodes a JSON-mode message.
func jsonFrame(m *link.Message) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		return nil // only RawMessage bodies, which protojson made
	}
	return wsFrame(ws.OpText, b)
}

var protoJSON = protojson.MarshalOptions{}

// encodeResponse encodes the response to request id: resp, or err.
func (c *Conn) encodeResponse(id uint32, resp proto.Message, err error) []byte {
	if err == nil && resp == nil {
		err = svrkit.NewError(svrkit.Internal, "no response")
	}
	if !c.binaryMode() {
		m := &link.Message{Type: link.TypeResponse, ID: id}
		if err != nil {
			e := svrkit.AsError(err)
			m.Code, m.Text = codeName(e.Code()), e.Message()
		} else if m.Body, err = protoJSON.Marshal(resp); err != nil {
			m.Code, m.Text = "internal", "cannot encode response: "+err.Error()
		}
		return jsonFrame(m)
	}
	h := wire.Header{Kind: wire.KindResponse, ReqID: id}
	var body []byte
	msg := ""
	if err != nil {
		e := svrkit.AsError(err)
		h.Status, msg = uint32(codeOrUnknown(e.Code())), e.Message()
		if d := e.Details(); len(d) > 0 {
			body, _ = proto.Marshal(&status.Status{Details: d})
		}
	} else if body, err = proto.Marshal(resp); err != nil {
		h.Status, msg = uint32(svrkit.Internal), "cannot encode response: "+err.Error()
	}
	b, ferr := wire.AppendFrame(nil, &h, nil, msg, body, link.MaxServerFrame)
	if ferr != nil {
		h.Status = uint32(svrkit.ResourceExhausted)
		b, _ = wire.AppendFrame(nil, &h, nil, "the response is over the link's frame limit (sync with a smaller limit)", nil, 0)
	}
	return c.frame(b)
}

func codeOrUnknown(c svrkit.Code) svrkit.Code {
	if c == svrkit.OK {
		return svrkit.Unknown
	}
	return c
}

func codeName(c svrkit.Code) string { return codeOrUnknown(c).String() }

// encodePong answers a ping.
func (c *Conn) encodePong(id uint32, body []byte) []byte {
	if !c.binaryMode() {
		return jsonFrame(&link.Message{Type: link.TypePong, ID: id})
	}
	b, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindPong, ReqID: id}, nil, "", body, 0)
	return c.frame(b)
}

// encodeGoAway is a TCP goaway frame (WebSockets close instead).
func (c *Conn) encodeGoAway(e *svrkit.Error) []byte {
	b, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindGoAway, Status: uint32(codeOrUnknown(e.Code()))}, nil, e.Message(), nil, 0)
	return b
}

// push queues a sync notify.
func (c *Conn) push(n *im.SyncNotify) {
	if c.binaryMode() {
		body, _ := proto.Marshal(n)
		b, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindPush, CmdID: link.PushSyncNotify}, nil, "", body, 0)
		c.send(c.frame(b))
	} else {
		body, _ := protoJSON.Marshal(n)
		c.send(jsonFrame(&link.Message{Type: link.TypePush, Cmd: link.PushSyncNotify, Body: body}))
	}
	monitor.Add(im.Monitor_PUSH_DELIVERED_ID, 1)
}

// authReply is the body of a successful auth's response.
func authReply(c *Conn, cfg Config) *im.LinkAuthReply {
	return &im.LinkAuthReply{
		UserId:        c.claims.UserID,
		DeviceId:      c.claims.DeviceID,
		ExpiresUnix:   c.claims.Expires.Unix(),
		HeartbeatMs:   uint32(cfg.Heartbeat / time.Millisecond),
		IdleTimeoutMs: uint32(cfg.IdleTimeout / time.Millisecond),
		ConnId:        c.id,
		ServerUnixMs:  time.Now().UnixMilli(),
	}
}

func (s *Server) authFailed() { monitor.Add(im.Monitor_LINK_AUTH_FAILURES_ID, 1) }

// report publishes the connection counts to the monitor points.
func (s *Server) report() {
	st := s.Stats()
	monitor.Set(im.Monitor_ONLINE_DEVICES_ID, int64(st.Authenticated))
	monitor.Set(im.Monitor_LINK_UNAUTHENTICATED_ID, int64(st.Unauthenticated))
}

// decode decodes a request body: protobuf from a frame, or protojson from
// a JSON message.
func (c *Conn) decode(body []byte, m *link.Message, req proto.Message) error {
	if m != nil {
		if len(m.Body) == 0 {
			return nil
		}
		return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(m.Body, req)
	}
	return proto.Unmarshal(body, req)
}
