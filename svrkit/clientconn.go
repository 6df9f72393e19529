package svrkit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/svrkit/wire"
)

// clientConn is one multiplexed connection: its calls in flight, its write
// path (callers append frames; one writer at a time writes them) and its
// read path (one reader goroutine delivers responses to their callers).
type clientConn struct {
	ep        *endpoint
	nc        net.Conn
	raw       syscall.RawConn       // nil when nc offers none: writes then always go through writeRest
	rawWrite  func(fd uintptr) bool // cc.writeFd, bound once so a write does not allocate
	lastHeard atomic.Int64

	closing atomic.Bool // err or draining is set: no new calls

	mu       sync.Mutex
	pending  map[uint32]*call
	nextID   uint32
	out      []byte // frames waiting to be written
	spare    []byte // the other buffer, reused
	writing  bool   // a caller or the background writer owns the socket's write side
	unsent   int    // bytes the background writer still has to write
	err      error  // set once the connection is dead
	draining bool   // goaway received or endpoint removed: no new calls

	// The current writer's non-blocking write; only the writer uses them.
	wbuf []byte
	wn   int
	werr error
}

type call struct {
	cmd  uint32 // the method's cmdid, for the level its response reports
	resp proto.Message
	err  error
	done chan struct{} // capacity 1; the reader signals once per use
}

var callPool = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

// openClientConn completes a connection the dial opened: it reads the
// server's hello and, when the client has an identity, answers with the
// auth frame, both within ctx (the dial's deadline); then it starts the
// reader.
func openClientConn(ctx context.Context, ep *endpoint, nc net.Conn) (*clientConn, error) {
	cc := &clientConn{ep: ep, nc: nc, pending: make(map[uint32]*call)}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			cc.raw = raw
			cc.rawWrite = cc.writeFd
		}
	}
	cc.lastHeard.Store(time.Now().UnixNano())
	br := bufio.NewReaderSize(heardReader{cc}, 64<<10)
	if d, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(d)
	}
	interrupt := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	auth, err := ep.c.opts.readHello(br, ep.addr)
	if err == nil && auth != nil {
		_, err = nc.Write(auth)
	}
	if !interrupt() && err == nil {
		err = ctx.Err() // the deadline may already be set to now
	}
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	go cc.readLoop(br)
	return cc, nil
}

func (cc *clientConn) usable() bool {
	if cc == nil {
		return false
	}
	return !cc.closing.Load()
}

func (cc *clientConn) roundTrip(ctx context.Context, h *wire.Header, md, body []byte, resp proto.Message, deadline time.Time, hasDeadline bool) (sent bool, err error) {
	cl := callPool.Get().(*call)
	cl.resp, cl.err, cl.cmd = resp, nil, h.CmdID

	cc.mu.Lock()
	if cc.err != nil || cc.draining {
		cc.mu.Unlock()
		callPool.Put(cl)
		return false, Errorf(Unavailable, "connection to %s is closing", cc.ep.addr)
	}
	for {
		cc.nextID++
		if _, busy := cc.pending[cc.nextID]; !busy && cc.nextID != 0 {
			break
		}
	}
	opts := &cc.ep.c.opts
	if backlog := len(cc.out) + cc.unsent; backlog > 0 && backlog+len(md)+len(body)+wire.PrefixSize > opts.maxPendingBytes {
		cc.mu.Unlock()
		callPool.Put(cl)
		return false, Errorf(ResourceExhausted, "%d bytes already wait to be written to %s (limit %d): the server is not reading", backlog, cc.ep.addr, opts.maxPendingBytes)
	}
	id := cc.nextID
	h.ReqID = id
	out, ferr := wire.AppendFrame(cc.out, h, md, "", body, opts.maxFrameSize)
	if ferr != nil {
		cc.mu.Unlock()
		callPool.Put(cl)
		return false, Errorf(ResourceExhausted, "request of %d bytes exceeds the %d-byte frame limit", len(body), opts.maxFrameSize)
	}
	cc.out = out
	cc.pending[id] = cl
	cc.flushLocked() // unlocks

	timer := deadlineTimer(ctx, deadline, hasDeadline)
	var timeout <-chan time.Time
	if timer != nil {
		defer timer.Stop()
		timeout = timer.C
	}
	done := ctx.Done()
	if done == nil && timeout == nil {
		<-cl.done // nothing else can end the wait; cheaper than a select
	} else {
		select {
		case <-cl.done:
		case <-done:
			if cc.abandon(id, cl) {
				return true, ctxError(ctx.Err())
			}
			<-cl.done
		case <-timeout:
			if cc.abandon(id, cl) {
				return true, NewError(DeadlineExceeded, "deadline exceeded")
			}
			<-cl.done
		}
	}
	err = cl.err
	cl.resp, cl.err = nil, nil
	callPool.Put(cl)
	return true, err
}

