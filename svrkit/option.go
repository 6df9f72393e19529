package svrkit

import (
	"crypto/ed25519"
	"log/slog"
	"runtime"
	"time"

	"github.com/svrkit/svrkit/svrkit/wire"
)

// ServerOption configures a Server.
type ServerOption interface{ applyServer(*serverOptions) }

// ClientOption configures a Client.
type ClientOption interface{ applyClient(*clientOptions) }

// Option is a knob that means the same on both sides of a connection (the
// frame size limit, the bound on unsent bytes), so it is named once and
// accepted by NewServer and NewClient alike, as connect-go does.
type Option interface {
	ServerOption
	ClientOption
}

type serverOptionFunc func(*serverOptions)

func (f serverOptionFunc) applyServer(o *serverOptions) { f(o) }

type clientOptionFunc func(*clientOptions)

func (f clientOptionFunc) applyClient(o *clientOptions) { f(o) }

type bothOption struct {
	server serverOptionFunc
	client clientOptionFunc
}

func (b bothOption) applyServer(o *serverOptions) { b.server(o) }
func (b bothOption) applyClient(o *clientOptions) { b.client(o) }

type serverOptions struct {
	maxConcurrent        int
	maxConcurrentPerConn int
	maxFrameSize         int
	maxPendingBytes      int
	idleTimeout          time.Duration
	frameTimeout         time.Duration
	defaultTimeout       time.Duration
	eventLoops           int
	interceptors         []UnaryServerInterceptor
	logger               *slog.Logger
	noDescribe           bool
	auth                 *serverAuth
	overloadThreshold    time.Duration
	refusalHook          func(*MethodDesc, Code)
}

func defaultServerOptions() serverOptions {
	return serverOptions{
		maxConcurrent:        65536,
		maxConcurrentPerConn: 8192,
		maxFrameSize:         wire.DefaultMaxFrameSize,
		maxPendingBytes:      DefaultMaxPendingBytes,
		idleTimeout:          5 * time.Minute,
		frameTimeout:         30 * time.Second,
		eventLoops:           max(1, runtime.NumCPU()/2),
		logger:               slog.Default(),
		overloadThreshold:    DefaultOverloadThreshold,
	}
}

type clientOptions struct {
	connsPerEndpoint int
	maxFrameSize     int
	maxPendingBytes  int
	dialTimeout      time.Duration
	healthInterval   time.Duration
	retries          int
	backoffMin       time.Duration
	backoffMax       time.Duration
	interceptors     []UnaryClientInterceptor
	resolver         Resolver
	identity         string
	key              ed25519.PrivateKey
}

func defaultClientOptions() clientOptions {
	return clientOptions{
		connsPerEndpoint: DefaultConnsPerEndpoint,
		maxFrameSize:     wire.DefaultMaxFrameSize,
		maxPendingBytes:  DefaultMaxPendingBytes,
		dialTimeout:      3 * time.Second,
		healthInterval:   2 * time.Second,
		retries:          2,
		backoffMin:       50 * time.Millisecond,
		backoffMax:       5 * time.Second,
	}
}

// Options for both sides.

// WithMaxFrameSize sets the largest frame accepted or sent, prefix included
// (default wire.DefaultMaxFrameSize). A server closes a connection that
// sends a larger frame and replaces a larger response by an Internal error;
// a client refuses a larger request with ResourceExhausted before sending
// it and closes a connection that answers with a larger frame.
func WithMaxFrameSize(n int) Option {
	return bothOption{
		server: func(o *serverOptions) { o.maxFrameSize = n },
		client: func(o *clientOptions) { o.maxFrameSize = n },
	}
}

// DefaultMaxPendingBytes is the default bound on the bytes one connection
// holds for a peer that is not reading them (see WithMaxPendingBytes).
const DefaultMaxPendingBytes = 32 << 20

// WithMaxPendingBytes bounds the bytes waiting to be written to one
// connection's peer (default DefaultMaxPendingBytes). A peer that stops
// reading must not grow memory without end: past the bound a server closes
// the connection, and a client refuses further requests on it with
// ResourceExhausted at once (until it drains, or the health check gives up
// on it).
func WithMaxPendingBytes(n int) Option {
	return bothOption{
		server: func(o *serverOptions) { o.maxPendingBytes = n },
		client: func(o *clientOptions) { o.maxPendingBytes = n },
	}
}

// Server options.

// WithMaxConcurrent bounds the calls running at once in the whole server
// (default 65536) and on one connection (default 8192). Requests over either
// bound are answered ResourceExhausted.
func WithMaxConcurrent(total, perConn int) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.maxConcurrent, o.maxConcurrentPerConn = total, perConn })
}

