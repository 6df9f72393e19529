package svrkit

import (
	"context"
	"maps"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/svrkit/wire"
)

// endpoint is one server address and its connections.
//
// A connection slot is dialed by one background goroutine at a time
// (dialing); callers that need the slot wait for that dial only until
// their own deadline, so a blackholed address (SYNs dropped until the dial
// timeout) cannot hold a short-deadline caller. Before, the first caller
// dialed while holding the endpoint's lock, and every other caller of the
// endpoint queued on the lock for up to the dial timeout.
type endpoint struct {
	c    *Client
	addr string
	hash uint64

	next      padded32     // round robin over conns
	downUntil atomic.Int64 // unix nanos; the endpoint is skipped before it

	// The admission level the server last reported on a response: calls
	// below it are refused here, unsent.
	level reportedLevel
	// The levels the server reported for single methods (by cmdid): the
	// level of the services a method calls, when it is above the
	// server's own (see downstream.go). Copy on write, under mu; nil
	// until a method's level is first reported.
	methodLevels atomic.Pointer[map[uint32]*reportedLevel]

	// conns are fixed slots; nil or dead ones are redialed. They and
	// retired are written under mu and read without it on the call path.
	conns   []atomic.Pointer[clientConn]
	retired atomic.Bool

	mu       sync.Mutex
	dials    []*dialing // per slot, the dial in progress
	failures int
}

// levelTTL is how long a reported admission level holds without news: a
// client that refuses everything below it locally sends the server
// nothing of those priorities, so it must not go on refusing once the
// server stops reporting (it answers nothing, or went idle).
const levelTTL = time.Second

var (
	errShedLocally    = NewError(Overloaded, "endpoint is overloaded and refuses this request's priority (refused locally, unsent)")
	errShedDownstream = NewError(Overloaded, "a service this method calls is overloaded and refuses this request's priority (refused locally, unsent)")
)

// reportedLevel is a level a server reported, and when (unix nanos); it
// holds for levelTTL.
type reportedLevel struct {
	level atomic.Uint32
	at    atomic.Int64
}

// set records lvl, heard at at (unix nanos).
func (r *reportedLevel) set(lvl uint32, at int64) {
	if lvl != r.level.Load() {
		r.level.Store(lvl)
	}
	if lvl != 0 {
		r.at.Store(at)
	}
}

// current returns the level while it holds, else 0; it reads the clock
// only when a level is set.
func (r *reportedLevel) current() uint32 {
	lvl := r.level.Load()
	if lvl == 0 || time.Now().UnixNano()-r.at.Load() >= int64(levelTTL) {
		return 0
	}
	return lvl
}

// methodLevel returns the level the server last reported for method cmd,
// nil when it never reported one.
func (ep *endpoint) methodLevel(cmd uint32) *reportedLevel {
	if ml := ep.methodLevels.Load(); ml != nil {
		return (*ml)[cmd]
	}
	return nil
}

// noteMethodLevel records the level the server reported on a response of
// method cmd, heard at at (unix nanos).
func (ep *endpoint) noteMethodLevel(cmd, lvl uint32, at int64) {
	r := ep.methodLevel(cmd)
	if r == nil {
		if lvl == 0 {
			return
		}
		ep.mu.Lock()
		old := ep.methodLevels.Load()
		if old != nil {
			r = (*old)[cmd]
		}
		if r == nil {
			next := make(map[uint32]*reportedLevel, 1)
			if old != nil {
				maps.Copy(next, *old)
			}
			r = new(reportedLevel)
			next[cmd] = r
			ep.methodLevels.Store(&next)
		}
		ep.mu.Unlock()
	}
	r.set(lvl, at)
}

// reportLevel tells down, the record of the calling handler's method, the
// level this endpoint last reported for a call of cmd: its own, or the
// method's when that is higher. A report of none matters only when down
// holds a level (perhaps this dependency's, which it lowers), so a calm
// chain reads no clock here.
func (ep *endpoint) reportLevel(down *downstreamLevel, cmd uint32) {
	lvl := ep.level.current()
	if r := ep.methodLevel(cmd); r != nil {
		lvl = max(lvl, r.current())
	}
	if lvl != 0 || down.any() {
		down.observe(depKey(ep.hash, cmd), lvl, time.Now().UnixNano())
	}
}

