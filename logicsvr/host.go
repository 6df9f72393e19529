package logicsvr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/cgi"
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
	infoOnly      bool

	mu       sync.Mutex
	methods  map[*svrkit.MethodDesc]*methodState // complete before Start; read-only after
	services []*svrkit.ServiceDesc
	clients  map[string]*svrkit.Client
	started  bool

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
}

// Option configures a Host.
type Option func(*hostOptions)

type hostOptions struct {
	logger   *slog.Logger
	infoOnly bool
}

// WithLogger sets the host's logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *hostOptions) { o.logger = l } }

// infoOnly builds a host that is only asked for its BuildInfo: its clients
// resolve nothing and fail every call, so that handlers can be constructed
// before any routing table exists (`svrkit up` asks each binary for its
// services before it writes the routing tables).
func infoOnly() Option { return func(o *hostOptions) { o.infoOnly = true } }

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
	h := &Host{
		name:     cfg.Name,
		cfg:      cfg,
		log:      o.logger,
		metrics:  newMetrics(),
		infoOnly: o.infoOnly,
		methods:  map[*svrkit.MethodDesc]*methodState{},
		clients:  map[string]*svrkit.Client{},
		failed:   make(chan error, 3),
		stopped:  make(chan struct{}),
	}
	switch {
	case o.infoOnly:
	case cfg.RoutesFile != "":
		rt, err := svrkit.LoadRouteTable(cfg.RoutesFile, time.Second)
		if err != nil {
			return nil, fmt.Errorf("logicsvr: %w", err)
		}
		h.resolver, h.closeResolver = rt, func() { _ = rt.Close() }
	default:
		cr := newConfigRoutes(cfg.path, cfg.raw, cfg.Routes, h.log, time.Second)
		h.resolver, h.closeResolver = cr, cr.close
	}

	var frontOpts []cgi.Option
	frontOpts = append(frontOpts,
		cgi.WithInterceptors(h.observe("http"), h.guard),
		cgi.WithLogger(h.log),
		cgi.WithDefaultTimeout(time.Duration(cfg.DefaultTimeout)),
	)
	if cfg.MaxBodyBytes > 0 {
		frontOpts = append(frontOpts, cgi.WithMaxBodySize(cfg.MaxBodyBytes))
	}
	h.front = cgi.NewHandler(frontOpts...)
	if cfg.RPC != Off {
		rpcOpts := []svrkit.ServerOption{
			svrkit.WithServerInterceptors(h.observe("rpc"), h.guard),
			svrkit.WithLogger(h.log),
			svrkit.WithDefaultTimeout(time.Duration(cfg.DefaultTimeout)),
		}
		if cfg.MaxConcurrent > 0 {
			rpcOpts = append(rpcOpts, svrkit.WithMaxConcurrent(cfg.MaxConcurrent, min(cfg.MaxConcurrent, 8192)))
		}
		// NewServer serves the describe method by itself.
		h.rpc = svrkit.NewServer(rpcOpts...)
	}
	// The describe method is served by both transports; give it metrics.
	d := &svrkit.DescribeServiceDesc.Methods[0]
	h.methods[d] = h.newMethodState(d, 0)
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
	h.front.RegisterService(&own, impl)
	if h.rpc != nil {
		h.rpc.RegisterService(&own, impl)
	}
	h.services = append(h.services, &own)
}

// Services returns the services registered so far (without the describe
// service).
func (h *Host) Services() []*svrkit.ServiceDesc {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.services)
}

