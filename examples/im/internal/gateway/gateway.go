// Package gateway is the IM backend's access layer: the server that holds
// the clients' long connections for the gateway Logicsvr
// (logicsvr/gateway). The protocol it speaks is specified in package
// github.com/svrkit/svrkit/examples/im/link; this package is one server of
// it, independent of how requests are forwarded and connections registered
// (Backend), so that it can be tested and measured alone.
//
// # Design
//
// One gnet engine (the event loops svrkit's own server runs on) listens on
// one port for both native TCP clients and browsers: the first byte of a
// connection tells them apart ("G" starts an HTTP upgrade). A connection
// costs its socket, gnet's small connection record and a Conn of a few
// hundred bytes: no goroutine, no buffer while idle. That is what lets one
// gateway hold tens of thousands of idle devices; goroutines exist only for
// work in progress (a forwarded call, an auth being registered).
//
// Read path, on the event loop: cut frames out of gnet's input buffer
// (svrkit wire frames on TCP, WebSocket frames around them or JSON on a
// WebSocket), check the size on the prefix before buffering the rest. The
// first frame must be auth: the token is verified on the loop (an HMAC),
// then a worker registers the connection (Backend.Online: presence) and
// only then answers the auth, so a message stored after the client's first
// sync is always notified. While that runs the loop leaves further input
// in gnet's buffer (bounded) and resumes it with a wake-up. Requests are
// decoded on the loop (protobuf or protojson into the method's request
// type, copying what they keep) and forwarded on a goroutine each
// (Backend.Call), bounded per connection and in total.
//
// Write path: responses, pushes and goaways are encoded into the
// connection's pending buffer; whoever finds no write in progress hands it
// to gnet's AsyncWrite, and frames queued meanwhile follow in one batch
// when it completes. Backpressure: what a connection holds beyond the
// kernel (pending plus gnet's outbound buffer, as last seen on the loop) is
// bounded by Config.MaxPending; a client that does not read is cut off
// when a new frame would pass it, so its memory is bounded by the limit
// plus one frame, and it delays nobody else.
//
// Timers: a ticker once a second advances a coarse clock (reading the real
// one per frame costs more than the rest of a ping) and sweeps the
// connections: auth not completed within AuthTimeout, nothing received
// within IdleTimeout, the token expired. Each is closed with its goaway.
//
// A second auth of the same (user, device) on this gateway replaces the
// first: the old connection gets goaway aborted and is closed. Across
// gateways, presence does the same through Gateway.Kick.
//
// # WebSocket library: gobwas/ws on gnet, chosen by measurement
//
// The candidates were github.com/gobwas/ws on the gnet engine (the upgrade
// parsed from gnet's buffer, frames cut like TCP frames) and
// github.com/coder/websocket beside it on net/http (a goroutine per
// connection blocked in Read). BenchmarkIdleWebSocketMemory (memory_test.go)
// holds idle, authenticated WebSocket connections opened by another process
// with each and reports the server's memory per connection:
// coder/websocket on net/http costs about twenty times more (a parked
// goroutine's stack, net/http's and the library's per-connection buffers;
// the README has the figures), while gobwas/ws on gnet costs what a TCP
// link costs, because after the handshake it holds nothing per connection
// and both transports share one read and write path, one backpressure rule
// and one port. What we give up: coder/websocket's complete implementation
// (compression, a net.Conn adapter), none of which the link needs.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/examples/im/link"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/netloop"
)

