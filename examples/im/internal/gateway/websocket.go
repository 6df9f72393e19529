package gateway

import (
	"bytes"
	"encoding/binary"
	"io"

	"github.com/gobwas/ws"

	"github.com/svrkit/svrkit/examples/im/link"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/wire"
)

// WebSocket on the event loop: the upgrade request is read from gnet's
// buffer whole and answered by gobwas/ws's Upgrader (which checks the
// request and writes the 101 or the error response); frames are then cut
// from the buffer like TCP frames, unmasked in place with gobwas's cipher
// and handled by the same code as TCP frames (binary messages) or as JSON
// messages (text). Control frames are answered at once; a fragmented
// message is reassembled up to the frame limit.

var (
	crlf2    = []byte("\r\n\r\n")
	upgrader = ws.Upgrader{
		ReadBufferSize: link.MaxHandshake,
		OnRequest: func(uri []byte) error {
			if path, _, _ := bytes.Cut(uri, []byte("?")); string(path) != link.WebSocketPath {
				return ws.RejectConnectionError(ws.RejectionStatus(404), ws.RejectionReason("the long link is at "+link.WebSocketPath))
			}
			return nil
		},
	}
	tooLongHandshake = []byte("HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
)

// readHandshake answers the upgrade request once it is whole.
func (c *Conn) readHandshake() bool {
	gc := c.gc
	n := gc.InboundBuffered()
	b, _ := gc.Peek(n)
	end := bytes.Index(b, crlf2)
	if end+4 > link.MaxHandshake || (end < 0 && n > link.MaxHandshake) {
		c.send(tooLongHandshake)
		c.leave()
		c.closeAfterFlush()
		return false
	}
	if end < 0 {
		return false
	}
	var resp bytes.Buffer
	_, err := upgrader.Upgrade(struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(b[:end+4]), &resp})
	_, _ = gc.Discard(end + 4)
	c.send(resp.Bytes())
	if err != nil {
		c.leave()
		c.closeAfterFlush()
		return false
	}
	c.setMode(modeWS)
	return true
}

// wsHeader is a parsed WebSocket frame header.
type wsHeader struct {
	fin    bool
	rsv    byte
	op     ws.OpCode
	masked bool
	mask   [4]byte
	length uint64
	size   int // of the header itself
}

// parseWSHeader parses the frame header at the start of b. It returns
// ok false when b does not hold all of it yet.
func parseWSHeader(b []byte) (h wsHeader, ok bool) {
	if len(b) < 2 {
		return h, false
	}
	h.fin, h.rsv, h.op = b[0]&0x80 != 0, b[0]&0x70, ws.OpCode(b[0]&0x0f)
	h.masked = b[1]&0x80 != 0
	l7 := b[1] & 0x7f
	h.size = 2
	switch l7 {
	case 126:
		h.size += 2
	case 127:
		h.size += 8
	}
	if h.masked {
		h.size += 4
	}
	if len(b) < h.size {
		return h, false
	}
	switch l7 {
	case 126:
		h.length = uint64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		h.length = binary.BigEndian.Uint64(b[2:])
	default:
		h.length = uint64(l7)
	}
	if h.masked {
		copy(h.mask[:], b[h.size-4:h.size])
	}
	return h, true
}

// check returns why a client may not send the frame h heads, or "".
func (h *wsHeader) check() string {
	switch {
	case h.rsv != 0:
		return "reserved bits set (no extension was negotiated)"
	case !h.masked:
		return "a client's frames must be masked"
	case h.op.IsReserved():
		return "reserved opcode"
	case h.op.IsControl() && (!h.fin || h.length > 125):
		return "a control frame must be whole and at most 125 bytes"
	}
	return ""
}

// readWebSocket handles one whole WebSocket frame from the input, if there
// is one, and reports whether to look for another.
func (c *Conn) readWebSocket() bool {
	gc := c.gc
	b, _ := gc.Peek(min(gc.InboundBuffered(), ws.MaxHeaderSize))
	h, ok := parseWSHeader(b)
	if !ok {
		return false
	}
	if why := h.check(); why != "" {
		c.wsError(why)
		return false
	}
	if h.length+uint64(len(c.wsFrag)) > link.MaxClientFrame {
		c.goAway(svrkit.Errorf(svrkit.ResourceExhausted, "message over the %d-byte limit", link.MaxClientFrame), true)
		return false
	}
	total := h.size + int(h.length)
	if gc.InboundBuffered() < total {
		return false
	}
	frame, _ := gc.Peek(total)
	payload := frame[h.size:]
	ws.Cipher(payload, h.mask, 0)
	c.handleWSFrame(h.fin, h.op, payload)
	_, _ = gc.Discard(total)
	return true
}