// Client returns a client of the named service (a protobuf full name, e.g.
// "im.AccountStore"), with endpoints from the config's routing table and
// kept up to date when it changes. The client sends the request id of the
// call being handled with every call (PropagateRequestID). Clients are made
// once per service and closed by Shutdown; it is an error to ask for a
// service the routing table does not list.
func (h *Host) Client(service string) (svrkit.Invoker, error) {
	if h.infoOnly {
		return noRoutes(service), nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.clients[service]; c != nil {
		return c, nil
	}
	c, err := svrkit.NewClient(service, svrkit.WithResolver(h.resolver),
		svrkit.WithClientInterceptors(PropagateRequestID))
	if err != nil {
		return nil, fmt.Errorf("logicsvr %s: client of %s: %w", h.name, service, err)
	}
	h.clients[service] = c
	return c, nil
}

// noRoutes is the invoker of an info-only host.
type noRoutes string

func (n noRoutes) Invoke(context.Context, *svrkit.MethodDesc, proto.Message, proto.Message, ...svrkit.CallOption) error {
	return svrkit.Errorf(svrkit.Unavailable, "no routes to %s: the host only describes itself", string(n))
}

// Start listens on the configured addresses and serves in the background.
// It returns once every listener accepts; the host is then ready.
func (h *Host) Start() error {
	h.mu.Lock()
	if h.started {
		h.mu.Unlock()
		return errors.New("logicsvr: already started")
	}
	h.started = true
	h.mu.Unlock()
	h.buildInfo = h.BuildInfo()
	h.startedAt = time.Now()
	h.metrics.setBuildInfo(h.buildInfo)

	var closers []func()
	fail := func(err error) error {
		for _, c := range closers {
			c()
		}
		return fmt.Errorf("logicsvr %s: %w", h.name, err)
	}
	adminLn, err := net.Listen("tcp", h.cfg.Admin)
	if err != nil {
		return fail(fmt.Errorf("admin: %w", err))
	}
	closers = append(closers, func() { adminLn.Close() })
	h.adminAddr = adminLn.Addr()
	var httpLn net.Listener
	if h.cfg.HTTP != Off {
		if httpLn, err = net.Listen("tcp", h.cfg.HTTP); err != nil {
			return fail(fmt.Errorf("http: %w", err))
		}
		closers = append(closers, func() { httpLn.Close() })
		h.httpAddr = httpLn.Addr()
	}
	if h.rpc != nil {
		if err := h.rpc.Start(h.cfg.RPC); err != nil {
			return fail(fmt.Errorf("rpc: %w", err))
		}
		h.rpcAddr = h.rpc.Addr()
	}

	h.adminSrv = &http.Server{Handler: h.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
	go h.serve("admin", h.adminSrv, adminLn)
	if httpLn != nil {
		h.httpSrv = &http.Server{
			Handler:           h.httpHandler(),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
			ConnState: func(c net.Conn, st http.ConnState) {
				if st == http.StateNew {
					h.newConns.Store(c, time.Now())
				} else {
					h.newConns.Delete(c)
				}
			},
		}
		go h.serve("http", h.httpSrv, httpLn)
	}
	h.ready.Store(true)
	h.metrics.ready.Set(1)
	h.log.Info("logicsvr ready", "logicsvr", h.name, "http", addrString(h.httpAddr),
		"rpc", addrString(h.rpcAddr), "admin", addrString(h.adminAddr), "services", len(h.services))
	return nil
}

func (h *Host) serve(what string, s *http.Server, ln net.Listener) {
	if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		h.failed <- fmt.Errorf("%s listener: %w", what, err)
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return Off
	}
	return a.String()
}

// HTTPAddr, RPCAddr and AdminAddr return the bound addresses after Start
// (nil for a disabled transport).
func (h *Host) HTTPAddr() net.Addr  { return h.httpAddr }
func (h *Host) RPCAddr() net.Addr   { return h.rpcAddr }
func (h *Host) AdminAddr() net.Addr { return h.adminAddr }

// Ready reports whether the host is serving and not draining; the admin
// endpoint /readyz answers it.
func (h *Host) Ready() bool { return h.ready.Load() }

// Failed delivers an error if a listener stops on its own.
func (h *Host) Failed() <-chan error { return h.failed }

// Shutdown stops the host gracefully:
//
//  1. readiness turns false, and every HTTP response from now on carries
//     Connection: close, so keep-alive clients reconnect (elsewhere, once
//     the front has noticed);
//  2. the host goes on serving for the configured drain delay;
//  3. the HTTP listener closes and idle connections with it (and, after
//     silentConnGrace, connections that never sent a request); new RPC calls
//     are answered Unavailable and, once the running ones have answered, the
//     RPC server sends goaway (see drainRPC);
//  4. calls in flight on both transports finish, bounded by the drain
//     timeout (or ctx, if it ends first); those still running are then
//     canceled and their connections closed;
//  5. clients and the admin endpoints close last, so /metrics and /readyz
//     are there to watch the drain.
//
// It returns an error if the drain did not finish in time. Calling it
// again waits for the first call and returns its result.
func (h *Host) Shutdown(ctx context.Context) error {
	h.stopOnce.Do(func() {
		defer close(h.stopped)
		h.stopErr = h.shutdown(ctx)
	})
	<-h.stopped
	return h.stopErr
}

func (h *Host) shutdown(ctx context.Context) error {
	h.ready.Store(false)
	h.metrics.ready.Set(0)
	h.draining.Store(true)
	h.log.Info("logicsvr draining", "logicsvr", h.name, "delay", time.Duration(h.cfg.DrainDelay),
		"timeout", time.Duration(h.cfg.DrainTimeout))
	if d := time.Duration(h.cfg.DrainDelay); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	start := time.Now()
	drainCtx, cancel := context.WithTimeout(ctx, time.Duration(h.cfg.DrainTimeout))
	defer cancel()
	var wg sync.WaitGroup
	var httpErr, rpcErr error
	if h.httpSrv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stopReaping := h.reapSilentConns()
			defer stopReaping()
			if err := h.httpSrv.Shutdown(drainCtx); err != nil {
				_ = h.httpSrv.Close()
				httpErr = fmt.Errorf("http: %w", err)
			}
			h.log.Info("logicsvr http drained", "logicsvr", h.name, "elapsed", time.Since(start))
		}()
	}
	if h.rpc != nil && h.rpcAddr != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.drainRPC(drainCtx); err != nil {
				rpcErr = fmt.Errorf("rpc: %w", err)
			}
			h.log.Info("logicsvr rpc drained", "logicsvr", h.name, "elapsed", time.Since(start))
		}()
	}
	wg.Wait()

	h.mu.Lock()
	clients := h.clients
	h.clients = map[string]*svrkit.Client{}
	h.mu.Unlock()
	for _, c := range clients {
		_ = c.Close()
	}
	if h.closeResolver != nil {
		h.closeResolver()
	}
	h.mu.Lock()
	hooks := h.onShutdown
	h.onShutdown = nil
	h.mu.Unlock()
	var hookErr error
	for i := len(hooks) - 1; i >= 0; i-- {
		if err := hooks[i](ctx); err != nil {
			h.log.Error("logicsvr shutdown hook failed", "logicsvr", h.name, "err", err)
			hookErr = errors.Join(hookErr, err)
		}
	}
	err := errors.Join(httpErr, rpcErr)
	if err != nil {
		h.log.Error("logicsvr drain did not finish in time; remaining calls were canceled",
			"logicsvr", h.name, "err", err, "elapsed", time.Since(start))
		err = fmt.Errorf("logicsvr %s: drain: %w", h.name, err)
	} else {
		h.log.Info("logicsvr stopped", "logicsvr", h.name, "drain", time.Since(start))
	}
	if h.adminSrv != nil {
		_ = h.adminSrv.Close()
	}
	if hookErr != nil {
		err = errors.Join(err, fmt.Errorf("logicsvr %s: shutdown: %w", h.name, hookErr))
	}
	return err
}

