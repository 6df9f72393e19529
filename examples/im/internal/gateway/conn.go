package gateway

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/examples/im/link"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/netloop"
	"github.com/svrkit/svrkit/svrkit/wire"
)

// Connection states, in order.
const (
	stateNew            int32 = iota // no auth frame yet
	stateAuthenticating              // token verified, being registered
	stateAuthenticated               // online
	stateClosing                     // goaway sent or closing; reads ignored
)

// Transport modes: how a connection's bytes are framed.
const (
	modeUnknown   uint8 = iota // nothing received yet
	modeTCP                    // svrkit wire frames
	modeHandshake              // reading a WebSocket upgrade request
	modeWS                     // upgraded; the auth message will fix binary or JSON
	modeWSBinary               // WebSocket binary messages, one wire frame each
	modeWSJSON                 // WebSocket text messages, one JSON object each
)

// Conn is one client connection. Its exported methods are safe to call
// from any goroutine.
type Conn struct {
	s      *Server
	gc     gnet.Conn
	id     uint64
	opened int64 // the server's clock at accept

	lastRecv atomic.Int64 // the server's clock at the last traffic
	state    atomic.Int32

	// mode is written on the event loop only, read by writers anywhere.
	mode atomic.Uint32

	// On the event loop only.
	authID uint32 // the auth frame's request id, for its response
	wsFrag []byte // a fragmented WebSocket message being reassembled
	wsOp   uint8  // its opcode

	// claims is set before state becomes stateAuthenticating and not
	// changed after.
	claims session.Claims

	mu      sync.Mutex
	out     []byte // encoded frames waiting to be written
	backlog int    // bytes in gnet's outbound buffer, as last seen on the loop
	writing bool   // an AsyncWrite is in progress
	closing bool   // close once what is queued is written
	closed  bool
	bye     *svrkit.Error                 // the goaway's reason, once one is sent
	calls   map[uint32]context.CancelFunc // requests being forwarded
}

func (c *Conn) getMode() uint8  { return uint8(c.mode.Load()) }
func (c *Conn) setMode(m uint8) { c.mode.Store(uint32(m)) }

// ID is the connection's id, unique across the gateway's restarts.
func (c *Conn) ID() uint64 { return c.id }

// Claims is the session the connection authenticated with (zero before).
func (c *Conn) Claims() session.Claims {
	if c.state.Load() < stateAuthenticating {
		return session.Claims{}
	}
	return c.claims
}

// Server is the gateway the connection belongs to.
func (c *Conn) Server() *Server { return c.s }

// events adapts the server to gnet's EventHandler.
type events struct {
	gnet.BuiltinEventEngine
	s *Server
}

func (h *events) OnBoot(eng gnet.Engine) gnet.Action {
	s := h.s
	s.eng = eng
	addr, err := netloop.Addr(eng)
	if err != nil {
		s.booted <- err
		return gnet.Shutdown
	}
	s.addr = addr
	s.booted <- nil
	return gnet.None
}

func (h *events) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	s := h.s
	if s.draining.Load() {
		return nil, gnet.Close
	}
	now := s.clock.Load()
	c := &Conn{s: s, gc: gc, id: s.boot&^0xffffffff | uint64(s.nextID.Add(1)), opened: now}
	c.lastRecv.Store(now)
	gc.SetContext(c)
	s.mu.Lock()
	s.conns[c.id] = c
	s.counts.Unauthenticated++
	s.mu.Unlock()
	return nil, gnet.None
}

func (h *events) OnClose(gc gnet.Conn, _ error) gnet.Action {
	c, _ := gc.Context().(*Conn)
	if c == nil {
		return gnet.None
	}
	prev := c.state.Swap(stateClosing)
	c.mu.Lock()
	c.closed = true
	c.out = nil
	calls := c.calls
	c.calls = nil
	c.mu.Unlock()
	for _, cancel := range calls {
		cancel() // the client is gone
	}
	s := h.s
	s.mu.Lock()
	delete(s.conns, c.id)
	online := false
	if k := (deviceKey{c.claims.UserID, c.claims.DeviceID}); s.byDevice[k] == c {
		delete(s.byDevice, k)
		online = true
	}
	s.countLocked(prev, stateClosing)
	s.mu.Unlock()
	if online && !s.draining.Load() {
		select {
		case s.offlineQ <- c:
		default: // presence forgets it when its entry is replaced or its lease ends
		}
	}
	return gnet.None
}

// countLocked moves a connection between the counts (s.mu held).
func (s *Server) countLocked(from, to int32) {
	switch from {
	case stateNew, stateAuthenticating:
		s.counts.Unauthenticated--
	case stateAuthenticated:
		s.counts.Authenticated--
	case stateClosing:
		return // counted out already
	}
	switch to {
	case stateNew, stateAuthenticating:
		s.counts.Unauthenticated++
	case stateAuthenticated:
		s.counts.Authenticated++
	}
}

