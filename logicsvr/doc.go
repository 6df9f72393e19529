// Package logicsvr is the host of a Logicsvr: one independently deployable
// binary that statically links the svrkit runtime and one group of CGIs, and
// serves them over HTTP and over svrkit's binary RPC.
//
// # Why
//
// The seed's web host, mmweb, loaded every CGI as a dynamic library into
// one process. A library built against another ABI crashed it; a crash in a
// minor CGI took send-message down with it; and every CGI shipped on the same
// slow release train. A Logicsvr is the answer: the CGIs of one group (the IDL
// names the group with option (svrkit.service).logicsvr) compiled with the
// framework into one binary, deployed, scaled and released on its own. Inside
// it, the host keeps CGIs from hurting each other.
//
// # Data flow
//
// A generated main (`svrkit gen -mains`; see package
// github.com/svrkit/svrkit/protoc-gen-svrkit/generator for where it goes and
// where it finds the handlers) calls Main with a register function. Main
// reads flags and the config file (Config), builds a Host, lets register
// construct each service's handler and register it, and runs the host:
//
//	HTTP  :8080  ──> middleware ──> svrkit/cgi ──┐
//	                (request id,    (routes,     │   observe ──> guard ──> Use's ────> handler
//	                 drain, status   decode,     ├─> (metrics,   (limit,   interceptors
//	                 counts)         encode)     │    request id, panic,   (auth, ...)
//	RPC   :7070  ──> svrkit.Server (gnet) ───────┘    logs)       deadline)
//	admin :9090  ──> /healthz /readyz /metrics /buildinfo /debug/pprof/
//
// (Ports are the defaults, on loopback: see Config for the trust boundary —
// service authentication on RPC, internal services off HTTP, read timeouts
// and a connection cap on the front.)
//
// Both transports call the same handler through the same interceptors, so
// a method has one concurrency limit, one set of metrics (labelled by
// transport) and one behaviour whichever way it is called.
//
// The HTTP front is svrkit/cgi: each method is served at its IDL CGI path
// and at its Connect unary route POST /<package>.<Service>/<Method>, in
// protobuf JSON or binary protobuf, with Connect's JSON error bodies, over
// HTTP/1.1 keep-alive ("short") connections. Bad JSON is 400, an unsupported
// Content-Type 415, a body over max_body_bytes 413, an unknown path 404: each
// with a JSON body {"code": ..., "message": ...}.
//
// # Isolation
//
// guard, the innermost interceptor, is what mmweb lacked:
//
//   - A panic in a handler answers that call with an Internal error naming
//     the request id, is counted (logicsvr_panics_total) and logged with its
//     stack; every other call, of that CGI and the others, goes on.
//   - Each method has a concurrency limit from the IDL
//     (option (svrkit.method).max_concurrent, or the service's), overridable
//     per method in the config. A call over it is refused at once with
//     resource_exhausted (HTTP 429): no queueing, so a slow CGI sheds its own
//     excess instead of taking every worker of the process.
//   - Each method's timeout from the IDL (timeout_ms), or the caller's
//     earlier deadline, is the deadline of the handler's context on both
//     transports. A handler that returns after it is answered
//     DeadlineExceeded (HTTP 504), whatever it returned; a caller with a
//     deadline of its own (svrkit and Connect clients send theirs) stops
//     waiting at it. The host never abandons a running handler: one that
//     ignores its context keeps its slot of the limit until it really
//     returns, so a stuck CGI fills its own limit and is then refused fast,
//     while the others are untouched. Enforcing the deadline through the
//     context, once, is what keeps it free: no goroutine or timer per call.
//
// # Request ids and logs
//
// Every call has a request id: the X-Request-Id header or x-request-id
// metadata it came with, or a new one. It is echoed in the HTTP response,
// attached to log lines (Logger(ctx)), available to handlers (RequestID) and
// sent on with every call made through Host.Client, so one id follows a
// request across Logicsvrs. Logs are log/slog, text or JSON; failed calls are
// logged at warn, successful ones at debug.
//
// # Routing
//
// The services a Logicsvr calls are found through the routing table in its
// config file (Config.Routes, or a svrkit routing file in
// Config.RoutesFile), re-read when the file changes. Host.Client returns a
// svrkit.Client over it; generated clients wrap it.
//
// # Lifecycle
//
// On the first SIGTERM (or SIGINT) readiness turns false, responses carry
// Connection: close, and after the configured drain delay the listeners
// close and in-flight HTTP and RPC calls drain within the drain timeout
// (Host.Shutdown has the steps). The process then exits 0, or 1 if calls had
// to be cut. A second signal exits at once.
//
// # Extending the host
//
// A check that every method of a service needs (a session token, a tenant)
// is a server interceptor, declared once: the handler constructor the
// generated main calls gets the host and installs it with Host.Use, before
// the host serves:
//
//	func NewAccount(h *logicsvr.Host) (im.AccountServer, error) {
//		...
//		h.Use(signer.Require(im.Account_ServiceName, im.Account_Login_FullMethodName))
//		return &accountServer{...}, nil
//	}
//
// What is not a unary call — a media download with Range requests, a
// stream — is a plain http.Handler the constructor mounts on the HTTP front
// with Host.HandleHTTP, beside the CGIs; it checks its own authentication.
//
// A main written by hand, or a program embedding a host, passes Options to
// Main or New instead: WithInterceptors for the same server interceptors,
// WithClientOptions for the clients Host.Client makes (their interceptors,
// retries, connection counts, or a resolver other than the routing table).
//
// # Handlers with state
//
// A Logicsvr that owns something — a database (the IM backend's storage
// Logicsvr opens pebble), caches, background workers — reads its own
// settings from the config's "app" object (Host.AppConfig, strict like the
// rest of the file, defaults set before decoding), opens nothing when
// Host.InfoOnly says the binary only prints its -buildinfo, and closes what
// it opened in a Host.OnShutdown hook, which runs after every call has
// drained, so no handler can still be using it.
//
// # What it does not do
//
// TLS, authentication and admission by priority belong in front of or
// around the host (a proxy, interceptors, the runtime's overload control);
// the host does not restart itself — a supervisor (`svrkit up` on one
// machine, an orchestrator beyond) does.
package logicsvr
