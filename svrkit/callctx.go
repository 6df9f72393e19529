package svrkit

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/svrkit/internal/metactx"
)

// callCtx is the context.Context a server handler runs with. It replaces
// context.WithDeadline + WithCancel + WithValue (four or more allocations per
// call) with one allocation, and creates its Done channel and deadline timer
// only if somebody asks for Done: most handlers never do, and Err() checks the
// deadline against the clock instead.
//
// A callCtx is never reused: a handler may hand its context to a goroutine
// that outlives the call. Its fields are ordered to keep it in the
// allocator's 208-byte size class (TestCallCtxSizeClass): it is the
// framework's one allocation per call on the server.
type callCtx struct {
	parent   context.Context // the server's lifetime context
	deadline time.Time
	md       Metadata
	method   *MethodDesc

	// The call itself, for the worker that runs it.
	conn *serverConn
	sm   *serverMethod
	req  proto.Message

	// prio is the request's priorities (business as sent, 0 = unset; user
	// as admitted), inherited by the calls the handler makes.
	prio callPriority
	// queuedAt is when the call was handed to the worker pool (unix nanos),
	// for the queuing time overload control measures; startedAt is when a
	// worker took it, read by the pool with overload control on (0
	// otherwise), so that the deadline check needs no clock of its own.
	queuedAt, startedAt int64
	reqID               uint32
	// outCalls counts the handler's outgoing svrkit calls in flight (its
	// goroutines may make several at once); the pool counts the worker as
	// waiting while there is one (callOut).
	outCalls atomic.Int32

	hasDeadline bool
	inline      bool // runs on the event loop (NonBlocking method)
	// peerCanceled is set (under the server connection's lock) when the
	// client sent a cancel frame: the call then gets no response.
	peerCanceled bool

	mu        sync.Mutex
	done      chan struct{}
	err       error
	timer     *time.Timer
	stopAfter func() bool // unregisters the parent AfterFunc
	afters    []*afterEntry
}

func (c *callCtx) Deadline() (time.Time, bool) { return c.deadline, c.hasDeadline }

func (c *callCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return c.done
	}
	c.done = make(chan struct{})
	if c.err != nil {
		close(c.done)
		return c.done
	}
	err := c.parent.Err()
	var d time.Duration
	if err == nil && c.hasDeadline {
		if d = time.Until(c.deadline); d <= 0 {
			err = context.DeadlineExceeded
		}
	}
	if err != nil {
		c.finishLocked(err)
		return c.done
	}
	if c.hasDeadline {
		c.timer = time.AfterFunc(d, c.expire)
	}
	c.stopAfter = context.AfterFunc(c.parent, c.parentDone)
	return c.done
}

func (c *callCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		if perr := c.parent.Err(); perr != nil {
			c.finishLocked(perr)
		} else if c.hasDeadline && !time.Now().Before(c.deadline) {
			c.finishLocked(context.DeadlineExceeded)
		}
	}
	return c.err
}

func (c *callCtx) Value(key any) any {
	switch key.(type) {
	case metactx.IncomingKey:
		if c.md != nil {
			return map[string]string(c.md)
		}
	case methodKey:
		return c.method
	case priorityKey:
		return &c.prio
	case identityKey:
		if c.conn != nil {
			return c.conn.identity
		}
	}
	return c.parent.Value(key)
}

// AfterFunc lets context.WithCancel and friends derived from a handler's
// context register for its cancellation without a goroutine each (the
// context package looks for this method). f runs in its own goroutine once
// the context ends; the returned stop reports whether it prevented that.
func (c *callCtx) AfterFunc(f func()) (stop func() bool) {
	e := &afterEntry{f: f}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		e.ran = true
		go f()
		return func() bool { return false }
	}
	c.afters = append(c.afters, e)
	c.mu.Unlock()
	// Derived contexts must also see the deadline and the server's stop.
	_ = c.Done()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if e.ran || e.stopped {
			return false
		}
		e.stopped = true
		return true
	}
}

type afterEntry struct {
	f            func()
	ran, stopped bool
}

func (c *callCtx) expire()     { c.cancel(context.DeadlineExceeded) }
func (c *callCtx) parentDone() { c.cancel(c.parent.Err()) }

// cancel ends the context with err (the call's cancel frame, its deadline or
// the server's hard stop). Only the first call has an effect.
func (c *callCtx) cancel(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.finishLocked(err)
	}
	c.mu.Unlock()
}

func (c *callCtx) finishLocked(err error) {
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	for _, e := range c.afters {
		if !e.stopped {
			e.ran = true
			go e.f()
		}
	}
	c.afters = nil
	c.releaseLocked()
}

// end is called when the handler has returned: like net/http and gRPC,
// the call's context is canceled then, which frees its timer.
func (c *callCtx) end() { c.cancel(context.Canceled) }

func (c *callCtx) releaseLocked() {
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if c.stopAfter != nil {
		c.stopAfter()
		c.stopAfter = nil
	}
}

type methodKey struct{}

// MethodFromContext returns the method whose handler is running with ctx, so
// interceptors and handlers shared by several methods can tell them apart.
func MethodFromContext(ctx context.Context) *MethodDesc {
	m, _ := ctx.Value(methodKey{}).(*MethodDesc)
	return m
}

// callOut records that the handler made an outgoing call, and callBack
// that one came back: while any is out, the pool counts the call's worker
// among those waiting (workerPool.waiting), once however many the
// handler's goroutines have out, so that the pool's CPU check does not
// take it for a worker on a CPU.
func (c *callCtx) callOut() {
	if c.outCalls.Add(1) == 1 {
		c.conn.s.workers.waiting.Add(1)
	}
}

func (c *callCtx) callBack() {
	if c.outCalls.Add(-1) == 0 {
		c.conn.s.workers.waiting.Add(-1)
	}
}
