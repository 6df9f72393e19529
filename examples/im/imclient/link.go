package imclient

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/link"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/wire"
)

// The long link: a Client in link mode (after Connect) makes every call but
// Register and Login over one TCP connection to a gateway (package
// examples/im/link has the protocol), and hears pushes on it. It keeps the
// connection up on its own: heartbeats, and after a break a reconnection
// with exponential backoff and jitter, a new auth and a signal to sync
// (Notifies), so whatever was missed meanwhile is pulled. Calls made while
// it reconnects wait for it, within their context.
//
// It stops for good, failing calls with the gateway's status, when the
// gateway says reconnecting cannot help: the device logged in on another
// connection (aborted), or its session expired (unauthenticated; log in
// and Connect again).

// LinkOption changes how Connect runs the link.
type LinkOption func(*linkOptions)

type linkOptions struct {
	heartbeat  time.Duration
	minBackoff time.Duration
	maxBackoff time.Duration
	dial       func(ctx context.Context, addr string) (net.Conn, error)
}

// WithHeartbeat pings every d instead of the interval the gateway asks for.
func WithHeartbeat(d time.Duration) LinkOption { return func(o *linkOptions) { o.heartbeat = d } }

// WithBackoff sets the reconnection backoff: the first wait is up to min,
// doubling to max (defaults 100ms and 10s).
func WithBackoff(min, max time.Duration) LinkOption {
	return func(o *linkOptions) { o.minBackoff, o.maxBackoff = min, max }
}

