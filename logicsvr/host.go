package logicsvr

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/cgi"
	"github.com/svrkit/svrkit/svrkit/monitor"
)

// Host runs one Logicsvr: its services over HTTP (the CGI front) and binary
// RPC, its admin endpoints, its clients of other services, and its
// lifecycle. A generated main builds one with Main; tests and embedders use
// New, RegisterService, Start and Shutdown.
//
// Host is a svrkit.Registrar: the generated RegisterFooServer functions
// register an implementation on both transports at once.
type Host struct {
	name    string
	cfg     Config
	log     *slog.Logger
	metrics *metrics

	rpc      *svrkit.Server // nil when RPC is off
	front    *cgi.Handler
	httpSrv  *http.Server // nil when HTTP is off
	adminSrv *http.Server

	resolver      svrkit.Resolver
	closeResolver func()
	clientOpts    []svrkit.ClientOption
	infoOnly      bool

	mu       sync.Mutex
	methods  map[*svrkit.MethodDesc]*methodState // complete before Start; read-only after
	services []*svrkit.ServiceDesc
	// interceptors wrap the handlers of the host's services (see Use);
	// complete before Start, read-only after.
	interceptors []svrkit.UnaryServerInterceptor
	clients      map[string]*svrkit.Client
	sharded      map[string]*svrkit.ShardedInvoker
	started      bool
	httpRoutes   int // services registered on the HTTP front

	httpAddr, rpcAddr, adminAddr net.Addr

	ready       atomic.Bool
	draining    atomic.Bool
	rpcDraining atomic.Bool  // new RPC calls are refused (see drainRPC)
	rpcInflight atomic.Int64 // RPC calls inside the interceptors
	newConns    sync.Map     // HTTP connections that have not sent a request yet: net.Conn -> time.Time
	failed      chan error   // a listener died
	stopOnce    sync.Once
	stopErr     error
	stopped     chan struct{}
	buildInfo   *BuildInfo
	startedAt   time.Time
	onShutdown  []func(context.Context) error

	extraHTTP   *http.ServeMux // routes beside the CGIs (HandleHTTP); nil if none
	stopSampler context.CancelFunc
}

// New returns a host for the Logicsvr cfg describes, with no services yet.
// It reads the routing table but listens on nothing until Start.
func New(cfg Config, opts ...Option) (*Host, error) {
	var o hostOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	cfg = cfg.withDefaults()
	if !o.infoOnly {
		// The process's monitor region, named for the Logicsvr, so that
		// its points reach the machine's agent (see package monitor).
		if err := monitor.Open(monitor.Options{Service: cfg.Name, Logger: o.logger}); err != nil {
			o.logger.Warn("logicsvr: monitor", "err", err)
		}
	}
	h := &Host{
		name:         cfg.Name,
		cfg:          cfg,
		log:          o.logger,
		metrics:      newMetrics(),
		infoOnly:     o.infoOnly,
		clientOpts:   o.clientOpts,
		interceptors: o.interceptors,
		methods:      map[*svrkit.MethodDesc]*methodState{},
		clients:      map[string]*svrkit.Client{},
		sharded:      map[string]*svrkit.ShardedInvoker{},
		failed:       make(chan error, 3),
		stopped:      make(chan struct{}),
	}
	var rpcAuth []svrkit.ServerOption
	if !o.infoOnly {
		var err error
		if h.resolver, h.closeResolver, err = newResolver(cfg); err != nil {
			return nil, err
		}
		if cfg.Auth != nil {
			key, err := svrkit.ReadKey(cfg.Auth.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("logicsvr %s: auth: %w", cfg.Name, err)
			}
			ring, err := svrkit.ReadKeyring(cfg.Auth.KeyringFile)
			if err != nil {
				return nil, fmt.Errorf("logicsvr %s: auth: %w", cfg.Name, err)
			}
			rpcAuth = append(rpcAuth, svrkit.WithRequireAuth(ring, cfg.Auth.Operators...))
			// First, so that WithClientOptions can still replace it.
			h.clientOpts = append([]svrkit.ClientOption{svrkit.WithIdentity(cfg.Auth.Identity, key)}, h.clientOpts...)
		}
	}

	var frontOpts []cgi.Option
	frontOpts = append(frontOpts,
		cgi.WithInterceptors(monitor.ServerInterceptor, h.observe("http"), h.guard, h.intercept),
		cgi.WithLogger(h.log),
		cgi.WithDefaultTimeout(time.Duration(cfg.DefaultTimeout)),
	)
	if cfg.MaxBodyBytes > 0 {
		frontOpts = append(frontOpts, cgi.WithMaxBodySize(cfg.MaxBodyBytes))
	}
	if !cfg.HTTPDescribe {
		frontOpts = append(frontOpts, cgi.WithoutDescribe())
	}
	h.front = cgi.NewHandler(frontOpts...)
	if cfg.RPC != Off {
		rpcOpts := []svrkit.ServerOption{
			svrkit.WithServerInterceptors(monitor.ServerInterceptor, h.observe("rpc"), h.guard, h.intercept),
			svrkit.WithLogger(h.log),
			svrkit.WithDefaultTimeout(time.Duration(cfg.DefaultTimeout)),
			svrkit.WithRefusalHook(monitor.Refused),
		}
		if cfg.MaxConcurrent > 0 {
			rpcOpts = append(rpcOpts, svrkit.WithMaxConcurrent(cfg.MaxConcurrent, min(cfg.MaxConcurrent, 8192)))
		}
		rpcOpts = append(rpcOpts, rpcAuth...)
		// NewServer serves the describe method by itself.
		h.rpc = svrkit.NewServer(rpcOpts...)
		h.metrics.reg.MustRegister(newAdmissionCollector(h.rpc))
	}
	// The describe method is served by both transports; give it metrics.
	h.methods[describeMethod] = h.newMethodState(describeMethod, 0)
	return h, nil
}

