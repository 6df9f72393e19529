package svrkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"
	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/svrkit/wire"
)

// Server serves registered services over svrkit's binary protocol.
//
// Read path: gnet event loops (half as many as CPUs by default; see
// WithEventLoops for why) read bytes, cut them into frames with
// wire.FrameSize/Parse (the size limit is checked on the prefix, before
// buffering the rest), look up the cmdid and decode the protobuf request
// right on the loop — decoding copies what it keeps, so the loop's buffer is
// released at once. The call then runs on a pooled worker goroutine (or
// inline for methods declared NonBlocking). The number of calls running is
// bounded per connection and in total: a request over either limit is
// answered ResourceExhausted at once instead of queueing without end, which
// is what keeps an overloaded server answering.
//
// Write path: a finished call appends its response frame to its
// connection's pending buffer, and the flush policy depends on who else
// could share the write:
//
//   - Responses produced on the loop (inline methods, refusals, pongs) are
//     written once per OnTraffic, after every frame of the read is handled.
//   - A worker whose call was the only one running on its connection writes
//     the buffer to the socket itself (a lone caller pays no loop wake-up).
//   - Otherwise the buffer goes to gnet's AsyncWrite; responses finishing
//     meanwhile collect in a second buffer and go out together when the
//     first write completes, so under load one syscall carries many.
//
// A connection whose peer does not read (pending plus gnet's outbound buffer
// over the limit) is closed rather than allowed to grow memory without
// bound.
//
// Stop: Shutdown sends a goaway frame on every connection, answers new
// requests Unavailable, waits for running calls and then for their
// responses to be written until its context ends, then cancels what still
// runs and closes everything.
type Server struct {
	opts serverOptions
	log  *slog.Logger

	mu       sync.Mutex
	methods  map[uint32]*serverMethod // immutable once started
	services []*ServiceDesc
	conns    map[*serverConn]struct{}
	started  bool

	eng      gnet.Engine
	addr     net.Addr
	booted   chan error
	stopped  chan struct{} // closed when the engine has exited
	baseCtx  context.Context
	hardStop context.CancelFunc

	inflight atomic.Int64
	draining atomic.Bool
	workers  *workerPool
	// clock is a coarse clock (unix nanos) advanced by the engine's tick
	// about once a second, for idle timeouts: reading the real clock on
	// every request cost several percent of CPU on the development VM.
	clock atomic.Int64
}

type serverMethod struct {
	desc    *MethodDesc
	handler UnaryHandler
}

type serverOptions struct {
	maxConcurrent        int
	maxConcurrentPerConn int
	maxFrameSize         int
	maxPendingBytes      int
	idleTimeout          time.Duration
	defaultTimeout       time.Duration
	eventLoops           int
	interceptors         []UnaryServerInterceptor
	logger               *slog.Logger
	noDescribe           bool
}

// ServerOption configures a Server.
type ServerOption func(*serverOptions)

// WithMaxConcurrent bounds the calls running at once in the whole server
// (default 65536) and on one connection (default 8192). Requests over either
// bound are answered ResourceExhausted.
func WithMaxConcurrent(total, perConn int) ServerOption {
	return func(o *serverOptions) { o.maxConcurrent, o.maxConcurrentPerConn = total, perConn }
}

// WithMaxFrameSize sets the largest frame accepted or sent, prefix included
// (default wire.DefaultMaxFrameSize). A larger incoming frame closes the
// connection; a larger response is replaced by an Internal error.
func WithMaxFrameSize(n int) ServerOption { return func(o *serverOptions) { o.maxFrameSize = n } }

// WithMaxPendingBytes bounds the response bytes waiting for a slow peer on
// one connection (default 32 MiB); past it the connection is closed.
func WithMaxPendingBytes(n int) ServerOption { return func(o *serverOptions) { o.maxPendingBytes = n } }

