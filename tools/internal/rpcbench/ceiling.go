package rpcbench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"

	"github.com/svrkit/svrkit/svrkit/netloop"
	"github.com/svrkit/svrkit/svrkit/wire"
)

// The ceiling is what svrkit's transport could at best do on this machine:
// the same svrkit/wire frames over the same gnet event loops and the same
// number of loopback connections, with no RPC layer at all. The server
// parses each request frame on the event loop and appends a response frame
// carrying the body back — no dispatch, no protobuf, no worker hand-off, no
// context — and writes all the responses of one read with one Write. The
// client is the least a multiplexed client must do: a request-id map, one
// writer at a time coalescing queued frames into one write, and one reader
// goroutine per connection; a call allocates nothing.
//
// The writer yields once (runtime.Gosched) before taking the queue. On
// loopback a write runs the receiver's whole TCP path inline, so syscalls
// per frame decide throughput; without the yield, callers woken by the
// reader each find the queue empty and write one frame apiece, the server
// answers each at once, and the connection settles into one frame per
// syscall in both directions (this measured ~110–170k calls/s at 64
// callers on the 2-core machine, less than svrkit itself). With it, the
// callers the reader has just woken queue their frames before the write
// and batches form; a lone caller loses nothing, since nobody else is
// runnable.

// ceilingCmdID is the cmdid the ceiling's frames carry; the server ignores it.
const ceilingCmdID = 1

// ceilingServer is a raw gnet echo speaking svrkit/wire.
type ceilingServer struct {
	gnet.BuiltinEventEngine
	// proto makes each echo decode the request into a new EchoRequest and
	// encode a new EchoResponse, as an RPC framework's generated code does
	// (the ceiling-proto system; see ceilingproto.go).
	proto bool

	eng    gnet.Engine
	addr   net.Addr
	booted chan error
	done   chan error
}

// startCeilingServer starts the raw gnet echo on 127.0.0.1 with a free
// port and returns once it accepts connections.
func startCeilingServer(loops int) (*ceilingServer, error) {
	return startCeilingServerWith(loops, false)
}

// startCeilingServerWith is startCeilingServer, with the echo through
// protobuf messages if proto is set.
func startCeilingServerWith(loops int, proto bool) (*ceilingServer, error) {
	if loops <= 0 {
		loops = max(1, runtime.NumCPU()/2) // svrkit's default (see svrkit.WithEventLoops)
	}
	s := &ceilingServer{proto: proto, booted: make(chan error, 1), done: make(chan error, 1)}
	go func() {
		s.done <- gnet.Run(s, "tcp://127.0.0.1:0",
			gnet.WithMulticore(true),
			gnet.WithNumEventLoop(loops),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithLogLevel(logging.ErrorLevel))
	}()
	select {
	case err := <-s.booted:
		if err != nil {
			return nil, err
		}
		return s, nil
	case err := <-s.done:
		return nil, fmt.Errorf("ceiling: gnet.Run: %w", err)
	case <-time.After(10 * time.Second):
		return nil, errors.New("ceiling: server did not boot within 10s")
	}
}

func (s *ceilingServer) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	addr, err := netloop.Addr(eng)
	s.addr = addr
	s.booted <- err
	return gnet.None
}

// OnTraffic answers every complete request frame in the inbound buffer and
// writes all the responses with one Write.
func (s *ceilingServer) OnTraffic(c gnet.Conn) gnet.Action {
	cs := c.Context().(*ceilingConn)
	out := cs.out[:0]
	for {
		f, size, err := peekFrame(c)
		if err != nil {
			return gnet.Close
		}
		if size == 0 {
			break
		}
		if f.Kind == wire.KindRequest {
			h := wire.Header{Kind: wire.KindResponse, ReqID: f.ReqID, CmdID: f.CmdID}
			body := f.Body
			if s.proto {
				if body, err = cs.echoProto(body); err != nil {
					return gnet.Close
				}
			}
			out, err = wire.AppendFrame(out, &h, nil, "", body, wire.DefaultMaxFrameSize)
			if err != nil {
				return gnet.Close
			}
		}
		if _, err := c.Discard(size); err != nil {
			return gnet.Close
		}
	}
	if len(out) > 0 {
		if _, err := c.Write(out); err != nil {
			return gnet.Close
		}
	}
	cs.out = out // keep the grown buffer for the next batch
	return gnet.None
}