// deadlineTimer returns a timer for the call's deadline when ctx.Done will
// not fire in time: the method's timeout is earlier than the context's
// deadline, or the context has none. It returns nil otherwise.
func deadlineTimer(ctx context.Context, deadline time.Time, hasDeadline bool) *time.Timer {
	if !hasDeadline {
		return nil
	}
	if cd, ok := ctx.Deadline(); ok && !deadline.Before(cd) {
		return nil
	}
	return time.NewTimer(time.Until(deadline))
}

// abandon removes a call the caller stops waiting for and tells the server
// with a cancel frame. It returns false if the reader already took the call,
// in which case its done signal is coming.
func (cc *clientConn) abandon(id uint32, cl *call) bool {
	cc.mu.Lock()
	if cc.pending[id] != cl {
		cc.mu.Unlock()
		return false
	}
	delete(cc.pending, id)
	if cc.err != nil {
		cc.mu.Unlock()
		callPool.Put(cl)
		return true
	}
	cc.out, _ = wire.AppendFrame(cc.out, &wire.Header{Kind: wire.KindCancel, ReqID: id}, nil, "", nil, 0)
	cc.closeIfDrainedLocked()
	cc.flushLocked()
	callPool.Put(cl)
	return true
}

// flushLocked writes pending frames if no other writer is at work; it is
// called with cc.mu held and returns with it released. It never blocks:
// each batch is one non-blocking write, and when the socket does not take
// all of it (the peer reads slowly or not at all) the rest goes to a
// background writer and the caller returns to wait for its answer, which
// is how a call keeps its deadline against a stalled server.
func (cc *clientConn) flushLocked() {
	if cc.writing || cc.err != nil || len(cc.out) == 0 {
		cc.mu.Unlock()
		return
	}
	cc.writing = true
	cc.gatherLocked()
	for len(cc.out) > 0 && cc.err == nil {
		buf := cc.out
		cc.out, cc.spare = cc.spare[:0], nil
		cc.mu.Unlock()
		n, err := cc.writeNow(buf)
		cc.mu.Lock()
		if err != nil {
			cc.writing = false
			cc.mu.Unlock()
			cc.fail(Errorf(Unavailable, "write to %s: %w", cc.ep.addr, err))
			return
		}
		if n < len(buf) {
			cc.unsent = len(buf) - n
			cc.mu.Unlock()
			if !cc.ep.c.background(func() { cc.writeRest(buf, n) }) {
				cc.fail(errClientClosed)
			}
			return
		}
		cc.spare = buf[:0]
	}
	cc.writing = false
	cc.mu.Unlock()
}

// gatherLocked lets callers that are already runnable append their frames
// before the writer, which has set cc.writing, writes them: typically the
// callers one batch of responses just woke. It yields while the batch
// keeps growing, up to gatherYields times and until it holds gatherBytes,
// while the connection has at least gatherMinPending calls in flight;
// with nothing else runnable the first yield returns at once, so a lone
// call goes out without delay. Called with cc.mu held, it returns with it
// held.
//
// Why: on loopback every write runs the server's TCP receive path, so it
// costs several microseconds of CPU whatever it carries, and a single
// yield left batches of a few frames with dozens of callers, twice the
// writes per call of a raw gnet client (tools/rpcbench has the figures).
// The byte cap keeps a writer from holding a full batch back from the
// socket when thousands of callers are runnable, where more yields cost
// throughput. Only a connection with gatherMinPending calls in flight,
// where many callers can be runnable at once, yields more than once: a
// yield is a trip through a busy process's run queue, and on the IM's
// Logicsvrs (a few calls per connection) the unconditional loop bought
// nothing. The same loop in the server's workers, before they hand a
// batch to the event loop, cost CPU and was not kept: the loop already
// batches what arrives while it writes.
func (cc *clientConn) gatherLocked() {
	for range gatherYields {
		before := len(cc.out)
		cc.mu.Unlock()
		runtime.Gosched()
		cc.mu.Lock()
		if len(cc.out) == before || len(cc.out) >= gatherBytes || len(cc.pending) < gatherMinPending {
			return
		}
	}
}