// WithIdleTimeout closes connections with no traffic and no call running for
// d (default 5 minutes; 0 disables).
func WithIdleTimeout(d time.Duration) ServerOption {
	return func(o *serverOptions) { o.idleTimeout = d }
}

// WithDefaultTimeout bounds calls whose caller sent no deadline and whose
// method declares no timeout (default: unbounded).
func WithDefaultTimeout(d time.Duration) ServerOption {
	return func(o *serverOptions) { o.defaultTimeout = d }
}

// WithEventLoops sets the number of gnet event loops (default: half the
// CPUs, at least one).
//
// The default is not one per CPU, because an event loop waits for I/O in
// a blocking epoll_wait that keeps its Go scheduler P. With as many loops
// as Ps (2 on the 2-core development machine), every P can be parked in a
// loop's syscall: the handlers the loops wake then wait for the runtime's
// sysmon to take a P back, which it does after 20µs to 10ms. Measured with
// tools/rpcbench on that machine, 1 loop instead of 2 served 16 B echoes
// 60–90% faster at 64 callers and cut one caller's p999 from 12ms to
// 0.25ms. Leaving half the Ps to workers and clients keeps that headroom on
// larger machines too; a server whose handlers are all NonBlocking may
// want one loop per CPU.
func WithEventLoops(n int) ServerOption { return func(o *serverOptions) { o.eventLoops = max(n, 1) } }

func defaultEventLoops() int { return max(1, runtime.NumCPU()/2) }

// WithServerInterceptors adds interceptors run around every call, the first
// outermost.
func WithServerInterceptors(ics ...UnaryServerInterceptor) ServerOption {
	return func(o *serverOptions) { o.interceptors = append(o.interceptors, ics...) }
}

// WithLogger sets the logger for connection errors and handler panics
// (default slog.Default()).
func WithLogger(l *slog.Logger) ServerOption { return func(o *serverOptions) { o.logger = l } }

// WithoutDescribe leaves out the describe method (cmdid
// ReservedCmdIDBase+1) that every server otherwise answers with the
// descriptors of its services, for `svrkit call` and other generic callers.
func WithoutDescribe() ServerOption { return func(o *serverOptions) { o.noDescribe = true } }

// NewServer returns a server that answers only the describe method;
// register services, then Start.
func NewServer(opts ...ServerOption) *Server {
	o := serverOptions{
		maxConcurrent:        65536,
		maxConcurrentPerConn: 8192,
		maxFrameSize:         wire.DefaultMaxFrameSize,
		maxPendingBytes:      32 << 20,
		idleTimeout:          5 * time.Minute,
		eventLoops:           defaultEventLoops(),
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:     o,
		log:      o.logger,
		methods:  make(map[uint32]*serverMethod),
		conns:    make(map[*serverConn]struct{}),
		baseCtx:  ctx,
		hardStop: cancel,
	}
	s.clock.Store(time.Now().UnixNano())
	s.workers = newWorkerPool(func(cc *callCtx) { cc.conn.serve(cc) }, 10*time.Second, &s.clock)
	if !o.noDescribe {
		s.RegisterService(&DescribeServiceDesc, NewDescriber(s.Services))
	}
	return s
}

// RegisterService adds a service's methods. It panics, like
// encoding/json's Register-style APIs, on programming errors: a duplicate
// cmdid, an implementation that does not satisfy desc.HandlerType, or a call
// after Start.
func (s *Server) RegisterService(desc *ServiceDesc, impl any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		panic("svrkit: RegisterService after Start")
	}
	checkImpl(desc, impl)
	for i := range desc.Methods {
		m := &desc.Methods[i]
		if prev, dup := s.methods[m.CmdID]; dup {
			panic(fmt.Sprintf("svrkit: cmdid %d of %s already registered by %s", m.CmdID, m.FullName, prev.desc.FullName))
		}
		h := m.Handler
		base := func(ctx context.Context, req proto.Message) (proto.Message, error) { return h(impl, ctx, req) }
		s.methods[m.CmdID] = &serverMethod{desc: m, handler: ChainServer(base, m, s.opts.interceptors...)}
	}
	s.services = append(s.services, desc)
}