// Name returns the Logicsvr's name.
func (h *Host) Name() string { return h.name }

// Config returns the host's configuration, defaults applied.
func (h *Host) Config() Config { return h.cfg }

// AppConfig decodes the config's "app" object into v, refusing unknown
// fields as LoadConfig does. Without an "app" object it leaves v untouched,
// so a handler sets its defaults in v first.
func (h *Host) AppConfig(v any) error {
	if len(h.cfg.App) == 0 {
		return nil
	}
	if err := decodeStrict(h.cfg.App, v); err != nil {
		return fmt.Errorf("logicsvr: config \"app\": %w", err)
	}
	return nil
}

// InfoOnly reports whether the host was built only to report its BuildInfo
// (the binary runs with -buildinfo): it will never serve, so a handler
// constructor skips opening databases and starting workers.
func (h *Host) InfoOnly() bool { return h.infoOnly }

// OnShutdown adds f to what Shutdown runs after every call has drained and
// before it returns, in the reverse order of registration: the place to
// stop workers and close a database the handlers use, once nothing can use
// it any more. f gets Shutdown's context; its error is logged and returned
// by Shutdown.
func (h *Host) OnShutdown(f func(context.Context) error) {
	h.mu.Lock()
	h.onShutdown = append(h.onShutdown, f)
	h.mu.Unlock()
}

// Logger returns the host's logger. Inside a call, prefer the package's
// Logger(ctx), which adds the request id.
func (h *Host) Logger() *slog.Logger { return h.log }

// RegisterService serves sd's methods with impl over HTTP and RPC. It
// applies the config's per-method overrides of the IDL's timeouts and
// concurrency limits. Like svrkit.Server's, it panics on programming
// errors (a duplicate cmdid or route, an impl of the wrong type, a call after
// Start).
func (h *Host) RegisterService(sd *svrkit.ServiceDesc, impl any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		panic("logicsvr: RegisterService after Start")
	}
	// A copy, so that config overrides never leak into the generated
	// descriptor the process's clients use.
	own := *sd
	own.Methods = slices.Clone(sd.Methods)
	for i := range own.Methods {
		m := &own.Methods[i]
		ov := h.cfg.Methods[m.FullName]
		if ov.Timeout > 0 {
			m.Timeout = time.Duration(ov.Timeout)
		}
		limit := idlMaxConcurrent(sd.Name, m)
		if ov.MaxConcurrent > 0 {
			limit = ov.MaxConcurrent
		}
		h.methods[m] = h.newMethodState(m, limit)
	}
	if h.cfg.HTTPInternal || hasCGI(sd) {
		h.front.RegisterService(&own, impl)
		h.httpRoutes++
	}
	if h.rpc != nil {
		h.rpc.RegisterService(&own, impl)
	}
	h.services = append(h.services, &own)
}

// hasCGI reports whether a method of sd has a CGI path: a service without
// one is internal, called by other services only.
func hasCGI(sd *svrkit.ServiceDesc) bool {
	return slices.ContainsFunc(sd.Methods, func(m svrkit.MethodDesc) bool { return m.CGIPath != "" })
}

// Use adds server interceptors around every call of the host's services, on
// both transports, the first outermost. They run inside the host's own (so
// a call they see has its request id, is counted, within its method's
// concurrency limit, and a panic in them is an Internal error like a
// handler's) and around the handler, after WithInterceptors' ones. The
// framework's describe method does not pass through them.
//
// A Logicsvr's handler constructor, which gets the host from its generated
// main, is the place to call it: a check every method of the service
// needs, such as authentication, is declared there once instead of in
// each method. Like RegisterService, it panics after Start.
func (h *Host) Use(ics ...svrkit.UnaryServerInterceptor) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		panic("logicsvr: Use after Start")
	}
	h.interceptors = append(h.interceptors, ics...)
}

// Services returns the services registered so far (without the describe
// service).
func (h *Host) Services() []*svrkit.ServiceDesc {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.services)
}