// WithIdleTimeout closes connections with no traffic and no call running for
// d (default 5 minutes; 0 disables).
func WithIdleTimeout(d time.Duration) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.idleTimeout = d })
}

// WithFrameTimeout bounds how long a frame may take to arrive once its
// first byte has (default 30s; 0 disables): a peer that trickles a frame
// a byte at a time is closed instead of holding its connection forever.
func WithFrameTimeout(d time.Duration) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.frameTimeout = d })
}

// WithDefaultTimeout bounds calls whose caller sent no deadline and whose
// method declares no timeout (default: unbounded).
func WithDefaultTimeout(d time.Duration) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.defaultTimeout = d })
}

// WithEventLoops sets the number of gnet event loops (default: half the
// CPUs, at least one).
//
// The default is not one per CPU, because an event loop waits for I/O in
// a blocking epoll_wait that keeps its Go scheduler P. With as many loops
// as Ps, every P can be parked in a loop's syscall: the handlers the loops
// wake then wait for the runtime's sysmon to take a P back, which it does
// after 20µs to 10ms. Leaving half the Ps to workers and clients keeps
// that headroom (tools/rpcbench measures the difference); a server whose
// handlers are all NonBlocking may want one loop per CPU.
func WithEventLoops(n int) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.eventLoops = max(n, 1) })
}

// WithServerInterceptors adds interceptors run around every call, the first
// outermost.
func WithServerInterceptors(ics ...UnaryServerInterceptor) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.interceptors = append(o.interceptors, ics...) })
}

// WithLogger sets the logger for connection errors and handler panics
// (default slog.Default()).
func WithLogger(l *slog.Logger) ServerOption {
	return serverOptionFunc(func(o *serverOptions) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithOverloadControl sets the average queuing time over which the server
// counts as overloaded and sheds its lowest-priority requests (default
// DefaultOverloadThreshold); 0 turns overload control off, leaving only
// the concurrency limits of WithMaxConcurrent. See Server.
func WithOverloadControl(threshold time.Duration) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.overloadThreshold = threshold })
}

// WithRefusalHook calls f for every request the server answers without
// running it, so without passing its interceptors: an unknown cmdid
// (method nil), an unauthenticated or unauthorised caller, overload, a
// concurrency limit, an undecodable request, a server shutting down. It
// is how monitoring counts what interceptors cannot see. f runs on the
// event loop: it must be quick and must not block.
func WithRefusalHook(f func(method *MethodDesc, code Code)) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.refusalHook = f })
}

// WithoutDescribe leaves out the describe method (cmdid DescribeCmdID) that
// every server otherwise answers with the descriptors of its services, for
// `svrkit call` and other generic callers.
func WithoutDescribe() ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.noDescribe = true })
}

// Client options.

// DefaultConnsPerEndpoint is how many connections a client keeps to each
// endpoint unless WithConnsPerEndpoint says otherwise. Two let one
// connection's writer and reader work while the other's are blocked, and
// spread a busy client over two server event loops when there are two.
const DefaultConnsPerEndpoint = 2

// WithConnsPerEndpoint sets how many connections the client keeps to each
// endpoint (default DefaultConnsPerEndpoint): more spread the load over
// more server event loops.
func WithConnsPerEndpoint(n int) ClientOption {
	return clientOptionFunc(func(o *clientOptions) { o.connsPerEndpoint = max(n, 1) })
}

// WithDialTimeout bounds connection attempts (default 3s). A caller whose
// deadline is earlier stops waiting at its deadline; the dial goes on for
// the callers after it.
func WithDialTimeout(d time.Duration) ClientOption {
	return clientOptionFunc(func(o *clientOptions) { o.dialTimeout = d })
}

// WithHealthInterval sets how often idle connections are pinged and down
// endpoints are redialed (default 2s). A connection that hears nothing for
// three intervals, or cannot write for as long, is closed and its endpoint
// marked down.
func WithHealthInterval(d time.Duration) ClientOption {
	return clientOptionFunc(func(o *clientOptions) { o.healthInterval = d })
}

// WithRetries sets how many times a call may be retried on another endpoint
// (default 2); see Client for which calls are retried.
func WithRetries(n int) ClientOption {
	return clientOptionFunc(func(o *clientOptions) { o.retries = n })
}

// WithClientInterceptors adds interceptors run around every call, the first
// outermost.
func WithClientInterceptors(ics ...UnaryClientInterceptor) ClientOption {
	return clientOptionFunc(func(o *clientOptions) { o.interceptors = append(o.interceptors, ics...) })
}

// WithResolver makes the client's target a service name looked up (and
// watched for changes) in r, instead of a list of addresses.
func WithResolver(r Resolver) ClientOption {
	return clientOptionFunc(func(o *clientOptions) { o.resolver = r })
}