const (
	gatherYields     = 4
	gatherBytes      = 8 << 10
	gatherMinPending = 16
)

// writeNow writes what the socket takes of buf without waiting, and
// returns how much that was.
func (cc *clientConn) writeNow(buf []byte) (int, error) {
	if cc.raw == nil {
		return 0, nil
	}
	cc.wbuf, cc.wn, cc.werr = buf, 0, nil
	err := cc.raw.Write(cc.rawWrite)
	n, werr := cc.wn, cc.werr
	cc.wbuf, cc.werr = nil, nil
	if err != nil {
		return n, err
	}
	return n, werr
}

// writeFd is writeNow's raw write. Returning true tells the runtime not to
// wait for the socket to become writable.
func (cc *clientConn) writeFd(fd uintptr) bool {
	for cc.wn < len(cc.wbuf) {
		m, err := syscall.Write(int(fd), cc.wbuf[cc.wn:])
		if m > 0 {
			cc.wn += m
		}
		switch {
		case err == syscall.EINTR:
		case err == syscall.EAGAIN:
			return true
		case err != nil:
			cc.werr = err
			return true
		case m <= 0:
			return true
		}
	}
	return true
}

// writeRest is the background writer: it writes buf from n on, then
// whatever was queued meanwhile, waiting for the socket as long as the peer
// makes progress. A peer that takes nothing for three health intervals
// cannot drain, and the connection is failed with Unavailable.
func (cc *clientConn) writeRest(buf []byte, n int) {
	stall := 3 * cc.ep.c.opts.healthInterval
	for {
		for n < len(buf) {
			_ = cc.nc.SetWriteDeadline(time.Now().Add(stall))
			m, err := cc.nc.Write(buf[n:])
			n += m
			cc.mu.Lock()
			cc.unsent = len(buf) - n
			cc.mu.Unlock()
			if err != nil {
				if m > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
					continue // slow, but moving
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					err = fmt.Errorf("nothing written for %v: the server is not reading", stall)
				}
				cc.mu.Lock()
				cc.writing, cc.unsent = false, 0
				cc.mu.Unlock()
				cc.fail(Errorf(Unavailable, "write to %s: %w", cc.ep.addr, err))
				return
			}
		}
		// The fast path's non-blocking write must not meet this deadline.
		_ = cc.nc.SetWriteDeadline(time.Time{})
		cc.mu.Lock()
		cc.spare, cc.unsent = buf[:0], 0
		if cc.err != nil || len(cc.out) == 0 {
			cc.writing = false
			cc.mu.Unlock()
			return
		}
		buf, n = cc.out, 0
		cc.out, cc.spare = cc.spare[:0], nil
		cc.unsent = len(buf)
		cc.mu.Unlock()
	}
}

func (cc *clientConn) ping() {
	cc.mu.Lock()
	if cc.err != nil {
		cc.mu.Unlock()
		return
	}
	cc.out, _ = wire.AppendFrame(cc.out, &wire.Header{Kind: wire.KindPing}, nil, "", nil, 0)
	cc.flushLocked()
}

// drain stops new calls on the connection and closes it once the calls it
// carries are answered.
func (cc *clientConn) drain() {
	cc.mu.Lock()
	cc.draining = true
	cc.closing.Store(true)
	cc.closeIfDrainedLocked()
	cc.mu.Unlock()
}

func (cc *clientConn) closeIfDrainedLocked() {
	if cc.draining && len(cc.pending) == 0 && cc.err == nil {
		_ = cc.nc.Close() // the reader sees the error and finishes
	}
}