// Services returns the registered services.
func (s *Server) Services() []*ServiceDesc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*ServiceDesc(nil), s.services...)
}

// Start listens on addr ("host:port"; port 0 picks a free one) and serves
// in the background. It returns once the server accepts connections.
func (s *Server) Start(addr string) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("svrkit: server already started")
	}
	s.started = true
	s.mu.Unlock()

	s.booted = make(chan error, 1)
	s.stopped = make(chan struct{})
	h := &serverEvents{s: s}
	go func() {
		defer close(s.stopped)
		err := gnet.Run(h, "tcp://"+addr,
			gnet.WithMulticore(true),
			gnet.WithNumEventLoop(s.opts.eventLoops),
			gnet.WithTicker(true),
			gnet.WithReuseAddr(true), // as net.Listen does: restart on a port with TIME_WAIT sockets
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithLogger(gnetLogger{s.log}),
			gnet.WithLogLevel(logging.ErrorLevel),
		)
		if err != nil {
			select {
			case s.booted <- err:
			default:
			}
		}
	}()
	select {
	case err := <-s.booted:
		if err != nil {
			return fmt.Errorf("svrkit: listen %s: %w", addr, err)
		}
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("svrkit: listen %s: engine did not start within 10s", addr)
	}
}

// Addr returns the address the server listens on, after Start.
func (s *Server) Addr() net.Addr { return s.addr }

// Shutdown stops the server gracefully: goaway to every connection, new
// requests answered Unavailable, running calls drained until ctx ends, and
// the responses of the calls that finished written out to their sockets
// (also bounded by ctx); then the calls still running are canceled and every
// connection closed. It returns ctx's error if the drain did not finish in
// time. An idle server stops in a few milliseconds.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.stopped == nil {
		return nil
	}
	if s.draining.Swap(true) {
		<-s.stopped
		return nil
	}
	s.mu.Lock()
	for sc := range s.conns {
		sc.goAway(false)
	}
	s.mu.Unlock()

	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	drainErr := waitUntil(ctx, tick.C, func() bool { return s.inflight.Load() == 0 })
	if drainErr == nil {
		// Answered calls may still have responses queued behind a write in
		// progress; stopping the engine now would drop them.
		drainErr = waitUntil(ctx, tick.C, s.flushedAll)
	}
	s.hardStop()
	// The engine's stop closes every connection (gnet writes what its
	// outbound buffers still hold first). Engine.Stop polls for the end
	// only every 500ms, so it is given a context that is already done: it
	// starts the stop and returns, and the wait is on gnet.Run instead.
	started, cancel := context.WithCancel(context.Background())
	cancel()
	_ = s.eng.Stop(started)
	s.workers.stop()
	// Bounded even when the caller's context has already expired.
	select {
	case <-s.stopped:
	case <-time.After(5 * time.Second):
	}
	return drainErr
}

// waitUntil polls cond on every tick until it holds or ctx ends.
func waitUntil(ctx context.Context, tick <-chan time.Time, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick:
		}
	}
	return nil
}

// flushedAll reports whether every connection has handed all its responses
// to the kernel. A connection whose last write left bytes in gnet's outbound
// buffer (a peer slower than its socket buffer) is asked how many remain
// with an empty AsyncWrite: its callback, flushed, records the backlog on
// the loop, and writing marks the question as asked until it does.
func (s *Server) flushedAll() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	done := true
	for sc := range s.conns {
		sc.mu.Lock()
		if sc.closed || !(sc.writing || len(sc.out) > 0 || sc.backlog > 0) {
			sc.mu.Unlock()
			continue
		}
		done = false
		if !sc.writing && len(sc.out) == 0 {
			sc.startWriteLocked()
			continue
		}
		sc.mu.Unlock()
	}
	return done
}

