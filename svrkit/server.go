package svrkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/svrkit/netloop"
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

	// inflight is written twice per call, by the event loop and by the
	// worker that finishes it, on different CPUs: on its own cache line,
	// so the fields every request reads (draining, workers, adm, clock,
	// salt) do not miss after each of those writes.
	inflight paddedInt64
	draining atomic.Bool
	workers  *workerPool
	adm      *admission // nil without overload control
	// clock is a coarse clock (unix nanos) advanced by the engine's tick
	// about once a second, for idle timeouts: reading the real clock on
	// every request cost several percent of CPU on the development VM.
	clock atomic.Int64
	// salt is hourSalt at clock, advanced with it, for requests that
	// carry no user priority.
	salt atomic.Uint64
}

type serverMethod struct {
	desc    *MethodDesc
	handler UnaryHandler
	callers []string // the service's, when the server requires authentication
	// down is the level the services this method calls report (only
	// with overload control on; see downstream.go).
	down downstreamLevel
}

// NewServer returns a server that answers only the describe method;
// register services, then Start.
func NewServer(opts ...ServerOption) *Server {
	o := defaultServerOptions()
	for _, opt := range opts {
		opt.applyServer(&o)
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
	s.advanceClock(time.Now().UnixNano())
	s.workers = newWorkerPool(func(cc *callCtx) { cc.conn.serve(cc) }, 10*time.Second, &s.clock)
	if o.overloadThreshold > 0 {
		s.workers.byPriority = true
		s.adm = newAdmission(o.overloadThreshold, o.eventLoops, s.workers)
	}
	if !o.noDescribe {
		s.RegisterService(&describeServiceDesc, NewDescriber(s.Services))
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
		base := UnaryHandler(func(ctx context.Context, req proto.Message) (proto.Message, error) { return h(impl, ctx, req) })
		s.methods[m.CmdID] = &serverMethod{desc: m, handler: chainServer(base, m, s.opts.interceptors), callers: desc.Callers}
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
		err := netloop.Run(h, addr, s.opts.eventLoops, s.log)
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

// advanceClock sets the coarse clock and the hour's salt to now (unix
// nanos).
func (s *Server) advanceClock(now int64) {
	s.clock.Store(now)
	s.salt.Store(hourSalt(now))
}