// fail marks the connection dead and fails every call on it with err.
func (cc *clientConn) fail(err error) {
	cc.mu.Lock()
	if cc.err != nil {
		cc.mu.Unlock()
		return
	}
	cc.err = err
	cc.closing.Store(true)
	pending := cc.pending
	cc.pending = nil
	cc.mu.Unlock()
	_ = cc.nc.Close()
	for _, cl := range pending {
		cl.err = err
		cl.done <- struct{}{}
	}
}

func (cc *clientConn) readLoop(br *bufio.Reader) {
	max := cc.ep.c.opts.maxFrameSize
	buf := make([]byte, 4096)
	for {
		if _, err := io.ReadFull(br, buf[:wire.PrefixSize]); err != nil {
			cc.readFailed(err)
			return
		}
		size, err := wire.FrameSize(buf[:wire.PrefixSize], max)
		if err != nil {
			cc.fail(Errorf(Unavailable, "protocol error from %s: %v", cc.ep.addr, err))
			return
		}
		if size > cap(buf) {
			nb := make([]byte, size)
			copy(nb, buf[:wire.PrefixSize])
			buf = nb
		}
		buf = buf[:cap(buf)]
		if _, err := io.ReadFull(br, buf[wire.PrefixSize:size]); err != nil {
			cc.readFailed(err)
			return
		}
		f, err := wire.Parse(buf[:size], max)
		if err != nil {
			cc.fail(Errorf(Unavailable, "protocol error from %s: %v", cc.ep.addr, err))
			return
		}
		switch f.Kind {
		case wire.KindResponse:
			cc.deliver(&f)
		case wire.KindPong:
		case wire.KindPing:
			cc.mu.Lock()
			cc.out, _ = wire.AppendFrame(cc.out, &wire.Header{Kind: wire.KindPong, ReqID: f.ReqID}, nil, "", f.Body, max)
			cc.flushLocked()
		case wire.KindGoAway:
			cc.mu.Lock()
			cc.draining = true
			cc.closing.Store(true)
			cc.closeIfDrainedLocked()
			cc.mu.Unlock()
		default:
			cc.fail(Errorf(Unavailable, "protocol error from %s: unexpected %v frame", cc.ep.addr, f.Kind))
			return
		}
		if size > 1<<20 {
			buf = make([]byte, 4096) // do not pin a huge buffer
		}
	}
}

// heardReader is the connection as its reader's bufio.Reader sees it: it
// records when bytes last arrived, once per read from the socket rather
// than per frame (the health check's resolution is seconds, and reading the
// clock per frame cost a few percent of CPU).
type heardReader struct{ cc *clientConn }

func (r heardReader) Read(p []byte) (int, error) {
	n, err := r.cc.nc.Read(p)
	if n > 0 {
		r.cc.lastHeard.Store(time.Now().UnixNano())
	}
	return n, err
}

func (cc *clientConn) readFailed(err error) {
	cc.mu.Lock()
	quiet := cc.draining && len(cc.pending) == 0
	cc.mu.Unlock()
	if quiet {
		cc.fail(Errorf(Unavailable, "connection to %s closed after drain", cc.ep.addr))
		return
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		cc.fail(Errorf(Unavailable, "connection to %s closed by server", cc.ep.addr))
		return
	}
	cc.fail(Errorf(Unavailable, "read from %s: %v", cc.ep.addr, err))
}

// deliver completes the call a response belongs to, decoding the body
// straight into the caller's message.
func (cc *clientConn) deliver(f *wire.Frame) {
	cc.mu.Lock()
	cl := cc.pending[f.ReqID]
	if cl != nil {
		delete(cc.pending, f.ReqID)
		cc.closeIfDrainedLocked()
	}
	cc.mu.Unlock()
	cc.ep.level.set(uint32(f.Priority)<<7|uint32(f.Flags&0x7f), cc.lastHeard.Load())
	if cl == nil {
		return // canceled by its caller
	}
	if f.Timeout != 0 || cc.ep.methodLevels.Load() != nil {
		cc.ep.noteMethodLevel(cl.cmd, f.Timeout, cc.lastHeard.Load())
	}
	if f.Status != 0 {
		cl.err = errorFromWire(Code(f.Status), f.Msg, f.Body)
	} else if err := proto.Unmarshal(f.Body, cl.resp); err != nil {
		cl.err = Errorf(Internal, "cannot decode response: %v", err)
	}
	cl.done <- struct{}{}
}