// silentConnGrace is how long a connection accepted during the drain may
// stay without sending a request before it is closed.
const silentConnGrace = 500 * time.Millisecond

// reapSilentConns closes, while http.Server.Shutdown waits, connections that
// were opened but never carried a request. Shutdown leaves such connections
// (StateNew) alone for five seconds, and HTTP clients open them routinely:
// Go's transport dials a spare connection when a request waits and keeps it
// unused if another frees up first. Without this, one such connection holds
// the drain for five seconds.
func (h *Host) reapSilentConns() (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			h.newConns.Range(func(k, v any) bool {
				if time.Since(v.(time.Time)) >= silentConnGrace {
					_ = k.(net.Conn).Close()
					h.newConns.Delete(k)
				}
				return true
			})
		}
	}()
	return func() { close(done); <-finished }
}

// drainRPC shuts the RPC server down without losing the responses of calls
// that ran: the host first refuses new calls (Unavailable, before they
// run), waits for the running ones to finish, then lets the server send
// goaway and close. svrkit.Server.Shutdown writes the responses of answered
// calls out before it stops its engine, so nothing more is needed here.
func (h *Host) drainRPC(ctx context.Context) error {
	h.rpcDraining.Store(true)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for h.rpcInflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return h.rpc.Shutdown(ctx)
		case <-tick.C:
		}
	}
	return h.rpc.Shutdown(ctx)
}

// Run starts the host, serves until ctx ends or a listener fails, then
// shuts down gracefully.
func (h *Host) Run(ctx context.Context) error {
	if err := h.Start(); err != nil {
		return err
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-h.failed:
		h.log.Error("logicsvr listener failed; stopping", "err", err)
	}
	return errors.Join(err, h.Shutdown(context.Background()))
}

// httpHandler is the CGI front behind a thin middleware: the request id
// header, Connection: close while draining, and a count of every response
// by status (including those the front refuses before any method runs).
func (h *Host) httpHandler() http.Handler {
	// The statuses the front answers, resolved now so that a response
	// takes no lock; any other goes through the metrics' locked cache.
	statuses := map[int]prometheus.Counter{}
	for _, s := range []int{200, 400, 401, 403, 404, 405, 409, 413, 415, 429, 499, 500, 501, 503, 504} {
		statuses[s] = h.metrics.httpStatusCounter(s)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 128 {
			id = newRequestID()
			r.Header.Set("X-Request-Id", id)
		}
		hdr := w.Header()
		hdr.Set("X-Request-Id", id)
		if h.draining.Load() {
			hdr.Set("Connection", "close")
		}
		sw := statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.front.ServeHTTP(&sw, r)
		if c := statuses[sw.status]; c != nil {
			c.Inc()
		} else {
			h.metrics.httpStatusCounter(sw.status).Inc()
		}
	})
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