// handleWSFrame acts on one unmasked frame. payload aliases gnet's buffer.
func (c *Conn) handleWSFrame(fin bool, op ws.OpCode, payload []byte) {
	switch op {
	case ws.OpPing:
		c.send(wsFrame(ws.OpPong, payload))
	case ws.OpPong:
	case ws.OpClose:
		// The client is done: answer its close (echoing its code) and close.
		code, _ := ws.ParseCloseFrameData(payload)
		if !c.leave() {
			return
		}
		if code.Empty() {
			code = ws.StatusNormalClosure
		}
		c.send(wsFrame(ws.OpClose, ws.NewCloseFrameBody(code, "")))
		c.closeAfterFlush()
	case ws.OpContinuation:
		if c.wsFrag == nil {
			c.wsError("a continuation frame without a message to continue")
			return
		}
		c.wsFrag = append(c.wsFrag, payload...)
		if fin {
			msg, msgOp := c.wsFrag, c.wsOp
			c.wsFrag = nil
			c.wsMessage(ws.OpCode(msgOp), msg)
		}
	default: // text or binary
		switch {
		case c.wsFrag != nil:
			c.wsError("a new message inside a fragmented one")
		case !fin:
			c.wsFrag, c.wsOp = append(make([]byte, 0, 2*len(payload)), payload...), uint8(op)
		default:
			c.wsMessage(op, payload)
		}
	}
}

// wsError closes a connection that broke the WebSocket protocol.
func (c *Conn) wsError(why string) {
	c.goAway(svrkit.NewError(svrkit.InvalidArgument, "WebSocket protocol error: "+why), true)
}

// wsMessage handles one whole message; the first fixes the connection's
// mode (text: JSON, binary: frames).
func (c *Conn) wsMessage(op ws.OpCode, msg []byte) {
	text := op == ws.OpText
	switch mode := c.getMode(); {
	case mode == modeWS && text:
		c.setMode(modeWSJSON)
	case mode == modeWS:
		c.setMode(modeWSBinary)
	case text != (mode == modeWSJSON):
		c.goAway(svrkit.NewError(svrkit.InvalidArgument, "text and binary messages mixed on one connection"), true)
		return
	}
	if text {
		c.jsonMessage(msg)
		return
	}
	size, err := wire.FrameSize(msg, link.MaxClientFrame)
	if err == nil && size != len(msg) {
		err = wire.ErrSections
	}
	var f wire.Frame
	if err == nil {
		f, err = wire.Parse(msg, link.MaxClientFrame)
	}
	if err != nil {
		c.protocolError(err)
		return
	}
	c.handleFrame(&f)
}

// jsonMessage handles a JSON-mode message (see package link).
func (c *Conn) jsonMessage(b []byte) {
	m, err := link.ParseMessage(b)
	if err != nil {
		c.goAway(svrkit.NewError(svrkit.InvalidArgument, err.Error()), true)
		return
	}
	if c.state.Load() == stateNew {
		if m.Type != link.TypeAuth {
			c.goAway(link.ErrAuthFirst, true)
			return
		}
		c.auth(m.ID, m.Token, m.DeviceID)
		return
	}
	switch m.Type {
	case link.TypeRequest:
		timeout := uint64(m.TimeoutMs) * 1000
		c.request(m.ID, m.Cmd, uint32(min(timeout, uint64(^uint32(0)))), nil, m)
	case link.TypePing:
		c.send(c.encodePong(m.ID, nil))
	case link.TypeCancel:
		c.cancel(m.ID)
	case link.TypePong:
	case link.TypeAuth:
		c.goAway(svrkit.NewError(svrkit.InvalidArgument, "a second auth message"), true)
	default:
		c.goAway(svrkit.Errorf(svrkit.InvalidArgument, "a client may not send %q messages", m.Type), true)
	}
}

// wsFrame encodes a server frame: FIN, unmasked.
func wsFrame(op ws.OpCode, payload []byte) []byte {
	n := len(payload)
	out := make([]byte, 0, ws.MaxHeaderSize+n)
	w := appendWriter{&out}
	_ = ws.WriteHeader(w, ws.Header{Fin: true, OpCode: op, Length: int64(n)})
	return append(out, payload...)
}

// appendWriter is an io.Writer appending to a slice.
type appendWriter struct{ b *[]byte }

func (w appendWriter) Write(p []byte) (int, error) {
	*w.b = append(*w.b, p...)
	return len(p), nil
}