// peekFrame parses the next frame buffered on c without consuming it: the
// frame's bytes stay valid until c.Discard(size). size is 0 when no whole
// frame is buffered yet.
func peekFrame(c gnet.Conn) (f wire.Frame, size int, err error) {
	pre, err := c.Peek(wire.PrefixSize)
	if err != nil {
		return f, 0, nil // fewer than 4 bytes buffered
	}
	size, err = wire.FrameSize(pre, wire.DefaultMaxFrameSize)
	if err != nil || c.InboundBuffered() < size {
		return f, 0, err
	}
	b, err := c.Peek(size)
	if err != nil {
		return f, 0, err
	}
	f, err = wire.Parse(b, wire.DefaultMaxFrameSize)
	return f, size, err
}

// ceilingConn is a server connection's state: only its response buffer.
type ceilingConn struct {
	out  []byte
	body []byte // ceiling-proto's encoded response, reused
}

// OnOpen greets the connection with a hello frame, as a svrkit server
// does, so that svrkit's client can drive this server too (halves.go).
func (s *ceilingServer) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	c.SetContext(&ceilingConn{})
	hello, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindHello}, nil, "", make([]byte, wire.NonceSize), wire.DefaultMaxFrameSize)
	return hello, gnet.None
}

func (s *ceilingServer) Addr() net.Addr { return s.addr }