// OnTick advances the clock and sweeps the deadlines.
func (h *events) OnTick() (time.Duration, gnet.Action) {
	now := time.Now().UnixMilli()
	h.s.clock.Store(now)
	h.s.sweep(now)
	h.s.report()
	return h.s.cfg.SweepEvery, gnet.None
}

// OnTraffic reads what the client sent: frames, a WebSocket handshake or
// WebSocket messages, as many as are whole.
func (h *events) OnTraffic(gc gnet.Conn) gnet.Action {
	c := gc.Context().(*Conn)
	c.lastRecv.Store(h.s.clock.Load())
	for {
		switch st := c.state.Load(); {
		case st == stateClosing:
			_, _ = gc.Discard(gc.InboundBuffered())
			return gnet.None
		case st == stateAuthenticating:
			// Input waits in gnet's buffer until the auth is answered
			// (authDone wakes the connection), but not without bound.
			if gc.InboundBuffered() > 2*link.MaxClientFrame {
				c.goAway(svrkit.NewError(svrkit.ResourceExhausted, "too much sent before the auth was answered"), true)
			}
			return gnet.None
		}
		var more bool
		switch c.getMode() {
		case modeUnknown:
			b, _ := gc.Peek(1)
			if len(b) == 0 {
				return gnet.None
			}
			if b[0] == 'G' {
				c.setMode(modeHandshake)
			} else {
				c.setMode(modeTCP)
			}
			more = true
		case modeTCP:
			more = c.readTCP()
		case modeHandshake:
			more = c.readHandshake()
		default:
			more = c.readWebSocket()
		}
		if !more {
			return gnet.None
		}
	}
}

// readTCP handles one whole frame from the input, if there is one, and
// reports whether to look for another.
func (c *Conn) readTCP() bool {
	gc := c.gc
	pre, _ := gc.Peek(wire.PrefixSize)
	if len(pre) < wire.PrefixSize {
		return false
	}
	size, err := wire.FrameSize(pre, link.MaxClientFrame)
	if err != nil {
		c.protocolError(err)
		return false
	}
	if gc.InboundBuffered() < size {
		return false
	}
	b, _ := gc.Peek(size)
	f, err := wire.Parse(b, link.MaxClientFrame)
	if err != nil {
		c.protocolError(err)
		return false
	}
	c.handleFrame(&f)
	_, _ = gc.Discard(size)
	return true
}

// protocolError answers a frame that cannot be parsed: the stream cannot
// be resynchronised, so the connection is closed.
func (c *Conn) protocolError(err error) {
	if err == wire.ErrTooLarge {
		c.goAway(svrkit.Errorf(svrkit.ResourceExhausted, "frame over the %d-byte limit", link.MaxClientFrame), true)
		return
	}
	c.goAway(svrkit.Errorf(svrkit.InvalidArgument, "malformed frame: %v", err), true)
}

// handleFrame acts on one frame (TCP, or a WebSocket binary message). It
// runs on the event loop; f aliases gnet's buffer, so whatever outlives
// the call is copied.
func (c *Conn) handleFrame(f *wire.Frame) {
	if c.state.Load() == stateNew {
		if f.Kind != wire.KindAuth {
			c.goAway(link.ErrAuthFirst, true)
			return
		}
		var device string
		_ = wire.RangeMeta(f.Meta, func(k, v []byte) bool {
			if string(k) == link.MetaDeviceID {
				device = string(v)
			}
			return true
		})
		c.auth(f.ReqID, string(f.Body), device)
		return
	}
	switch f.Kind {
	case wire.KindRequest:
		c.request(f.ReqID, f.CmdID, f.Timeout, f.Body, nil)
	case wire.KindPing:
		if len(f.Body) > link.MaxPingBody {
			c.goAway(svrkit.Errorf(svrkit.InvalidArgument, "ping body over %d bytes", link.MaxPingBody), true)
			return
		}
		c.send(c.encodePong(f.ReqID, f.Body))
	case wire.KindCancel:
		c.cancel(f.ReqID)
	case wire.KindPong:
	case wire.KindAuth:
		c.goAway(svrkit.NewError(svrkit.InvalidArgument, "a second auth frame"), true)
	default:
		c.goAway(svrkit.Errorf(svrkit.InvalidArgument, "a client may not send %v frames", f.Kind), true)
	}
}

// auth checks a token on the loop and hands the connection to an online
// worker, which registers it and answers.
func (c *Conn) auth(reqID uint32, token, device string) {
	c.authID = reqID
	claims, err := c.s.be.Verify(strings.TrimSpace(token))
	if err == nil && device != "" && device != claims.DeviceID {
		err = link.ErrWrongDevice
	}
	if err != nil {
		if strings.TrimSpace(token) == "" {
			err = session.ErrMissing
		}
		c.s.authFailed()
		c.send(c.encodeResponse(reqID, nil, err))
		c.closeAfterFlush()
		return
	}
	c.claims = claims
	c.state.Store(stateAuthenticating)
	select {
	case c.s.onlineQ <- c:
	default:
		c.goAway(svrkit.NewError(svrkit.Unavailable, "gateway is overloaded with logins; retry"), true)
	}
}