func checkImpl(desc *ServiceDesc, impl any) {
	if impl == nil {
		panic("svrkit: nil implementation for " + desc.Name)
	}
	if desc.HandlerType == nil {
		return
	}
	want := reflect.TypeOf(desc.HandlerType).Elem()
	if got := reflect.TypeOf(impl); !got.Implements(want) {
		panic(fmt.Sprintf("svrkit: %v does not implement %v for service %s", got, want, desc.Name))
	}
}

// serverEvents adapts the server to gnet's EventHandler.
type serverEvents struct {
	gnet.BuiltinEventEngine
	s *Server
}

func (h *serverEvents) OnBoot(eng gnet.Engine) gnet.Action {
	s := h.s
	s.eng = eng
	addr, err := engineAddr(eng)
	if err != nil {
		s.booted <- err
		return gnet.Shutdown
	}
	s.addr = addr
	s.booted <- nil
	return gnet.None
}

// engineAddr finds the bound address (needed when the port was 0) by
// duplicating the listener's descriptor.
func engineAddr(eng gnet.Engine) (net.Addr, error) {
	fd, err := eng.Dup()
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "listener")
	defer f.Close()
	l, err := net.FileListener(f)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return l.Addr(), nil
}

func (h *serverEvents) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	s := h.s
	sc := &serverConn{s: s, c: c, calls: make(map[uint32]*callCtx)}
	sc.flushedFn = sc.flushed
	sc.touch()
	c.SetContext(sc)
	s.mu.Lock()
	s.conns[sc] = struct{}{}
	s.mu.Unlock()
	if s.draining.Load() {
		sc.goAway(true)
		sc.flushOnLoop()
	}
	return nil, gnet.None
}

func (h *serverEvents) OnClose(c gnet.Conn, err error) gnet.Action {
	sc, _ := c.Context().(*serverConn)
	if sc == nil {
		return gnet.None
	}
	// gnet closes the descriptor after OnClose returns and may hand its
	// number to the next connection; a worker must not write to it after
	// this (see writeDirect).
	sc.wmu.Lock()
	sc.fdClosed = true
	sc.wmu.Unlock()
	sc.mu.Lock()
	sc.closed = true
	calls := sc.calls
	sc.calls = nil
	sc.out, sc.spare = nil, nil
	sc.mu.Unlock()
	for _, cc := range calls {
		cc.cancel(context.Canceled) // the caller is gone
	}
	h.s.mu.Lock()
	delete(h.s.conns, sc)
	h.s.mu.Unlock()
	return gnet.None
}

// OnTick advances the coarse clock, stops idle workers, closes idle
// connections and lets connections with no call running drop batch buffers
// grown past keepBatchBytes.
func (h *serverEvents) OnTick() (time.Duration, gnet.Action) {
	s := h.s
	now := time.Now().UnixNano()
	s.clock.Store(now)
	s.workers.reap(now)
	idle := s.opts.idleTimeout
	tick := time.Second
	if idle > 0 {
		tick = min(idle/2, time.Second)
	}
	s.mu.Lock()
	for sc := range s.conns {
		sc.mu.Lock()
		quiet := len(sc.calls) == 0
		if quiet && !sc.writing {
			if cap(sc.out)+cap(sc.spare) > keepBatchBytes && len(sc.out) == 0 {
				sc.out, sc.spare = nil, nil
			}
		}
		sc.mu.Unlock()
		// lastActive is the coarse clock, up to a tick behind the traffic
		// it marks: only past idle plus a tick is the peer surely idle.
		if quiet && idle > 0 && now-sc.lastActive.Load() > int64(idle+tick) {
			_ = sc.c.Close()
		}
	}
	s.mu.Unlock()
	return tick, gnet.None
}