// Config is a gateway's settings; zero fields take the defaults.
type Config struct {
	// Addr is the listen address ("host:port") of TCP and WebSocket.
	Addr string
	// EventLoops is the number of gnet event loops (default: half the
	// CPUs, at least 1, as svrkit's server).
	EventLoops int
	// AuthTimeout bounds the time from accept to a completed auth (10s).
	AuthTimeout time.Duration
	// IdleTimeout closes a connection that sent nothing this long (90s).
	IdleTimeout time.Duration
	// Heartbeat is the ping interval the auth reply recommends (30s).
	Heartbeat time.Duration
	// SweepEvery is how often the deadlines are checked (1s): a deadline
	// is enforced up to this late.
	SweepEvery time.Duration
	// MaxPending bounds what a connection holds for its client beyond
	// the kernel's buffers (1 MiB).
	MaxPending int
	// MaxInflightPerConn and MaxInflight bound the requests being
	// forwarded per connection (32) and in total (16384).
	MaxInflightPerConn int
	MaxInflight        int
	// OnlineWorkers bounds the Backend.Online calls running at once (64).
	OnlineWorkers int
	// Routes is the method table (link.Default).
	Routes *link.Routes
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.AuthTimeout, 10*time.Second)
	def(&c.IdleTimeout, 90*time.Second)
	def(&c.Heartbeat, 30*time.Second)
	def(&c.SweepEvery, time.Second)
	if c.EventLoops <= 0 {
		c.EventLoops = max(1, runtime.NumCPU()/2)
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 1 << 20
	}
	if c.MaxInflightPerConn <= 0 {
		c.MaxInflightPerConn = 32
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = 16384
	}
	if c.OnlineWorkers <= 0 {
		c.OnlineWorkers = 64
	}
	if c.Routes == nil {
		c.Routes = link.Default
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Backend is what the gateway needs from the rest of the system. Its
// methods are called from worker goroutines, never from the event loop,
// and may block.
type Backend interface {
	// Verify checks a session token (package session's Signer.Verify).
	// It is the exception: it runs on the event loop, so it must be cheap.
	Verify(token string) (session.Claims, error)
	// Online registers a connection whose token Verify accepted
	// (presence), before its auth is answered. An error refuses the auth
	// with that status (a revoked session: the checks Verify is too cheap
	// to make); a backend that merely cannot register it answers nil,
	// leaves it unregistered and repairs that later (see logicsvr/gateway).
	Online(ctx context.Context, c *Conn) error
	// Offline is told, at most once, that an authenticated connection has
	// closed. It may be told late, or not at all when its queue is full.
	Offline(c *Conn)
	// Call forwards one request of c's session and decodes the reply
	// into resp.
	Call(ctx context.Context, c *Conn, r *link.Route, req, resp proto.Message) error
}

// Server is a running gateway. Its methods are safe for concurrent use.
type Server struct {
	cfg  Config
	be   Backend
	log  *slog.Logger
	boot uint64

	eng     gnet.Engine
	addr    net.Addr
	booted  chan error
	stopped chan struct{}

	clock    atomic.Int64 // unix milliseconds, advanced by the ticker
	nextID   atomic.Uint32
	inflight atomic.Int64
	draining atomic.Bool
	onlineQ  chan *Conn
	offlineQ chan *Conn
	workers  sync.WaitGroup
	quit     chan struct{}

	mu       sync.RWMutex
	conns    map[uint64]*Conn
	byDevice map[deviceKey]*Conn // authenticated connections
	counts   Stats

	stopOnce sync.Once
}

type deviceKey struct {
	user   uint64
	device string
}

// Stats counts a gateway's connections.
type Stats struct {
	// Authenticated connections are online devices; Unauthenticated ones
	// have not completed their auth yet.
	Authenticated, Unauthenticated int
}

// New returns a gateway with cfg that uses be; Start it.
func New(cfg Config, be Backend) *Server {
	cfg = cfg.withDefaults()
	var b [8]byte
	_, _ = rand.Read(b[:])
	s := &Server{
		cfg:      cfg,
		be:       be,
		log:      cfg.Logger,
		boot:     binary.BigEndian.Uint64(b[:]) | 1,
		conns:    map[uint64]*Conn{},
		byDevice: map[deviceKey]*Conn{},
		onlineQ:  make(chan *Conn, 1<<16),
		offlineQ: make(chan *Conn, 1<<16),
		quit:     make(chan struct{}),
	}
	s.clock.Store(time.Now().UnixMilli())
	return s
}

// BootID is this gateway process's id, fresh at every start: presence
// tells an entry of this run from one of a run before.
func (s *Server) BootID() uint64 { return s.boot }

// Config returns the gateway's settings, defaults applied.
func (s *Server) Config() Config { return s.cfg }

// Start listens and serves in the background; it returns once the
// listener accepts.
func (s *Server) Start() error {
	s.booted = make(chan error, 1)
	s.stopped = make(chan struct{})
	for range s.cfg.OnlineWorkers {
		s.workers.Add(1)
		go s.onlineWorker()
	}
	s.workers.Add(1)
	go s.offlineWorker()
	go func() {
		defer close(s.stopped)
		err := netloop.Run(&events{s: s}, s.cfg.Addr, s.cfg.EventLoops, s.log)
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
			s.stopWorkers()
			return fmt.Errorf("gateway: listen %s: %w", s.cfg.Addr, err)
		}
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("gateway: listen %s: engine did not start within 10s", s.cfg.Addr)
	}
}

