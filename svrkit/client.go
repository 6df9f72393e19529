package svrkit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/svrkit/internal/beat"
	"github.com/svrkit/svrkit/svrkit/wire"
)

// Client calls the methods of one service. It keeps a small pool of
// multiplexed TCP connections to each of the service's endpoints: every call
// gets a request id, many calls share a connection, and responses come back
// in whatever order the server finishes them. A Client is safe for use by
// many goroutines at once.
//
// Transport. The client runs on Go's netpoller (one reader goroutine per
// connection; writes done by the callers themselves), not on gnet's client
// event loops. A client's work per call is one small write and one read
// wake-up; the netpoller already multiplexes those, and a blocking reader
// goroutine lets the response be decoded straight into the caller's message
// without a hand-off. gnet pays off on the server, where one loop serves
// thousands of connections; on the client its extra event loop is one more
// thread parked in epoll_wait holding a scheduler P, the stall
// WithEventLoops describes (tools/rpcbench's ceiling-gnetclient system
// measures the two transports side by side).
//
// Write coalescing. A caller appends its frame to the connection's pending
// buffer. If nobody is writing, that caller becomes the writer and writes
// everything pending; callers arriving meanwhile only append. At low load
// each call is one write with no goroutine hand-off; under load one write
// carries many frames. The writer yields before writing so that callers
// the reader has just woken append first; on a busy connection it yields
// again while they keep coming (clientConn.gatherLocked says why and how
// far).
//
// A deadline is a promise. The caller's write never blocks: it is one
// non-blocking write(2), and whatever the socket does not take (the peer is
// slow, stopped, or gone without a FIN) is handed to a background writer
// goroutine, so the caller is back in its wait at once and returns by its
// deadline whatever the peer does. The bytes a connection holds for its
// peer are bounded (WithMaxPendingBytes): past the bound new calls on it
// are refused with ResourceExhausted at once. A connection whose writer
// makes no progress for three health intervals, or that hears nothing for
// as long, is failed with Unavailable. Dials run in their own goroutine too;
// callers wait for them only until their deadline.
//
// Deadlines and cancellation come from the caller's context: the remaining
// time travels in the frame (so the server stops work the caller no longer
// waits for), and a call abandoned early sends a cancel frame and frees its
// slot at once. Failures: a connection that breaks fails its calls with
// Unavailable; an endpoint that cannot be dialed or stops answering pings is
// marked down and skipped, with exponential backoff and jitter, until a dial
// succeeds again. Calls that never reached the wire are retried on another
// endpoint; calls that may have reached it are retried only for idempotent
// methods.
type Client struct {
	target  string
	opts    clientOptions
	invoker UnaryInvoker

	mu  sync.Mutex
	eps atomic.Pointer[[]*endpoint]
	rr  padded32 // round robin over eps
	// preferred is the endpoint the last redirect named (see redirect.go):
	// calls go there first while it is usable.
	preferred atomic.Pointer[endpoint]
	stopWatch func()
	closed    atomic.Bool
	quit      chan struct{}
	loopDone  chan struct{}
	// life ends when the client closes; dials run under it.
	life   context.Context
	finish context.CancelFunc

	// bg counts the goroutines a call may leave behind (dials, writers
	// draining a slow peer); Close waits for them. bgClosed, under bgMu,
	// stops new ones once Close has begun.
	bgMu     sync.Mutex
	bgClosed bool
	bg       sync.WaitGroup
}

// NewClient returns a client for target: "host:port", a comma-separated list
// of them, or — with WithResolver — a service name. It does not dial;
// connections open on first use.
func NewClient(target string, opts ...ClientOption) (*Client, error) {
	o := defaultClientOptions()
	for _, opt := range opts {
		opt.applyClient(&o)
	}
	c := &Client{target: target, opts: o, quit: make(chan struct{}), loopDone: make(chan struct{})}
	c.life, c.finish = context.WithCancel(context.Background())
	c.invoker = chainClient(UnaryInvoker(c.invoke), o.interceptors)
	if o.resolver != nil {
		addrs, err := o.resolver.Resolve(target)
		if err != nil {
			return nil, Errorf(Unavailable, "resolve %s: %v", target, err)
		}
		c.SetEndpoints(addrs)
		c.stopWatch = o.resolver.Watch(target, c.SetEndpoints)
	} else {
		var addrs []string
		for _, a := range strings.Split(target, ",") {
			if a = strings.TrimSpace(a); a != "" {
				addrs = append(addrs, a)
			}
		}
		if len(addrs) == 0 {
			return nil, NewError(InvalidArgument, "svrkit: empty client target")
		}
		c.SetEndpoints(addrs)
	}
	go c.healthLoop()
	return c, nil
}