// dialing is one dial in progress; done closes when cc or err is set.
type dialing struct {
	done chan struct{}
	cc   *clientConn
	err  error
}

func newEndpoint(c *Client, addr string) *endpoint {
	n := c.opts.connsPerEndpoint
	return &endpoint{
		c: c, addr: addr, hash: mix64(hashString(addr)),
		conns: make([]atomic.Pointer[clientConn], n),
		dials: make([]*dialing, n),
	}
}

// call sends one request on a connection of this endpoint and waits for
// its answer. sent reports whether the request may have reached the server.
func (ep *endpoint) call(ctx context.Context, h *wire.Header, md, body []byte, resp proto.Message, deadline time.Time, hasDeadline bool) (sent bool, err error) {
	key := uint32(admissionKey(h.Priority, h.Flags, 0, 0)) // requestPriority set the user
	if key < ep.level.current() {
		return false, errShedLocally
	}
	if r := ep.methodLevel(h.CmdID); r != nil && key < r.current() {
		return false, errShedDownstream
	}
	cc, err := ep.conn(ctx, deadline, hasDeadline)
	if err != nil {
		return false, err
	}
	return cc.roundTrip(ctx, h, md, body, resp, deadline, hasDeadline)
}

// conn returns a usable connection: the next slot's, another live slot's
// while the next one is redialed in the background, or — when none is
// live — the one being dialed, waited for until the caller's deadline.
func (ep *endpoint) conn(ctx context.Context, deadline time.Time, hasDeadline bool) (*clientConn, error) {
	n := uint32(len(ep.conns))
	i := ep.next.Add(1) % n
	if cc := ep.conns[i].Load(); cc.usable() && !ep.retired.Load() {
		return cc, nil // the common case, without the endpoint's lock
	}
	ep.mu.Lock()
	if ep.retired.Load() {
		ep.mu.Unlock()
		return nil, Errorf(Unavailable, "endpoint %s was removed", ep.addr)
	}
	if cc := ep.conns[i].Load(); cc.usable() {
		ep.mu.Unlock()
		return cc, nil
	}
	for j := uint32(1); j < n; j++ {
		if cc := ep.conns[(i+j)%n].Load(); cc.usable() {
			_, _ = ep.startDialLocked(i)
			ep.mu.Unlock()
			return cc, nil
		}
	}
	d, err := ep.startDialLocked(i)
	ep.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return d.wait(ctx, ep.addr, deadline, hasDeadline)
}

// startDialLocked returns the dial in progress for slot i, starting one
// unless the endpoint is in its backoff. Called with ep.mu held.
func (ep *endpoint) startDialLocked(i uint32) (*dialing, error) {
	if d := ep.dials[i]; d != nil {
		return d, nil
	}
	if until := ep.downUntil.Load(); until > time.Now().UnixNano() {
		return nil, Errorf(Unavailable, "endpoint %s is down (retry in %v)", ep.addr, time.Until(time.Unix(0, until)).Round(time.Millisecond))
	}
	d := &dialing{done: make(chan struct{})}
	if !ep.c.background(func() { ep.dial(i, d) }) {
		return nil, errClientClosed
	}
	ep.dials[i] = d
	return d, nil
}