// Connect opens the long link to the gateway at the Addrs' Link, with the
// Client's session, and returns once it is authenticated (or ctx ends, or
// the gateway refuses the session). From then on the Client's calls (but
// Register and Login) go over the link until Close. The first signal on
// Notifies is already waiting: sync.
func (c *Client) Connect(ctx context.Context, opts ...LinkOption) error {
	o := linkOptions{minBackoff: 100 * time.Millisecond, maxBackoff: 10 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	if o.dial == nil {
		var d net.Dialer
		o.dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	if c.linkAddr == "" {
		return svrkit.NewError(svrkit.FailedPrecondition, "no gateway address: the backend has no long link (Addrs.Link)")
	}
	if c.Session().Token == "" {
		return errNotLoggedIn
	}
	l := &linkClient{c: c, addr: c.linkAddr, opts: o, ready: make(chan struct{}), quit: make(chan struct{}), done: make(chan struct{})}
	if !c.link.CompareAndSwap(nil, l) {
		return svrkit.NewError(svrkit.FailedPrecondition, "already connected")
	}
	first := make(chan error, 1)
	go l.run(first)
	select {
	case err := <-first:
		if err != nil {
			l.stop()
			c.link.CompareAndSwap(l, nil)
		}
		return err
	case <-ctx.Done():
		l.stop()
		c.link.CompareAndSwap(l, nil)
		return svrkit.AsError(ctx.Err())
	}
}

// Close closes the long link; calls go over HTTP again.
func (c *Client) Close() error {
	if l := c.link.Swap(nil); l != nil {
		l.stop()
	}
	return nil
}

// Notifies signals when the device should sync: a sync notify arrived or
// the link (re)connected. Signals coalesce (the channel holds one), since
// one sync catches up with everything. Watch is the loop most callers want.
func (c *Client) Notifies() <-chan struct{} { return c.notify }

// LinkStats counts the long link's events since Connect.
type LinkStats struct {
	Connects, Pushes int64
}

// LinkStats returns the link's counts (zero without a link).
func (c *Client) LinkStats() LinkStats {
	l := c.link.Load()
	if l == nil {
		return LinkStats{}
	}
	return LinkStats{Connects: l.connects.Load(), Pushes: l.pushes.Load()}
}

// Watch syncs at once and then every time Notifies signals, until ctx ends
// or the link stops for good, calling handle with every answer that has
// items. Over the long link it is push-driven: no polling. Transient sync
// errors (a Logicsvr restarting, an overloaded one shedding the sync) are
// retried after the next signal or a jittered backoff that doubles to 2s. It returns ctx's error, handle's, or the link's final one.
func (c *Client) Watch(ctx context.Context, handle func(*im.SyncReply) error) error {
	backoff := 50 * time.Millisecond
	for {
		wait := time.Duration(0)
		if err := c.syncRounds(ctx, handle); err != nil {
			switch {
			case ctx.Err() != nil:
				return svrkit.AsError(ctx.Err())
			case errors.Is(err, errHandle):
				return errors.Unwrap(err)
			case !Transient(err):
				return err // a bad key, an ended session, a replaced device
			}
			// Full jitter: the devices a push woke together, and an
			// overloaded sync service shed together, must not come back
			// together — a herd retrying in step is shed again in step.
			wait, backoff = rand.N(backoff)+time.Millisecond, min(2*backoff, 2*time.Second)
			c.syncRetries.Add(1)
		} else {
			backoff = 50 * time.Millisecond
		}
		var retry <-chan time.Time
		var t *time.Timer
		if wait > 0 {
			t = time.NewTimer(wait)
			retry = t.C
		}
	idle:
		select {
		case <-ctx.Done():
			return svrkit.AsError(ctx.Err())
		case <-c.notify:
			if wait == 0 && !c.mustSync.Swap(false) && c.covered() {
				goto idle
			}
		case <-retry:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// SyncRetries counts the syncs Watch retried after a transient error: a
// Logicsvr restarting, or an overloaded one refusing the device's
// priority (which a device keeps hearing while the level stays above it).
func (c *Client) SyncRetries() int64 { return c.syncRetries.Load() }

var errHandle = errors.New("imclient: handler")

// syncRounds syncs until nothing more waits.
func (c *Client) syncRounds(ctx context.Context, handle func(*im.SyncReply) error) error {
	for {
		r, err := c.Sync(ctx, 0)
		if err != nil {
			return err
		}
		if len(r.GetItems()) > 0 || r.GetGap() {
			if err := handle(r); err != nil {
				return fmt.Errorf("%w: %w", errHandle, err)
			}
		}
		if !r.GetContinueFlag() {
			return nil
		}
	}
}

// linkClient runs one long link: the current connection and the loop that
// replaces it when it breaks.
type linkClient struct {
	c    *Client
	addr string
	opts linkOptions

	mu      sync.Mutex
	conn    *linkConn     // nil while reconnecting
	ready   chan struct{} // closed when conn is set; replaced when it breaks
	nextID  uint32
	stopped bool

	final    atomic.Pointer[error] // set when the link stops for good
	connects atomic.Int64
	pushes   atomic.Int64
	quit     chan struct{} // closed by stop
	done     chan struct{} // closed when run returns
}

// linkConn is one connection.
type linkConn struct {
	nc       net.Conn
	lastRecv atomic.Int64 // unix nanos of the last frame read
	wmu      sync.Mutex
	calls    sync.Map // request id → chan wire response
	dead     chan struct{}
	err      error // why it died, set before dead is closed
	once     sync.Once
}

type linkResp struct {
	status svrkit.Code
	msg    string
	body   []byte
}

func (lc *linkConn) kill(err error) {
	lc.once.Do(func() {
		lc.err = err
		close(lc.dead)
		_ = lc.nc.Close()
	})
}

func (lc *linkConn) write(b []byte) error {
	lc.wmu.Lock()
	defer lc.wmu.Unlock()
	_ = lc.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := lc.nc.Write(b)
	return err
}

func (l *linkClient) stop() {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		<-l.done
		return
	}
	l.stopped = true
	conn := l.conn
	l.mu.Unlock()
	close(l.quit)
	if conn != nil {
		conn.kill(errors.New("closed"))
	}
	<-l.done
}

// run connects, serves the connection until it breaks, and reconnects
// with backoff until stopped or told not to. first gets the outcome of the
// first connection.
func (l *linkClient) run(first chan<- error) {
	defer close(l.done)
	backoff := l.opts.minBackoff
	for attempt := 0; ; attempt++ {
		lc, hb, err := l.dial()
		if attempt == 0 {
			first <- err
			if err != nil {
				return
			}
		}
		if err == nil {
			backoff = l.opts.minBackoff
			l.connects.Add(1)
			l.setConn(lc)
			l.c.signal() // (re)connected: sync what was missed
			err = l.serve(lc, hb)
			l.setConn(nil)
		}
		if e := svrkit.AsError(err); err != nil && link.IsFinal(e.Code()) {
			l.final.Store(&err)
			l.failReady()
			l.c.signal() // an idle Watch syncs, meets the final error and returns it
			return
		}
		select {
		case <-l.quit:
			return
		case <-time.After(rand.N(backoff) + time.Millisecond):
		}
		backoff = min(2*backoff, l.opts.maxBackoff)
	}
}

func (l *linkClient) setConn(lc *linkConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.conn = lc
	if lc != nil {
		close(l.ready)
	} else {
		l.ready = make(chan struct{})
	}
}

// failReady wakes callers waiting for a connection that will not come.
func (l *linkClient) failReady() {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.ready:
	default:
		close(l.ready)
	}
}

// dial opens and authenticates one connection; it returns the heartbeat
// interval to keep.
func (l *linkClient) dial() (*linkConn, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		select {
		case <-l.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	nc, err := l.opts.dial(ctx, l.addr)
	if err != nil {
		return nil, 0, svrkit.Errorf(svrkit.Unavailable, "dial gateway %s: %v", l.addr, err)
	}
	s := l.c.Session()
	md := wire.AppendMeta(nil, link.MetaDeviceID, s.DeviceID)
	auth, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindAuth, ReqID: 1}, md, "", []byte(s.Token), 0)
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(auth); err != nil {
		nc.Close()
		return nil, 0, svrkit.Errorf(svrkit.Unavailable, "gateway %s: %v", l.addr, err)
	}
	br := bufio.NewReader(nc)
	f, _, err := readLinkFrame(br)
	if err != nil {
		nc.Close()
		return nil, 0, svrkit.Errorf(svrkit.Unavailable, "gateway %s: no answer to auth: %v", l.addr, err)
	}
	if f.Kind == wire.KindGoAway || f.Status != 0 {
		nc.Close()
		return nil, 0, svrkit.NewError(svrkit.Code(f.Status), string(f.Msg))
	}
	var ar im.LinkAuthReply
	if f.Kind != wire.KindResponse || proto.Unmarshal(f.Body, &ar) != nil {
		nc.Close()
		return nil, 0, svrkit.Errorf(svrkit.Unavailable, "gateway %s answered the auth with a %v frame", l.addr, f.Kind)
	}
	_ = nc.SetDeadline(time.Time{})
	hb := l.opts.heartbeat
	if hb <= 0 {
		hb = time.Duration(ar.GetHeartbeatMs()) * time.Millisecond
	}
	if hb <= 0 {
		hb = 30 * time.Second
	}
	lc := &linkConn{nc: nc, dead: make(chan struct{})}
	go l.read(lc, br)
	return lc, hb, nil
}

// readLinkFrame reads one whole frame.
func readLinkFrame(br *bufio.Reader) (wire.Frame, []byte, error) {
	pre, err := br.Peek(wire.PrefixSize)
	if err != nil {
		return wire.Frame{}, nil, err
	}
	size, err := wire.FrameSize(pre, link.MaxServerFrame)
	if err != nil {
		return wire.Frame{}, nil, err
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(br, buf); err != nil {
		return wire.Frame{}, nil, err
	}
	f, err := wire.Parse(buf, link.MaxServerFrame)
	return f, buf, err
}

// read dispatches one connection's frames until it breaks.
func (l *linkClient) read(lc *linkConn, br *bufio.Reader) {
	for {
		f, _, err := readLinkFrame(br)
		if err != nil {
			lc.kill(svrkit.Errorf(svrkit.Unavailable, "gateway %s: connection lost: %v", l.addr, err))
			return
		}
		lc.lastRecv.Store(time.Now().UnixNano())
		switch f.Kind {
		case wire.KindResponse:
			if ch, ok := lc.calls.LoadAndDelete(f.ReqID); ok {
				ch.(chan linkResp) <- linkResp{status: svrkit.Code(f.Status), msg: string(f.Msg), body: f.Body}
			}
		case wire.KindPush:
			if f.CmdID == link.PushSyncNotify {
				l.pushes.Add(1)
				l.c.pushed(f.Body)
			}
		case wire.KindGoAway:
			lc.kill(svrkit.NewError(svrkit.Code(f.Status), string(f.Msg)))
			return
		}
	}
}

// serve keeps one connection alive with pings until it breaks, and fails
// the calls in flight on it.
func (l *linkClient) serve(lc *linkConn, hb time.Duration) error {
	lc.lastRecv.Store(time.Now().UnixNano())
	tick := time.NewTicker(hb)
	defer tick.Stop()
	var pingID uint32
	for {
		select {
		case <-l.quit:
			lc.kill(errors.New("closed"))
		case <-lc.dead:
		case <-tick.C:
			if time.Since(time.Unix(0, lc.lastRecv.Load())) > 2*hb+time.Second {
				lc.kill(svrkit.Errorf(svrkit.Unavailable, "gateway %s: silent for %v", l.addr, 2*hb))
				continue
			}
			pingID++
			b, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindPing, ReqID: pingID}, nil, "", nil, 0)
			if err := lc.write(b); err != nil {
				lc.kill(svrkit.Errorf(svrkit.Unavailable, "gateway %s: %v", l.addr, err))
			}
			continue
		}
		break
	}
	err := lc.err
	// Calls in flight may or may not have run: they fail Unavailable, and
	// the callers that may retry (sends, by their client_msg_id) do.
	lc.calls.Range(func(k, v any) bool {
		lc.calls.Delete(k)
		v.(chan linkResp) <- linkResp{status: svrkit.Unavailable, msg: "long link lost: " + err.Error()}
		return true
	})
	return err
}

// current waits for a live connection, within ctx.
func (l *linkClient) current(ctx context.Context) (*linkConn, uint32, error) {
	for {
		l.mu.Lock()
		lc, ready := l.conn, l.ready
		if lc != nil {
			l.nextID++
			if l.nextID == 0 {
				l.nextID = 1
			}
			id := l.nextID
			l.mu.Unlock()
			return lc, id, nil
		}
		stopped := l.stopped
		l.mu.Unlock()
		if f := l.final.Load(); f != nil {
			return nil, 0, *f
		}
		if stopped {
			return nil, 0, svrkit.NewError(svrkit.Canceled, "long link closed")
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, 0, svrkit.Errorf(svrkit.Unavailable, "long link to %s is reconnecting: %v", l.addr, ctx.Err())
		}
	}
}

// Invoke makes one call over the link: svrkit.Invoker, so the generated
// clients work on it.
func (l *linkClient) Invoke(ctx context.Context, m *svrkit.MethodDesc, req, resp proto.Message, _ ...svrkit.CallOption) error {
	rt := link.Default.ByName(m.FullName)
	if rt == nil {
		return svrkit.Errorf(svrkit.Unimplemented, "%s is not on the long link", m.FullName)
	}
	body, err := proto.Marshal(req)
	if err != nil {
		return svrkit.Errorf(svrkit.InvalidArgument, "encode %s: %v", m.FullName, err)
	}
	lc, id, err := l.current(ctx)
	if err != nil {
		return err
	}
	h := wire.Header{Kind: wire.KindRequest, ReqID: id, CmdID: rt.CmdID}
	if dl, ok := ctx.Deadline(); ok {
		h.Timeout = wire.TimeoutFromDuration(time.Until(dl))
	}
	frame, err := wire.AppendFrame(nil, &h, nil, "", body, link.MaxClientFrame)
	if err != nil {
		return svrkit.Errorf(svrkit.InvalidArgument, "%s request over the link's frame limit", m.FullName)
	}
	ch := make(chan linkResp, 1)
	lc.calls.Store(id, ch)
	if err := lc.write(frame); err != nil {
		lc.calls.Delete(id)
		lc.kill(svrkit.Errorf(svrkit.Unavailable, "gateway %s: %v", l.addr, err))
		return svrkit.Errorf(svrkit.Unavailable, "gateway %s: %v", l.addr, err)
	}
	select {
	case r := <-ch:
		if r.status != svrkit.OK {
			return svrkit.NewError(r.status, r.msg) // the IM's errors carry no details
		}
		if err := proto.Unmarshal(r.body, resp); err != nil {
			return svrkit.Errorf(svrkit.Internal, "decode %s reply: %v", m.FullName, err)
		}
		return nil
	case <-ctx.Done():
		if _, pending := lc.calls.LoadAndDelete(id); pending {
			b, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindCancel, ReqID: id}, nil, "", nil, 0)
			_ = lc.write(b)
		}
		return svrkit.AsError(ctx.Err())
	}
}
