package svrkit

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/svrkit/wire"
)

// serverConn is the server's state for one connection.
type serverConn struct {
	s          *Server
	c          gnet.Conn
	lastActive atomic.Int64 // the server's coarse clock at the last traffic
	// partialSince is the coarse clock when the input buffer last started
	// holding part of a frame, 0 when it holds none.
	partialSince atomic.Int64
	flushedFn    gnet.AsyncCallback

	wmu      sync.Mutex // held across a worker's write to the socket
	fdClosed bool       // under wmu: gnet is closing the descriptor

	mu       sync.Mutex
	calls    map[uint32]*callCtx // running calls, for cancel frames
	out      []byte              // frames waiting to be written
	spare    []byte              // the other buffer, reused
	inWrite  []byte              // the batch gnet is writing
	backlog  int                 // bytes in gnet's outbound buffer, as last seen on the loop
	writing  bool                // a worker's write or an AsyncWrite is in progress
	closed   bool
	sentAway bool

	// Service authentication, on the event loop (see auth.go). identity
	// is read by workers too, after the loop set it before their calls.
	nonce     []byte
	identity  string
	operator  bool
	authTried bool
	authErr   string

	shard uint32 // the admission shard it counts in

	// arrived is when the event loop read the frames it is handling, read
	// from the clock once per batch (see handleFrames), zero until needed.
	arrived time.Time
}

// arrival returns when the frames being handled arrived: the time of the
// first request of the batch that needed it. Every frame of one read came
// in together, so this is each one's arrival as truly as a read per frame
// would be (for those behind an inline method it is truer: they waited for
// it in the buffer), and it costs one clock read per batch instead of one
// per request, which on a VM is several percent of a call's CPU.
func (sc *serverConn) arrival() time.Time {
	if sc.arrived.IsZero() {
		sc.arrived = time.Now()
	}
	return sc.arrived
}

func (sc *serverConn) touch() { sc.lastActive.Store(sc.s.clock.Load()) }

func (sc *serverConn) handleFrame(f *wire.Frame) gnet.Action {
	switch f.Kind {
	case wire.KindRequest:
		sc.handleRequest(f)
	case wire.KindPing:
		sc.send(&wire.Header{Kind: wire.KindPong, ReqID: f.ReqID}, "", f.Body, true)
	case wire.KindCancel:
		sc.mu.Lock()
		cc := sc.calls[f.ReqID]
		if cc != nil {
			cc.peerCanceled = true
		}
		sc.mu.Unlock()
		if cc != nil {
			cc.cancel(context.Canceled)
		}
	case wire.KindAuth:
		if err := sc.authenticate(f); err != nil {
			sc.s.log.Warn("svrkit: closing connection", "peer", sc.c.RemoteAddr(), "err", err)
			return gnet.Close
		}
	case wire.KindPong:
	default:
		sc.s.log.Warn("svrkit: closing connection", "peer", sc.c.RemoteAddr(), "err", "unexpected "+f.Kind.String()+" frame from client")
		return gnet.Close
	}
	return gnet.None
}

func (sc *serverConn) handleRequest(f *wire.Frame) {
	s := sc.s
	id := f.ReqID
	m := s.methods[f.CmdID]
	if s.opts.auth != nil {
		// Before the cmdid: a caller that has not authenticated learns
		// nothing about what this server serves.
		if code, msg := sc.admit(m); code != OK {
			sc.refuse(m, id, code, msg)
			return
		}
	}
	if m == nil {
		sc.refuse(m, id, Unimplemented, fmt.Sprintf("unknown cmdid %d", f.CmdID))
		return
	}
	if s.draining.Load() {
		sc.refuse(m, id, Unavailable, "server is shutting down")
		return
	}
	key := admissionKey(f.Priority, f.Flags, id, s.salt.Load())
	var now time.Time
	var down *downstreamLevel
	if s.adm != nil && !m.desc.NonBlocking {
		if !s.adm.admit(sc.shard, key) {
			// A constant message: refusing must cost as little as possible.
			sc.refuse(m, id, Overloaded, "server is overloaded and refuses this request's priority")
			return
		}
		now = sc.arrival()
		down = &m.down
		if uint32(key) < down.get(now.UnixNano()) {
			sc.refuse(m, id, Overloaded, "a service this method calls is overloaded and refuses this request's priority")
			return
		}
	}
	sc.mu.Lock()
	if _, dup := sc.calls[id]; dup {
		sc.mu.Unlock()
		sc.refuse(m, id, InvalidArgument, fmt.Sprintf("request id %d is already in flight on this connection", id))
		return
	}
	if len(sc.calls) >= s.opts.maxConcurrentPerConn {
		sc.mu.Unlock()
		sc.refuse(m, id, ResourceExhausted, "too many concurrent calls on this connection")
		return
	}
	if s.inflight.Add(1) > int64(s.opts.maxConcurrent) {
		s.inflight.Add(-1)
		sc.mu.Unlock()
		sc.refuse(m, id, ResourceExhausted, "server is at its concurrent call limit")
		return
	}
	ctx := &callCtx{parent: s.baseCtx, method: m.desc, conn: sc, sm: m, reqID: id,
		prio: callPriority{business: f.Priority, user: uint8(key & 0x7f)}}
	if !m.desc.NonBlocking {
		ctx.prio.worker = ctx
	}
	sc.calls[id] = ctx
	sc.mu.Unlock()

	req := m.desc.NewRequest()
	if err := proto.Unmarshal(f.Body, req); err != nil {
		if hook := s.opts.refusalHook; hook != nil {
			hook(m.desc, InvalidArgument)
		}
		sc.finish(id, nil, Errorf(InvalidArgument, "cannot decode %s request: %v", m.desc.FullName, err), ctx)
		return
	}
	if len(f.Meta) > 0 {
		ctx.md = decodeMeta(f.Meta)
	}
	limit := m.desc.Timeout
	if limit == 0 {
		limit = s.opts.defaultTimeout
	}
	if now.IsZero() && (f.Timeout > 0 || limit > 0) { // reading the clock costs
		now = sc.arrival()
	}
	if !now.IsZero() {
		ctx.queuedAt = now.UnixNano()
	}
	if f.Timeout > 0 || limit > 0 {
		if f.Timeout > 0 {
			ctx.deadline, ctx.hasDeadline = now.Add(time.Duration(f.Timeout)*time.Microsecond), true
		}
		if limit > 0 && (!ctx.hasDeadline || now.Add(limit).Before(ctx.deadline)) {
			ctx.deadline, ctx.hasDeadline = now.Add(limit), true
		}
	}
	ctx.req = req
	if m.desc.NonBlocking {
		ctx.inline = true
		sc.serve(ctx)
		return
	}
	s.workers.submit(ctx)
}

