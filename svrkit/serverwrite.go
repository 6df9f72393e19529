package svrkit

import (
	"fmt"
	"net"
	"runtime"
	"syscall"

	"github.com/panjf2000/gnet/v2"

	"github.com/svrkit/svrkit/svrkit/wire"
)

// send queues a frame for writing.
//
// On the event loop (onLoop: inline methods, refusals, pongs) it only
// queues: OnTraffic writes everything its frames produced with one Write
// when they are all handled (flushOnLoop). Flushing per frame instead costs
// one syscall per response, each running the peer's TCP receive path on
// loopback: several times slower for a NonBlocking echo under load.
//
// Elsewhere (a worker finishing a call), if no write is in progress: when
// no other call is running on the connection the worker writes itself (see
// writeDirect); otherwise it starts a write through gnet's AsyncWrite, and
// frames queued while that is in progress follow in one batch from its
// callback, so under load one syscall carries many responses. (Measured
// with tools/rpcbench and rejected: workers always writing straight to the
// socket. It saves a loop wake-up per batch but loses the batching, and
// gained nothing under load. Also rejected: a worker leaving such a
// response queued and writing it with those of the next calls it runs,
// until it has none left or has held 32 or 256. Half the server's writes
// and 0.80–0.88× the CPU per call at 64 callers, but no more calls per
// second (0.95–1.08×, every interval across 1.0; 16 B × 1024 0.95× with
// the cap at 32): the closed loop waits on latency, not on the CPUs, which
// sit a third idle. And a handler that blocks would hold the responses
// its worker deferred: a quick method cannot be told from a blocking one
// by wall time, since on a busy process a worker that runs an echo is
// descheduled for more than 500 µs several times a second.)
func (sc *serverConn) send(h *wire.Header, msg string, body []byte, onLoop bool) {
	limit := sc.s.opts.maxFrameSize
	if h.Kind == wire.KindResponse && sc.s.adm != nil {
		// Every response tells the client the admission level, so that it
		// refuses locally what this server would refuse.
		lvl := sc.s.adm.level.Load()
		h.Priority, h.Flags = uint8(lvl>>7), uint8(lvl&0x7f)
	}
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
// Why: handing the batch to the loop costs an eventfd wake-up of a loop
// parked in epoll_wait and gnet's AsyncWrite three allocations, which
// dominated a lone caller's round trip (tools/rpcbench's single-caller
// rows). Yielding once before writing is part of the gain, measured rather
// than understood: most likely it lets the scheduler poll the network and
// run the client's reader at once.
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
//
// It holds the connection as its writer (writing), not sc.mu, while it
// writes: a Write that fails makes gnet close the connection then and
// there, calling OnClose on this goroutine, which takes sc.mu — held, it
// would hang the event loop and every connection on it (seen in a full
// test run: a peer gone before the hello was written). Workers that queue
// frames meanwhile see a writer at work and leave them to it.
func (sc *serverConn) flushOnLoop() {
	sc.mu.Lock()
	if sc.writing || sc.closed || len(sc.out) == 0 {
		sc.mu.Unlock()
		return
	}
	sc.writing = true
	for !sc.closed && len(sc.out) > 0 {
		buf := sc.out
		sc.out, sc.spare = sc.spare[:0], nil
		sc.mu.Unlock()
		_, _ = sc.c.Write(buf) // copies what the socket does not take
		backlog := sc.c.OutboundBuffered()
		sc.mu.Lock()
		sc.backlog = backlog
		if !sc.closed {
			sc.spare = buf[:0]
		}
	}
	sc.writing = false
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