// Invoke calls method with req and decodes the answer into resp. Every
// failure is an *Error with a code.
func (c *Client) Invoke(ctx context.Context, method *MethodDesc, req, resp proto.Message, opts ...CallOption) error {
	if len(opts) == 0 {
		return c.invoker(ctx, method, req, resp)
	}
	var co callOptions
	for _, o := range opts {
		o(&co)
	}
	return c.invoker(context.WithValue(ctx, callOptionsKey{}, &co), method, req, resp)
}

type callOptionsKey struct{}

// Close closes every connection; calls in flight fail with Unavailable.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	if c.stopWatch != nil {
		c.stopWatch()
	}
	c.bgMu.Lock()
	c.bgClosed = true
	c.bgMu.Unlock()
	c.finish()
	close(c.quit)
	<-c.loopDone
	c.mu.Lock()
	eps := c.eps.Swap(&[]*endpoint{})
	c.mu.Unlock()
	for _, ep := range *eps {
		ep.retire(errClientClosed)
	}
	c.bg.Wait()
	return nil
}

var errClientClosed = NewError(Unavailable, "client is closed")

// SetEndpoints replaces the endpoints calls are spread over. Connections to
// endpoints that remain are kept; endpoints that left finish the calls they
// carry, then close. Resolvers call it; so can users with their own
// discovery.
func (c *Client) SetEndpoints(addrs []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return
	}
	old := map[string]*endpoint{}
	if p := c.eps.Load(); p != nil {
		for _, ep := range *p {
			old[ep.addr] = ep
		}
	}
	next := make([]*endpoint, 0, len(addrs))
	for _, a := range addrs {
		if ep, ok := old[a]; ok {
			next = append(next, ep)
			delete(old, a)
			continue
		}
		next = append(next, newEndpoint(c, a))
	}
	c.eps.Store(&next)
	for _, ep := range old {
		ep.retire(nil)
	}
}

func (c *Client) invoke(ctx context.Context, m *MethodDesc, req, resp proto.Message) error {
	var co *callOptions
	if v, ok := ctx.Value(callOptionsKey{}).(*callOptions); ok {
		co = v
	}
	key, hasKey := "", false
	if co != nil && co.hasRoutingKey {
		key, hasKey = co.routingKey, true
	} else if m.RoutingKey != nil {
		key, hasKey = m.RoutingKey(req), true
	}
	if err := ctx.Err(); err != nil {
		return ctxError(err)
	}

	bp := bodyPool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 64<<10 {
			bodyPool.Put(bp)
		}
	}()
	body, err := marshalOpts.MarshalAppend((*bp)[:0], req)
	*bp = body[:0]
	if err != nil {
		return Errorf(Internal, "cannot encode %s request: %v", m.FullName, err)
	}
	var md []byte
	if out := OutgoingMetadata(ctx); len(out) > 0 {
		for k, v := range out {
			md = wire.AppendMeta(md, k, v)
		}
	}
	h := wire.Header{Kind: wire.KindRequest, CmdID: m.CmdID}
	var down *downstreamLevel
	var worker *callCtx
	h.Priority, h.Flags, down, worker = requestPriority(ctx, m, co, key, hasKey)
	if worker != nil {
		// A handler waiting for this answer leaves its CPU to others: the
		// pool does not count its worker as one more competing for a CPU.
		worker.callOut()
		defer worker.callBack()
	}
	deadline, hasDeadline := ctx.Deadline()
	if m.Timeout > 0 {
		if d := time.Now().Add(m.Timeout); !hasDeadline || d.Before(deadline) {
			deadline, hasDeadline = d, true
		}
	}

	retries := c.opts.retries
	if co != nil && co.noRetry {
		retries = 0
	}
	var tried *endpoint
	var lastErr error
	var lastCode Code
	redirects := 0
	for attempt := 0; ; attempt++ {
		ep, perr := c.pick(key, hasKey, tried)
		if perr != nil {
			return perr
		}
		if hasDeadline {
			h.Timeout = wire.TimeoutFromDuration(time.Until(deadline))
		}
		if ep == tried && lastCode == Overloaded {
			return lastErr // never again to the endpoint that refused it
		}
		sent, err := ep.call(ctx, &h, md, body, resp, deadline, hasDeadline)
		if down != nil {
			ep.reportLevel(down, m.CmdID)
		}
		if err == nil {
			return nil
		}
		lastErr, lastCode = err, CodeOf(err)
		if addr, ok := RedirectOf(err); ok {
			// Refused unrun: any method may follow it.
			if to := c.redirectTarget(addr); to != nil && to != ep && redirects < maxRedirects &&
				ctx.Err() == nil && (!hasDeadline || time.Now().Before(deadline)) {
				redirects++
				attempt--
				c.preferred.Store(to)
				tried = nil
				if redirects > 1 && !redirectPause(ctx, redirects) {
					return err
				}
				continue
			}
			return err
		}
		if lastCode == Unavailable {
			c.preferred.CompareAndSwap(ep, nil) // it failed: back to routing
		}
		switch {
		case attempt >= retries || ctx.Err() != nil || (hasDeadline && !time.Now().Before(deadline)):
			return err
		case lastCode == Overloaded:
			// Refused unrun, so any call may go elsewhere; a call routed by
			// key must stay with the endpoint that owns its key.
			if hasKey {
				return err
			}
		case lastCode != Unavailable || (sent && !m.Idempotent):
			return err
		}
		tried = ep
	}
}