// dial connects slot i; it runs in its own goroutine, bounded by the dial
// timeout and the client's life.
func (ep *endpoint) dial(i uint32, d *dialing) {
	ctx, cancel := context.WithTimeout(ep.c.life, ep.c.opts.dialTimeout)
	var dialer net.Dialer
	var cc *clientConn
	nc, err := dialer.DialContext(ctx, "tcp", ep.addr)
	if err == nil {
		if cc, err = openClientConn(ctx, ep, nc); err != nil {
			_ = nc.Close()
		}
	}
	cancel()
	ep.mu.Lock()
	ep.dials[i] = nil
	switch {
	case err != nil && ep.c.life.Err() != nil:
		d.err = errClientClosed
	case err != nil:
		ep.markDownLocked()
		d.err = Errorf(Unavailable, "dial %s: %w", ep.addr, err)
	case ep.retired.Load():
		cc.fail(Errorf(Unavailable, "endpoint %s was removed", ep.addr))
		d.err = Errorf(Unavailable, "endpoint %s was removed", ep.addr)
	default:
		ep.failures = 0
		ep.downUntil.Store(0)
		d.cc = cc
		ep.conns[i].Store(cc)
	}
	ep.mu.Unlock()
	close(d.done)
}

// wait returns the dial's connection, or an error once the caller's
// context or deadline ends first.
func (d *dialing) wait(ctx context.Context, addr string, deadline time.Time, hasDeadline bool) (*clientConn, error) {
	select {
	case <-d.done:
		return d.cc, d.err
	default:
	}
	var timeout <-chan time.Time
	if t := deadlineTimer(ctx, deadline, hasDeadline); t != nil {
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-d.done:
		return d.cc, d.err
	case <-ctx.Done():
		return nil, ctxError(ctx.Err())
	case <-timeout:
		return nil, Errorf(DeadlineExceeded, "deadline exceeded while connecting to %s", addr)
	}
}

// redial starts a dial of slot i in the background if it has no live
// connection and the endpoint is not in its backoff.
func (ep *endpoint) redial(i uint32) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.retired.Load() || ep.conns[i].Load().usable() {
		return
	}
	_, _ = ep.startDialLocked(i)
}

func (ep *endpoint) loadConns() []*clientConn {
	conns := make([]*clientConn, len(ep.conns))
	for i := range ep.conns {
		conns[i] = ep.conns[i].Load()
	}
	return conns
}

// markDownLocked skips the endpoint for an exponentially growing backoff.
// The backoff is jittered (uniform over its upper half) so that the many
// clients of a server that restarts do not all redial it in the same
// instant.
func (ep *endpoint) markDownLocked() {
	ep.failures++
	back := ep.c.opts.backoffMin << min(ep.failures-1, 16)
	if back > ep.c.opts.backoffMax || back <= 0 {
		back = ep.c.opts.backoffMax
	}
	back = back/2 + rand.N(back/2+1)
	ep.downUntil.Store(time.Now().Add(back).UnixNano())
}

// checkHealth pings live connections, closes ones that stopped answering,
// and redials slots of an endpoint whose backoff has passed. It never
// blocks: pings are queued like requests and dials run in the background.
func (ep *endpoint) checkHealth() {
	ep.mu.Lock()
	if ep.retired.Load() {
		ep.mu.Unlock()
		return
	}
	conns := ep.loadConns()
	ep.mu.Unlock()
	stale := int64(3 * ep.c.opts.healthInterval)
	now := time.Now().UnixNano()
	for i, cc := range conns {
		if cc == nil || !cc.usable() {
			// Redial slots that had a connection, and always slot 0, so an
			// endpoint keeps one warm connection without dialing every
			// slot of endpoints no call has used yet.
			if i == 0 || cc != nil {
				ep.redial(uint32(i))
			}
			continue
		}
		if now-cc.lastHeard.Load() > stale {
			cc.fail(Errorf(Unavailable, "%s stopped answering pings", ep.addr))
			ep.mu.Lock()
			ep.markDownLocked()
			ep.mu.Unlock()
			continue
		}
		cc.ping()
	}
}

// retire stops using the endpoint. Its connections close once their calls
// are answered (or at once, failing them with err, when err is set).
func (ep *endpoint) retire(err error) {
	ep.mu.Lock()
	ep.retired.Store(true)
	conns := ep.loadConns()
	ep.mu.Unlock()
	for _, cc := range conns {
		if cc == nil {
			continue
		}
		if err != nil {
			cc.fail(err)
		} else {
			cc.drain()
		}
	}
}