// keepBatchBytes is the batch buffer capacity a connection keeps while it
// is idle. Under load a connection reuses its two batch buffers whatever
// their size (dropping a large one after each write cost 82 KB of garbage
// per call at 16 KiB × 1024 callers); once no call runs, OnTick lets larger
// ones go.
const keepBatchBytes = 1 << 20

// OnTraffic handles every complete frame buffered on c, then writes the
// responses produced on the loop (inline methods, refusals, pongs) with one
// write; see serverConn.send.
func (h *serverEvents) OnTraffic(c gnet.Conn) gnet.Action {
	sc := c.Context().(*serverConn)
	action := h.handleFrames(c, sc)
	sc.flushOnLoop()
	return action
}

func (h *serverEvents) handleFrames(c gnet.Conn, sc *serverConn) gnet.Action {
	s := h.s
	sc.touch()
	for {
		prefix, err := c.Peek(wire.PrefixSize)
		if err != nil {
			return gnet.None // need more bytes
		}
		size, err := wire.FrameSize(prefix, s.opts.maxFrameSize)
		if err != nil {
			s.log.Warn("svrkit: closing connection", "peer", c.RemoteAddr(), "err", err)
			return gnet.Close
		}
		if c.InboundBuffered() < size {
			return gnet.None
		}
		buf, _ := c.Peek(size)
		f, err := wire.Parse(buf, s.opts.maxFrameSize)
		if err != nil {
			s.log.Warn("svrkit: closing connection", "peer", c.RemoteAddr(), "err", err)
			return gnet.Close
		}
		action := sc.handleFrame(&f)
		_, _ = c.Discard(size)
		if action != gnet.None {
			return action
		}
	}
}