// Stop stops the engine and waits for gnet.Run to return. Engine.Stop polls
// for the end every 500ms; it is given a context that is already done so
// that it only starts the shutdown, and the wait is on Run instead.
func (s *ceilingServer) Stop(ctx context.Context) error {
	started, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.eng.Stop(started); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	select {
	case err := <-s.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rawClient is the ceiling's client: conns multiplexed connections, each
// with one writer at a time coalescing queued frames into one write (see
// flushLocked) and one reader goroutine that matches responses to callers
// by request id.
type rawClient struct {
	conns []*rawConn
	next  uint32 // round-robin cursor, advanced under mu
	mu    sync.Mutex
}

type rawConn struct {
	nc net.Conn
	rawMux
}

// rawMux is what both ceiling clients (this one and gnetclient.go's) keep
// per connection: the calls waiting for their response by request id and
// the frames waiting to be written. Only how the frames reach the socket
// differs between them.
type rawMux struct {
	mu      sync.Mutex
	pending map[uint32]*rawCall
	nextID  uint32
	queue   []byte // frames waiting for the writer
	spare   []byte // the other buffer, reused
	writing bool   // a write is in progress
	closed  error
}

// queueLocked registers cl under a new request id and queues its request
// frame; called with m.mu held.
func (m *rawMux) queueLocked(cl *rawCall, body []byte) error {
	if m.closed != nil {
		return m.closed
	}
	m.nextID++
	id := m.nextID
	h := wire.Header{Kind: wire.KindRequest, ReqID: id, CmdID: ceilingCmdID}
	var err error
	m.queue, err = wire.AppendFrame(m.queue, &h, nil, "", body, wire.DefaultMaxFrameSize)
	if err != nil {
		return err
	}
	m.pending[id] = cl
	return nil
}

// complete hands a response frame to the call waiting for it: it copies the
// body into the call's buffer and wakes it.
func (m *rawMux) complete(f *wire.Frame) {
	if f.Kind != wire.KindResponse {
		return
	}
	m.mu.Lock()
	cl := m.pending[f.ReqID]
	delete(m.pending, f.ReqID)
	m.mu.Unlock()
	if cl == nil {
		return
	}
	cl.buf = append(cl.buf[:0], f.Body...)
	cl.err = nil
	if f.Status != 0 {
		cl.err = fmt.Errorf("ceiling: status %d: %s", f.Status, f.Msg)
	}
	cl.done <- struct{}{}
}

// fail fails every pending call, and every later one, with err. It reports
// false if the connection had already failed.
func (m *rawMux) fail(err error) bool {
	m.mu.Lock()
	if m.closed != nil {
		m.mu.Unlock()
		return false
	}
	m.closed = err
	pending := m.pending
	m.pending = make(map[uint32]*rawCall)
	m.mu.Unlock()
	for _, cl := range pending {
		cl.err = err
		cl.done <- struct{}{}
	}
	return true
}

// rawCall is one caller's reusable call slot: the response body is copied
// into buf and done is signalled, so a call allocates nothing.
type rawCall struct {
	buf  []byte
	err  error
	done chan struct{}
}

func dialRaw(addr string, conns int) (*rawClient, error) {
	if conns < 1 {
		conns = 1
	}
	c := &rawClient{}
	for range conns {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			c.Close()
			return nil, err
		}
		rc := &rawConn{nc: nc, rawMux: rawMux{pending: make(map[uint32]*rawCall)}}
		go rc.readLoop()
		c.conns = append(c.conns, rc)
	}
	return c, nil
}

// pick returns the connection for a new caller. Callers keep their
// connection, as a channel-per-caller client would.
func (c *rawClient) pick() ceilingConnection {
	c.mu.Lock()
	rc := c.conns[c.next%uint32(len(c.conns))]
	c.next++
	c.mu.Unlock()
	return rc
}

func (c *rawClient) Close() error {
	for _, rc := range c.conns {
		rc.close(net.ErrClosed)
	}
	return nil
}

// call sends body as one request frame and waits for the response, whose
// body it copies into cl.buf.
func (rc *rawConn) call(cl *rawCall, body []byte) error {
	rc.mu.Lock()
	if err := rc.queueLocked(cl, body); err != nil {
		rc.mu.Unlock()
		return err
	}
	rc.flushLocked()
	<-cl.done
	return cl.err
}

// flushLocked is entered with rc.mu held and leaves it released. If no
// caller is writing, this one becomes the writer: it yields once so that
// runnable callers can queue their frames too, then writes until the queue
// is empty, swapping the queue out each time so that every frame queued
// while a write was in the kernel goes out in the next single write.
// Callers that find a writer at work only queue: one writer at a time, and
// no hand-off to a writer goroutine.
func (rc *rawConn) flushLocked() {
	if rc.writing {
		rc.mu.Unlock()
		return
	}
	rc.writing = true
	rc.mu.Unlock()
	runtime.Gosched()
	rc.mu.Lock()
	for len(rc.queue) > 0 && rc.closed == nil {
		batch := rc.queue
		rc.queue = rc.spare[:0]
		rc.mu.Unlock()
		_, err := rc.nc.Write(batch)
		rc.mu.Lock()
		rc.spare = batch[:0]
		if err != nil {
			rc.writing = false
			rc.mu.Unlock()
			rc.close(err)
			return
		}
	}
	rc.writing = false
	rc.mu.Unlock()
}

func (rc *rawConn) readLoop() {
	br := bufio.NewReaderSize(rc.nc, 64<<10)
	var frame []byte
	for {
		pre, err := br.Peek(wire.PrefixSize)
		if err != nil {
			rc.close(err)
			return
		}
		size, err := wire.FrameSize(pre, wire.DefaultMaxFrameSize)
		if err != nil {
			rc.close(err)
			return
		}
		if cap(frame) < size {
			frame = make([]byte, size)
		}
		frame = frame[:size]
		if _, err := io.ReadFull(br, frame); err != nil {
			rc.close(err)
			return
		}
		f, err := wire.Parse(frame, wire.DefaultMaxFrameSize)
		if err != nil {
			rc.close(err)
			return
		}
		rc.complete(&f)
	}
}

// close fails every pending call with err; closing the socket ends the
// reader.
func (rc *rawConn) close(err error) {
	if rc.fail(err) {
		rc.nc.Close()
	}
}

// ceilingClient is one of the clients the ceiling's server can be driven
// by: rawClient on Go's netpoller ("ceiling") or gnetClient on gnet's
// client event loops ("ceiling-gnetclient").
type ceilingClient interface {
	// pick returns the connection for a new caller.
	pick() ceilingConnection
	Close() error
}

// ceilingConnection is one client connection: call sends body as one
// request frame and waits for the response, whose body it copies into
// cl.buf.
type ceilingConnection interface {
	call(cl *rawCall, body []byte) error
}

type ceilingSystem struct {
	srv    *ceilingServer
	client ceilingClient
}

func startCeiling(o Options) (System, error) {
	return startCeilingWith(o, func(addr string, conns int) (ceilingClient, error) { return dialRaw(addr, conns) })
}

// rawConns is how many connections the ceiling's raw clients open: o.Conns,
// or as many as svrkit's client does.
func (o Options) rawConns() int {
	if o.Conns > 0 {
		return o.Conns
	}
	return svrkitDefaultConns
}

// startCeilingWith starts the ceiling's server and connects a client to it
// with dial.
func startCeilingWith(o Options, dial func(addr string, conns int) (ceilingClient, error)) (System, error) {
	srv, err := startCeilingServer(o.EventLoops)
	if err != nil {
		return nil, err
	}
	client, err := dial(srv.Addr().String(), o.rawConns())
	if err != nil {
		return nil, errors.Join(err, stopWithin(srv.Stop))
	}
	return &ceilingSystem{srv: srv, client: client}, nil
}

func (s *ceilingSystem) NewCaller(payload []byte) Caller {
	conn := s.client.pick()
	cl := &rawCall{buf: make([]byte, 0, len(payload)), done: make(chan struct{}, 1)}
	return func(context.Context) ([]byte, error) {
		if err := conn.call(cl, payload); err != nil {
			return nil, err
		}
		return cl.buf, echoLen(cl.buf, len(payload))
	}
}

func (s *ceilingSystem) Close() error {
	return errors.Join(s.client.Close(), stopWithin(s.srv.Stop))
}