// authDone runs on an online worker once the connection is registered:
// it takes the device's place (replacing an older connection of it),
// answers the auth and resumes reading.
// authRefused answers an auth the backend refused and closes.
func (c *Conn) authRefused(err error) {
	c.s.authFailed()
	c.send(c.encodeResponse(c.authID, nil, err))
	c.closeAfterFlush()
}

func (c *Conn) authDone() {
	s := c.s
	k := deviceKey{c.claims.UserID, c.claims.DeviceID}
	s.mu.Lock()
	if !c.state.CompareAndSwap(stateAuthenticating, stateAuthenticated) {
		s.mu.Unlock()
		return // closed meanwhile
	}
	old := s.byDevice[k]
	s.byDevice[k] = c
	s.countLocked(stateAuthenticating, stateAuthenticated)
	s.mu.Unlock()
	if old != nil && old != c {
		old.goAway(link.ErrReplaced, true)
	}
	cfg := s.cfg
	c.send(c.encodeResponse(c.authID, authReply(c, cfg), nil))
	_ = c.gc.Wake(nil) // read what came after the auth frame
}

// request decodes one request on the loop and forwards it on a goroutine.
// body aliases gnet's buffer; jsonBody, when set, is a JSON-mode body.
func (c *Conn) request(id, cmd, timeoutUs uint32, body []byte, jsonMsg *link.Message) {
	s := c.s
	var rt *link.Route
	if jsonMsg != nil && jsonMsg.Cmd == 0 && jsonMsg.Method != "" {
		rt = s.cfg.Routes.ByName(jsonMsg.Method)
	} else {
		rt = s.cfg.Routes.ByCmdID(cmd)
	}
	if rt == nil {
		what := fmt.Sprintf("link cmdid %d", cmd)
		if jsonMsg != nil && jsonMsg.Cmd == 0 {
			what = fmt.Sprintf("method %q", jsonMsg.Method)
		}
		c.send(c.encodeResponse(id, nil, svrkit.Errorf(svrkit.Unimplemented, "unknown %s", what)))
		return
	}
	if s.draining.Load() {
		c.send(c.encodeResponse(id, nil, link.ErrShutdown))
		return
	}
	req := rt.Method.NewRequest()
	if err := c.decode(body, jsonMsg, req); err != nil {
		c.send(c.encodeResponse(id, nil, svrkit.Errorf(svrkit.InvalidArgument, "cannot decode %s request: %v", rt.Name(), err)))
		return
	}
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return
	case c.calls[id] != nil:
		c.mu.Unlock()
		c.send(c.encodeResponse(id, nil, svrkit.Errorf(svrkit.InvalidArgument, "request id %d is already in flight on this connection", id)))
		return
	case len(c.calls) >= s.cfg.MaxInflightPerConn:
		c.mu.Unlock()
		c.send(c.encodeResponse(id, nil, svrkit.NewError(svrkit.ResourceExhausted, "too many requests in flight on this connection")))
		return
	}
	if s.inflight.Add(1) > int64(s.cfg.MaxInflight) {
		s.inflight.Add(-1)
		c.mu.Unlock()
		c.send(c.encodeResponse(id, nil, svrkit.NewError(svrkit.ResourceExhausted, "gateway at its limit of requests in flight")))
		return
	}
	ctx, cancel := context.Background(), context.CancelFunc(nil)
	if timeoutUs > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeoutUs)*time.Microsecond)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	if c.calls == nil {
		c.calls = map[uint32]context.CancelFunc{}
	}
	c.calls[id] = cancel
	c.mu.Unlock()
	go c.forward(ctx, cancel, id, rt, req)
}

// forward makes one call and queues its response.
func (c *Conn) forward(ctx context.Context, cancel context.CancelFunc, id uint32, rt *link.Route, req proto.Message) {
	defer c.s.inflight.Add(-1)
	resp := rt.Method.NewResponse()
	err := c.s.be.Call(ctx, c, rt, req, resp)
	c.mu.Lock()
	_, live := c.calls[id]
	delete(c.calls, id)
	c.mu.Unlock()
	cancel()
	if !live {
		return // canceled by the client, or the connection closed
	}
	if err != nil {
		resp = nil
	}
	c.send(c.encodeResponse(id, resp, err))
	if svrkit.CodeOf(err) == svrkit.Unauthenticated {
		// The session ended while the link was up (revoked by a logout or
		// a password change, or expired): every further call would fail
		// the same way, so the link ends with the reason, which tells the
		// client to log in again (link.IsFinal).
		c.goAway(err, true)
	}
}

// cancel abandons a request being forwarded: no response is sent.
func (c *Conn) cancel(id uint32) {
	c.mu.Lock()
	cancel := c.calls[id]
	delete(c.calls, id)
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}