// serverConn is the server's state for one connection.
type serverConn struct {
	s          *Server
	c          gnet.Conn
	lastActive atomic.Int64 // the server's coarse clock at the last traffic
	flushedFn  gnet.AsyncCallback

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
	if m == nil {
		sc.fail(id, Unimplemented, fmt.Sprintf("unknown cmdid %d", f.CmdID))
		return
	}
	if s.draining.Load() {
		sc.fail(id, Unavailable, "server is shutting down")
		return
	}
	sc.mu.Lock()
	if _, dup := sc.calls[id]; dup {
		sc.mu.Unlock()
		sc.fail(id, InvalidArgument, fmt.Sprintf("request id %d is already in flight on this connection", id))
		return
	}
	if len(sc.calls) >= s.opts.maxConcurrentPerConn {
		sc.mu.Unlock()
		sc.fail(id, ResourceExhausted, "too many concurrent calls on this connection")
		return
	}
	if s.inflight.Add(1) > int64(s.opts.maxConcurrent) {
		s.inflight.Add(-1)
		sc.mu.Unlock()
		sc.fail(id, ResourceExhausted, "server is at its concurrent call limit")
		return
	}
	ctx := &callCtx{parent: s.baseCtx, method: m.desc, conn: sc, sm: m, reqID: id}
	sc.calls[id] = ctx
	sc.mu.Unlock()

	req := m.desc.NewRequest()
	if err := proto.Unmarshal(f.Body, req); err != nil {
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
	if f.Timeout > 0 || limit > 0 { // reading the clock costs, skip it when no deadline applies
		now := time.Now()
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
	if ctx.hasDeadline && !time.Now().Before(ctx.deadline) {
		err = NewError(DeadlineExceeded, "deadline expired before the call started")
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
		h := wire.Header{Kind: wire.KindResponse, ReqID: id}
		if err == nil && resp == nil {
			err = Errorf(Internal, "%s returned a nil response and no error", ctx.method.FullName)
		}
		if err != nil {
			e := AsError(err)
			h.Status = uint32(e.code)
			if e.code == OK {
				h.Status = uint32(Unknown)
			}
			sc.send(&h, e.msg, nil, ctx.inline)
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

// fail answers a request the event loop refused.
func (sc *serverConn) fail(id uint32, code Code, msg string) {
	sc.send(&wire.Header{Kind: wire.KindResponse, ReqID: id, Status: uint32(code)}, msg, nil, true)
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

// send queues a frame for writing.
//
// On the event loop (onLoop: inline methods, refusals, pongs) it only
// queues: OnTraffic writes everything its frames produced with one Write
// when they are all handled (flushOnLoop). Flushing per frame instead made
// a NonBlocking echo nearly 4× slower at 64 callers (158k against 593k
// req/s): one syscall per response, each running the peer's TCP receive
// path on loopback.
//
// Elsewhere (a worker finishing a call), if no write is in progress: when
// no other call is running on the connection the worker writes itself (see
// writeDirect); otherwise it starts a write through gnet's AsyncWrite, and
// frames queued while that is in progress follow in one batch from its
// callback, so under load one syscall carries many responses. (Measured
// and rejected: workers always writing straight to the socket. It saves a
// loop wake-up per batch but loses the batching; with the current worker
// pool it measured the same as AsyncWrite at 64 and 1024 callers, and
// with the previous one worse at 1024.)
func (sc *serverConn) send(h *wire.Header, msg string, body []byte, onLoop bool) {
	limit := sc.s.opts.maxFrameSize
	sc.mu.Lock()
	if sc.closed {
		sc.mu.Unlock()
		return
	}
	out, err := wire.AppendFrame(sc.out, h, nil, msg, body, limit)
	if err != nil {
		e := wire.Header{Kind: h.Kind, ReqID: h.ReqID, Status: uint32(Internal)}
		out, _ = wire.AppendFrame(sc.out, &e, nil, fmt.Sprintf("response of %d bytes exceeds the %d-byte frame limit", len(body), limit), nil, limit)
	}
	sc.out = out
	if len(sc.out)+sc.backlog > sc.s.opts.maxPendingBytes {
		sc.closeLocked("slow reader", len(out)+sc.backlog)
		return
	}
	if sc.writing || onLoop {
		sc.mu.Unlock()
		return
	}
	if sc.backlog > 0 || len(sc.calls) > 0 {
		// Other calls are running on this connection, so their responses
		// can share the write: hand it to the loop, which batches. (Or gnet
		// holds bytes for this peer, which must go first.)
		sc.startWriteLocked()
		return
	}
	sc.writeDirect()
}

// writeDirect makes the calling worker the connection's writer, for a
// response that no other running call on its connection could share a
// write with; called with sc.mu held and writing unset, it releases it. It
// writes until nothing is pending (frames the loop queues meanwhile go too).
// A write the socket does not take whole continues through AsyncWrite,
// which keeps the rest in gnet's outbound buffer and writes it when the
// socket drains. The descriptor is gnet's: wmu and fdClosed keep the write
// from reaching a descriptor number gnet closed and reused.
//
// Measured with tools/rpcbench on the 2-core machine, one caller's 16 B
// round trip went from 98µs p50 to 21µs: handing the batch to the loop
// costs an eventfd wake-up of a loop parked in epoll_wait, and gnet's
// AsyncWrite three allocations. Yielding once before writing is part of
// the gain (33µs p50 without it, through AsyncWrite; 90µs writing
// directly without it), measured rather than understood: most likely it
// lets the scheduler poll the network and run the client's reader at once.
// Under load the loop's batching wins, which is why only a response with
// no other call running on its connection takes this path.
func (sc *serverConn) writeDirect() {
	sc.writing = true
	sc.mu.Unlock()
	runtime.Gosched()
	sc.mu.Lock()
	for !sc.closed && len(sc.out) > 0 {
		buf := sc.out
		sc.out, sc.spare = sc.spare[:0], nil
		sc.mu.Unlock()
		n, err := sc.writeFd(buf)
		sc.mu.Lock()
		if err == syscall.EAGAIN || (err == nil && n < len(buf)) {
			sc.inWrite = buf
			sc.mu.Unlock()
			if sc.c.AsyncWrite(buf[n:], sc.flushedFn) != nil {
				sc.mu.Lock()
				sc.writing = false
				sc.mu.Unlock()
			}
			return
		}
		sc.spare = buf[:0]
		if err != nil {
			sc.writing = false
			sc.closed = true // nothing more can reach this peer
			sc.out = nil
			sc.mu.Unlock()
			_ = sc.c.Close()
			return
		}
	}
	sc.writing = false
	sc.mu.Unlock()
}

// writeFd writes buf to the connection's socket from a worker, unless gnet
// has closed the descriptor (see writeDirect).
func (sc *serverConn) writeFd(buf []byte) (int, error) {
	sc.wmu.Lock()
	defer sc.wmu.Unlock()
	if sc.fdClosed {
		return 0, net.ErrClosed
	}
	for {
		n, err := syscall.Write(sc.c.Fd(), buf)
		if err != syscall.EINTR {
			return max(n, 0), err
		}
	}
}

// startWriteLocked hands the pending frames to gnet's AsyncWrite; called
// with sc.mu held, it releases it.
func (sc *serverConn) startWriteLocked() {
	buf := sc.out
	sc.writing = true
	sc.out, sc.spare, sc.inWrite = sc.spare[:0], nil, buf
	sc.mu.Unlock()
	if err := sc.c.AsyncWrite(buf, sc.flushedFn); err != nil {
		sc.mu.Lock()
		sc.writing = false
		sc.mu.Unlock()
	}
}

// flushOnLoop writes the frames queued on the event loop, unless an
// AsyncWrite is in progress (its callback sends them). It runs on the loop.
func (sc *serverConn) flushOnLoop() {
	sc.mu.Lock()
	if sc.writing || sc.closed || len(sc.out) == 0 {
		sc.mu.Unlock()
		return
	}
	_, _ = sc.c.Write(sc.out) // copies what the socket does not take
	sc.backlog = sc.c.OutboundBuffered()
	sc.out = sc.out[:0]
	sc.mu.Unlock()
}

// closeLocked drops the connection's pending output and closes it; called
// with sc.mu held, it releases it.
func (sc *serverConn) closeLocked(why string, pending int) {
	sc.closed = true
	sc.out = nil
	sc.mu.Unlock()
	sc.s.log.Warn("svrkit: closing connection", "peer", sc.c.RemoteAddr(), "reason", why, "pending", pending)
	_ = sc.c.Close()
}

// flushed runs on the event loop once a batch has been handed to the socket
// (gnet keeps what the kernel did not take), so the batch's buffer is free
// again; anything queued meanwhile goes out as the next batch.
func (sc *serverConn) flushed(c gnet.Conn, err error) error {
	sc.mu.Lock()
	sc.backlog = c.OutboundBuffered()
	sc.spare = sc.inWrite[:0]
	sc.inWrite = nil
	if err != nil || sc.closed || len(sc.out) == 0 {
		sc.writing = false
		sc.mu.Unlock()
		return nil
	}
	buf := sc.out
	sc.out, sc.spare, sc.inWrite = sc.spare, nil, buf
	sc.mu.Unlock()
	return c.AsyncWrite(buf, sc.flushedFn)
}

func decodeMeta(b []byte) Metadata {
	md := make(Metadata, 4)
	_ = wire.RangeMeta(b, func(k, v []byte) bool {
		md[string(k)] = string(v)
		return true
	})
	return md
}

// gnetLogger routes gnet's own logging to slog.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(format string, args ...any) {}
func (g gnetLogger) Infof(format string, args ...any)  {}
func (g gnetLogger) Warnf(format string, args ...any) {
	g.l.Warn("gnet: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
}
func (g gnetLogger) Errorf(format string, args ...any) {
	g.l.Error("gnet: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
}
func (g gnetLogger) Fatalf(format string, args ...any) {
	g.l.Error("gnet: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
}