func (sc *serverConn) serve(ctx *callCtx) {
	var resp proto.Message
	var err error
	adm := sc.s.adm
	var expired bool
	if ctx.hasDeadline {
		now := ctx.startedAt
		if now == 0 {
			now = time.Now().UnixNano()
		}
		expired = now >= ctx.deadline.UnixNano()
	}
	if expired {
		// Its caller has given up: running it would be wasted work, the
		// worst kind under overload.
		err = NewError(DeadlineExceeded, "deadline expired before the call started")
		if adm != nil {
			adm.expired.Add(1)
		}
	} else {
		resp, err = sc.s.run(ctx.sm, ctx, ctx.req)
	}
	ctx.req = nil
	ctx.end()
	sc.finish(ctx.reqID, resp, err, ctx)
}

// run calls the handler, turning a panic into an Internal error so one bad
// request cannot take the connection or the server down.
func (s *Server) run(m *serverMethod, ctx context.Context, req proto.Message) (resp proto.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("svrkit: handler panic", "method", m.desc.FullName, "panic", r, "stack", string(debug.Stack()))
			resp, err = nil, Errorf(Internal, "handler panic in %s: %v", m.desc.FullName, r)
		}
	}()
	return m.handler(ctx, req)
}

var marshalOpts = proto.MarshalOptions{}

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// finish sends the call's response (unless the caller canceled it) and
// releases its slot.
func (sc *serverConn) finish(id uint32, resp proto.Message, err error, ctx *callCtx) {
	sc.mu.Lock()
	canceled := ctx.peerCanceled
	delete(sc.calls, id)
	sc.mu.Unlock()
	if !canceled {
		h := wire.Header{Kind: wire.KindResponse, ReqID: id, Timeout: sc.methodLevel(ctx.sm)}
		if err == nil && resp == nil {
			err = Errorf(Internal, "%s returned a nil response and no error", ctx.method.FullName)
		}
		if err != nil {
			e := AsError(err)
			h.Status = uint32(e.code)
			if e.code == OK {
				h.Status = uint32(Unknown)
			}
			details, derr := e.appendDetails(nil)
			if derr != nil {
				details = nil // the status still goes; its details cannot
			}
			sc.send(&h, e.msg, details, ctx.inline)
		} else {
			bp := bodyPool.Get().(*[]byte)
			body, merr := marshalOpts.MarshalAppend((*bp)[:0], resp)
			if merr != nil {
				h.Status = uint32(Internal)
				sc.send(&h, "cannot encode response: "+merr.Error(), nil, ctx.inline)
			} else {
				sc.send(&h, "", body, ctx.inline)
			}
			if cap(body) <= 64<<10 {
				*bp = body[:0]
				bodyPool.Put(bp)
			}
		}
	}
	if sc.s.inflight.Add(-1) < 0 {
		panic("svrkit: in-flight count below zero")
	}
}

// refuse answers a request the event loop refused before running it, and
// tells the refusal hook.
func (sc *serverConn) refuse(m *serverMethod, id uint32, code Code, msg string) {
	if hook := sc.s.opts.refusalHook; hook != nil {
		var md *MethodDesc
		if m != nil {
			md = m.desc
		}
		hook(md, code)
	}
	h := wire.Header{Kind: wire.KindResponse, ReqID: id, Status: uint32(code)}
	if m != nil {
		h.Timeout = sc.methodLevel(m)
	}
	sc.send(&h, msg, nil, true)
}

// methodLevel is what a response of m reports in its timeout field: the
// level the services m calls report (see downstream.go), or 0.
func (sc *serverConn) methodLevel(m *serverMethod) uint32 {
	if sc.s.adm == nil {
		return 0
	}
	return m.down.level()
}

func (sc *serverConn) goAway(onLoop bool) {
	sc.mu.Lock()
	already := sc.sentAway
	sc.sentAway = true
	sc.mu.Unlock()
	if !already {
		sc.send(&wire.Header{Kind: wire.KindGoAway}, "server is shutting down", nil, onLoop)
	}
}

func decodeMeta(b []byte) Metadata {
	md := make(Metadata, 4)
	_ = wire.RangeMeta(b, func(k, v []byte) bool {
		md[string(k)] = string(v)
		return true
	})
	return md
}