// Addr is the listen address, after Start.
func (s *Server) Addr() net.Addr { return s.addr }

// Shutdown stops the gateway: every connection gets goaway unavailable (its
// client reconnects, to another gateway or this one restarted), requests
// already forwarded are answered until ctx ends, then every connection is
// closed. Offline is not called for them: the gateway's presence lease
// runs out instead.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.stopped == nil || s.draining.Swap(true) {
		return nil
	}
	for _, c := range s.snapshot() {
		c.goAway(link.ErrShutdown, false)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var err error
	for s.inflight.Load() > 0 && err == nil {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-tick.C:
		}
	}
	for _, c := range s.snapshot() {
		c.closeAfterFlush()
	}
	done, cancel := context.WithCancel(context.Background())
	cancel() // Stop polls every 500ms; wait on the engine's exit instead
	_ = s.eng.Stop(done)
	select {
	case <-s.stopped:
	case <-time.After(5 * time.Second):
	}
	s.stopWorkers()
	return err
}

func (s *Server) stopWorkers() {
	s.stopOnce.Do(func() { close(s.quit) })
	s.workers.Wait()
}

// snapshot returns the connections now.
func (s *Server) snapshot() []*Conn {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Conn, 0, len(s.conns))
	for _, c := range s.conns {
		out = append(out, c)
	}
	return out
}

// Stats counts the connections now.
func (s *Server) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.counts
}

// Authenticated calls fn for every authenticated connection, until fn
// returns false. fn must not block: the connections are locked meanwhile.
func (s *Server) Authenticated(fn func(*Conn) bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.byDevice {
		if !fn(c) {
			return
		}
	}
}

// find returns the authenticated connection t names, or nil.
func (s *Server) find(t *im.LinkTarget) *Conn {
	s.mu.RLock()
	c := s.conns[t.GetConnId()]
	s.mu.RUnlock()
	if c == nil || c.state.Load() != stateAuthenticated || c.claims.UserID != t.GetUserId() || c.claims.DeviceID != t.GetDeviceId() {
		return nil
	}
	return c
}

// Push queues a sync notify on the connection t names and reports whether
// it holds it.
func (s *Server) Push(t *im.LinkTarget, n *im.SyncNotify) bool {
	c := s.find(t)
	if c == nil {
		return false
	}
	c.push(n)
	return true
}

// Kick closes the connection t names with goaway aborted (replaced) and
// reports whether it held it.
func (s *Server) Kick(t *im.LinkTarget) bool {
	c := s.find(t)
	if c == nil {
		return false
	}
	c.goAway(link.ErrReplaced, true)
	return true
}

// onlineWorker registers authenticated connections and then answers their
// auth.
func (s *Server) onlineWorker() {
	defer s.workers.Done()
	for {
		select {
		case <-s.quit:
			return
		case c := <-s.onlineQ:
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := s.be.Online(ctx, c)
			cancel()
			if err != nil {
				c.authRefused(err)
				continue
			}
			c.authDone()
		}
	}
}

// offlineWorker tells the backend about closed connections, one at a
// time: a burst of closes queues instead of starting a goroutine each.
func (s *Server) offlineWorker() {
	defer s.workers.Done()
	for {
		select {
		case <-s.quit:
			return
		case c := <-s.offlineQ:
			s.be.Offline(c)
		}
	}
}

// sweep closes the connections past a deadline; the ticker runs it with
// the clock in unix milliseconds.
func (s *Server) sweep(now int64) {
	authBy := now - s.cfg.AuthTimeout.Milliseconds()
	idleBy := now - s.cfg.IdleTimeout.Milliseconds()
	type victim struct {
		c   *Conn
		err *svrkit.Error
	}
	var victims []victim
	s.mu.RLock()
	for _, c := range s.conns {
		switch st := c.state.Load(); {
		case st < stateAuthenticated && c.opened < authBy:
			victims = append(victims, victim{c, link.ErrAuthTimeout})
		case st == stateAuthenticated && c.lastRecv.Load() < idleBy:
			victims = append(victims, victim{c, svrkit.Errorf(svrkit.DeadlineExceeded, "nothing received for %v", s.cfg.IdleTimeout)})
		case st == stateAuthenticated && now >= c.claims.Expires.UnixMilli():
			victims = append(victims, victim{c, session.ErrExpired})
		}
	}
	s.mu.RUnlock()
	for _, v := range victims {
		v.c.goAway(v.err, true)
	}
}

var errClosed = errors.New("gateway: connection closed")