// Route returns the address of the endpoint a call routed by key would
// be sent to now (the choice a call makes on its first attempt), or ""
// when the client has no endpoints. A caller that puts the work of many
// keys into one call (a batch write for many users) groups the keys by
// Route and sends each group routed by one of its keys, so that every key
// reaches the instance its own calls reach. The answer can change when
// the endpoints change or one is marked down, as a single call's choice
// can. Safe for concurrent use.
func (c *Client) Route(key string) string {
	ep, err := c.pick(key, true, nil)
	if err != nil {
		return ""
	}
	return ep.addr
}

// KeyRouter is implemented by invokers that route calls by key, as
// *Client does: see Client.Route.
type KeyRouter interface {
	Route(key string) string
}

// pick chooses an endpoint: by rendezvous hash of key when one is given (so
// a user's calls reach the same storage node, and adding or removing a node
// moves only its share of keys), round robin otherwise. Endpoints marked down
// are skipped while any other is up; avoid is skipped too when possible.
func (c *Client) pick(key string, hasKey bool, avoid *endpoint) (*endpoint, error) {
	p := c.eps.Load()
	if p == nil || len(*p) == 0 {
		if c.closed.Load() {
			return nil, errClientClosed
		}
		return nil, Errorf(Unavailable, "no endpoints for %s", c.target)
	}
	eps := *p
	if pe := c.preferred.Load(); pe != nil && pe != avoid && pe.downUntil.Load() <= time.Now().UnixNano() && slices.Contains(eps, pe) {
		return pe, nil
	}
	var now int64 // read the clock only if some endpoint is marked down
	usable := func(ep *endpoint) bool {
		if ep == avoid {
			return false
		}
		until := ep.downUntil.Load()
		if until == 0 {
			return true
		}
		if now == 0 {
			now = time.Now().UnixNano()
		}
		return until <= now
	}
	if hasKey {
		kh := hashString(key)
		var best, bestAny *endpoint
		var bestScore, bestAnyScore uint64
		for _, ep := range eps {
			s := mix64(kh ^ ep.hash)
			if bestAny == nil || s > bestAnyScore {
				bestAny, bestAnyScore = ep, s
			}
			if usable(ep) && (best == nil || s > bestScore) {
				best, bestScore = ep, s
			}
		}
		if best != nil {
			return best, nil
		}
		return bestAny, nil
	}
	n := uint32(len(eps))
	if n == 1 {
		return eps[0], nil // usable or not, the only one
	}
	start := c.rr.Add(1)
	for i := uint32(0); i < n; i++ {
		if ep := eps[(start+i)%n]; usable(ep) {
			return ep, nil
		}
	}
	return eps[start%n], nil
}

func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix64 is splitmix64's finalizer: it spreads the combined key and
// endpoint hash so rendezvous scores are independent per endpoint.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func ctxError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return NewError(DeadlineExceeded, "deadline exceeded")
	}
	return NewError(Canceled, "call canceled")
}

func (c *Client) healthLoop() {
	defer close(c.loopDone)
	t := time.NewTimer(beat.Until(c.opts.healthInterval)) // on the process's beat
	defer t.Stop()
	for {
		select {
		case <-c.quit:
			return
		case <-t.C:
		}
		t.Reset(beat.Until(c.opts.healthInterval))
		p := c.eps.Load()
		if p == nil {
			continue
		}
		for _, ep := range *p {
			ep.checkHealth()
		}
	}
}

// background runs f in a goroutine that Close waits for. It reports false,
// without running f, once the client is closing.
func (c *Client) background(f func()) bool {
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	if c.bgClosed {
		return false
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		f()
	}()
	return true
}

func (c *Client) String() string { return fmt.Sprintf("svrkit.Client(%s)", c.target) }
