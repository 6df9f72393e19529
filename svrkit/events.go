package svrkit

import (
	"context"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/svrkit/svrkit/svrkit/internal/beat"
	"github.com/svrkit/svrkit/svrkit/netloop"
	"github.com/svrkit/svrkit/svrkit/wire"
)

// serverEvents adapts the server to gnet's EventHandler.
type serverEvents struct {
	gnet.BuiltinEventEngine
	s *Server
}

func (h *serverEvents) OnBoot(eng gnet.Engine) gnet.Action {
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

func (h *serverEvents) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	s := h.s
	sc := &serverConn{s: s, c: c, calls: make(map[uint32]*callCtx)}
	sc.flushedFn = sc.flushed
	sc.touch()
	c.SetContext(sc)
	s.mu.Lock()
	s.conns[sc] = struct{}{}
	s.mu.Unlock()
	if s.adm != nil {
		sc.shard = s.adm.shard()
	}
	hello, nonce := s.hello()
	sc.nonce = nonce
	sc.send(&hello, "", nonce, true)
	if s.draining.Load() {
		sc.goAway(true)
	}
	sc.flushOnLoop()
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
	s.advanceClock(now)
	s.workers.reap(now)
	if s.adm != nil {
		s.adm.tick(now)
	}
	idle := s.opts.idleTimeout
	tick := time.Second
	if idle > 0 {
		tick = min(idle/2, time.Second)
	}
	// gap is the longest wait between two ticks: they fall on the
	// process's beat (package beat), so a wait can be half a tick longer
	// than tick (the first, or the one after a tick that ran late).
	gap := tick + tick/2
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
		// lastActive is the coarse clock, up to a gap behind the traffic
		// it marks: only past idle plus a gap is the peer surely idle.
		if quiet && idle > 0 && now-sc.lastActive.Load() > int64(idle+gap) {
			_ = sc.c.Close()
			continue
		}
		if ft := s.opts.frameTimeout; ft > 0 {
			if since := sc.partialSince.Load(); since != 0 && now-since > int64(ft+gap) {
				s.log.Warn("svrkit: closing connection", "peer", sc.c.RemoteAddr(), "reason", "a frame did not arrive whole within the frame timeout", "timeout", ft)
				_ = sc.c.Close()
			}
		}
	}
	s.mu.Unlock()
	return beat.Until(tick), gnet.None
}

// notePartial records, when it starts, that the input buffer holds part of
// a frame; a buffer with nothing in it clears the record.
func (sc *serverConn) notePartial(c gnet.Conn) {
	if c.InboundBuffered() == 0 {
		if sc.partialSince.Load() != 0 {
			sc.partialSince.Store(0)
		}
		return
	}
	if sc.partialSince.Load() == 0 {
		sc.partialSince.Store(sc.s.clock.Load())
	}
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
	sc.arrived = time.Time{} // a new batch: read the clock again if needed
	for progressed := false; ; progressed = true {
		if progressed && sc.partialSince.Load() != 0 {
			sc.partialSince.Store(0) // a frame arrived whole: the clock restarts
		}
		prefix, err := c.Peek(wire.PrefixSize)
		if err != nil {
			sc.notePartial(c)
			return gnet.None // need more bytes
		}
		size, err := wire.FrameSize(prefix, s.opts.maxFrameSize)
		if err != nil {
			s.log.Warn("svrkit: closing connection", "peer", c.RemoteAddr(), "err", err)
			return gnet.Close
		}
		if c.InboundBuffered() < size {
			sc.notePartial(c)
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
