// Package cgi serves svrkit services over HTTP: the "CGI" short-connection
// front of a Logicsvr, where clients that cannot hold a long connection (web
// pages, scripts, curl, other stacks) call the same service implementations
// the binary RPC server runs.
//
// A Handler is an http.Handler and a svrkit.Registrar, so the generated
// RegisterFooServer functions register an implementation with it exactly as
// with a *svrkit.Server:
//
//	h := cgi.NewHandler()
//	hello.RegisterGreeterServer(h, greeter{})
//	http.ListenAndServe(":8080", h)
//
// # Routes
//
// Every method is served at its Connect unary route, POST /pkg.Service/Method,
// and, when the IDL gives it one, at its CGI path (POST
// /cgi-bin/micromsg-bin/newsendmsg). Both take the same request.
//
// The describe method (svrkit.DescribeServiceDesc, svrkit.Describe) is served at
// /svrkit.Describe/Describe over the handler's own services, by POST like any
// method and also by GET, which answers the FileDescriptorSet as JSON for a
// quick look with curl. WithoutDescribe turns it off.
//
// # Encoding
//
// The request body is binary protobuf when Content-Type is application/proto
// or application/x-protobuf, and protobuf JSON (protojson) when it is
// application/json; an empty body is the empty message. The response uses the
// request's encoding. This is the Connect protocol's unary shape, so Connect
// clients can call a svrkit service directly. Unknown JSON fields are
// ignored, as Connect does, so old servers accept newer clients' requests.
//
// # Errors
//
// A failed call answers the HTTP status of its code (HTTPStatus)
// and a JSON body in Connect's error shape, whatever the request's encoding:
//
//	{"code":"not_found","message":"no such user"}
//
// The front's own refusals use the same body: malformed request body → 400
// invalid_argument; unsupported Content-Type → 415 unimplemented; body over
// the size limit (WithMaxBodySize, 4 MiB by default like the binary
// protocol's frames) → 413 resource_exhausted; no method at the path → 404
// not_found; a method other than POST → 405 unimplemented. A handler that
// panics answers 500 internal and is logged; the server goes on serving.
//
// # Context
//
// The handler's context carries the request's headers as incoming metadata
// (lower-case keys; the last value of a repeated header wins; transport
// headers such as Content-Length are left out), the client's address under
// PeerAddrKey (see PeerAddr), and a deadline: the method's
// Timeout (from the IDL), or WithDefaultTimeout's for methods without one,
// shortened by a Connect-Timeout-Ms request header. Server interceptors
// (WithInterceptors) wrap every call, as on the binary server.
package cgi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"reflect"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/internal/chain"
	"github.com/svrkit/svrkit/svrkit/internal/metactx"
)

// DefaultMaxBodySize bounds request bodies unless WithMaxBodySize says
// otherwise; it matches the binary protocol's default frame limit.
const DefaultMaxBodySize = 4 << 20

// Content types the handler speaks.
const (
	ContentTypeProto = "application/proto"
	ContentTypeJSON  = "application/json"
	// contentTypeXProto is the older name of binary protobuf, accepted and
	// echoed back.
	contentTypeXProto = "application/x-protobuf"
)

// Option configures a Handler.
type Option func(*options)

type options struct {
	interceptors   []svrkit.UnaryServerInterceptor
	maxBody        int64
	defaultTimeout time.Duration
	logger         *slog.Logger
	describe       bool
}

// WithInterceptors wraps every call in ics, the first outermost.
func WithInterceptors(ics ...svrkit.UnaryServerInterceptor) Option {
	return func(o *options) { o.interceptors = append(o.interceptors, ics...) }
}

// WithMaxBodySize bounds request bodies to n bytes; larger ones are answered
// 413 without being read in full.
func WithMaxBodySize(n int64) Option { return func(o *options) { o.maxBody = n } }

// WithDefaultTimeout sets the deadline of calls to methods whose descriptor
// has no Timeout; 0 (the default) leaves them without one.
func WithDefaultTimeout(d time.Duration) Option { return func(o *options) { o.defaultTimeout = d } }

// WithLogger sets where handler panics are logged; slog.Default otherwise.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithoutDescribe stops the handler from serving the describe method.
func WithoutDescribe() Option { return func(o *options) { o.describe = false } }

// Handler serves registered services over HTTP. Register every service
// before serving; registration is safe to call concurrently with serving
// but not meant for it.
type Handler struct {
	opts options

	mu       sync.RWMutex
	routes   map[string]*route
	services []*svrkit.ServiceDesc
}

type route struct {
	method *svrkit.MethodDesc
	call   svrkit.UnaryHandler
}

// NewHandler returns a Handler with no services but the describe method.
func NewHandler(opts ...Option) *Handler {
	h := &Handler{
		opts:   options{maxBody: DefaultMaxBodySize, logger: slog.Default(), describe: true},
		routes: map[string]*route{},
	}
	for _, o := range opts {
		o(&h.opts)
	}
	if h.opts.describe {
		h.RegisterService(svrkit.DescribeServiceDesc(), svrkit.NewDescriber(h.Services))
	}
	return h
}

// RegisterService serves sd's methods with impl. Like svrkit.Server's, it
// panics on programming errors: impl not implementing sd.HandlerType, or a
// route (CGI path or full name) already taken.
func (h *Handler) RegisterService(sd *svrkit.ServiceDesc, impl any) {
	if impl == nil {
		panic("cgi: nil implementation for " + sd.Name)
	}
	if sd.HandlerType != nil {
		want := reflect.TypeOf(sd.HandlerType).Elem()
		if got := reflect.TypeOf(impl); !got.Implements(want) {
			panic(fmt.Sprintf("cgi: %v does not implement %v for service %s", got, want, sd.Name))
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	add := map[string]*route{}
	for i := range sd.Methods {
		m := &sd.Methods[i]
		handler := m.Handler
		base := svrkit.UnaryHandler(func(ctx context.Context, req proto.Message) (proto.Message, error) {
			return handler(impl, ctx, req)
		})
		r := &route{method: m, call: chain.Fold(base, h.opts.interceptors, func(ic svrkit.UnaryServerInterceptor, next svrkit.UnaryHandler) svrkit.UnaryHandler {
			return func(ctx context.Context, req proto.Message) (proto.Message, error) { return ic(ctx, req, m, next) }
		})}
		for _, path := range []string{m.FullName, m.CGIPath} {
			if path == "" {
				continue
			}
			prev := h.routes[path]
			if prev == nil {
				prev = add[path]
			}
			if prev != nil {
				panic(fmt.Sprintf("cgi: route %s of %s already registered by %s", path, m.FullName, prev.method.FullName))
			}
			add[path] = r
		}
	}
	for path, r := range add {
		h.routes[path] = r
	}
	h.services = append(h.services, sd)
}

// Services returns the registered services, the describe service included
// unless WithoutDescribe.
func (h *Handler) Services() []*svrkit.ServiceDesc {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return append([]*svrkit.ServiceDesc(nil), h.services...)
}

// Routes returns every path the handler serves, sorted.
func (h *Handler) Routes() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	paths := make([]string, 0, len(h.routes))
	for p := range h.routes {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

// PeerAddrKey is the incoming metadata key under which a Handler passes the
// client's network address (http.Request.RemoteAddr, "ip:port") to the
// method, for logs and for per-client limits such as login throttling. The
// key is reserved: a request header of that name is dropped, so an HTTP
// client cannot forge it. A caller over binary RPC can still send any
// metadata, this key included; code that must trust the address reads it
// with PeerAddr.
const PeerAddrKey = "svrkit-peer-addr"

type peerAddrKey struct{}

// PeerAddr returns the network address of the HTTP client of the call in
// ctx ("ip:port"), and false when the call did not come through a Handler
// (over binary RPC, say). Unlike the PeerAddrKey metadata, no client can
// set it: only a Handler does.
func PeerAddr(ctx context.Context) (string, bool) {
	a, ok := ctx.Value(peerAddrKey{}).(string)
	return a, ok
}

// transportHeaders are HTTP plumbing, not call metadata.
var transportHeaders = map[string]bool{
	"content-length": true, "content-type": true, "connection": true,
	"accept-encoding": true, "transfer-encoding": true, "te": true,
	"upgrade": true, "keep-alive": true, "proxy-connection": true,
	"connect-timeout-ms": true, "connect-protocol-version": true,
}

// ServeHTTP answers one call.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.RLock()
	rt := h.routes[r.URL.Path]
	h.mu.RUnlock()
	if rt == nil {
		writeError(w, http.StatusNotFound, svrkit.Errorf(svrkit.NotFound, "no method at %s", r.URL.Path))
		return
	}
	if r.Method == http.MethodGet && rt.method.FullName == svrkit.DescribeFullMethodName {
		h.serve(w, r, rt, ContentTypeJSON, true)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, svrkit.Errorf(svrkit.Unimplemented, "%s %s: use POST", r.Method, r.URL.Path))
		return
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	switch {
	case err == nil && (mt == ContentTypeProto || mt == contentTypeXProto):
		h.serve(w, r, rt, mt, false)
	case err == nil && mt == ContentTypeJSON:
		h.serve(w, r, rt, ContentTypeJSON, false)
	default:
		w.Header().Set("Accept-Post", ContentTypeProto+", "+ContentTypeJSON)
		writeError(w, http.StatusUnsupportedMediaType, svrkit.Errorf(svrkit.Unimplemented,
			"unsupported Content-Type %q: use %s or %s", ct, ContentTypeProto, ContentTypeJSON))
	}
}

// serve decodes the request in encoding ct (its body is ignored if
// emptyBody), runs the method and writes the response in the same encoding.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rt *route, ct string, emptyBody bool) {
	m := rt.method
	req := m.NewRequest()
	if !emptyBody {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.maxBody))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				writeError(w, http.StatusRequestEntityTooLarge, svrkit.Errorf(svrkit.ResourceExhausted,
					"request body exceeds %d bytes", tooLarge.Limit))
				return
			}
			writeError(w, http.StatusBadRequest, svrkit.Errorf(svrkit.InvalidArgument, "reading request body: %v", err))
			return
		}
		if err := unmarshal(ct, body, req); err != nil {
			writeError(w, http.StatusBadRequest, svrkit.Errorf(svrkit.InvalidArgument, "decoding %s request: %v", ct, err))
			return
		}
	}

	md := metadataFrom(r.Header)
	md[PeerAddrKey] = r.RemoteAddr
	ctx := context.WithValue(metactx.WithIncoming(r.Context(), md), peerAddrKey{}, r.RemoteAddr)
	if m.Priority != 0 {
		// A CGI is an entry: the calls behind it inherit its priority, so
		// that overloaded services downstream shed it as the IDL ranks it.
		ctx = svrkit.WithEntryPriority(ctx, m.Priority, "")
	}
	timeout := m.Timeout
	if timeout == 0 {
		timeout = h.opts.defaultTimeout
	}
	if v := r.Header.Get("Connect-Timeout-Ms"); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms <= 0 {
			writeError(w, http.StatusBadRequest, svrkit.Errorf(svrkit.InvalidArgument, "bad Connect-Timeout-Ms %q", v))
			return
		}
		if d := time.Duration(ms) * time.Millisecond; timeout == 0 || d < timeout {
			timeout = d
		}
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}

	resp, err := h.call(ctx, rt, req)
	if err != nil {
		e := svrkit.AsError(err)
		writeError(w, HTTPStatus(e.Code()), e)
		return
	}
	if resp == nil {
		resp = m.NewResponse()
	}
	b, err := marshal(ct, resp)
	if err != nil {
		writeError(w, http.StatusInternalServerError, svrkit.Errorf(svrkit.Internal, "encoding response: %v", err))
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// call runs the method, turning a panic into an Internal error so that one
// bad request cannot take the front down.
func (h *Handler) call(ctx context.Context, rt *route, req proto.Message) (resp proto.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			h.opts.logger.Error("cgi: handler panicked", "method", rt.method.FullName, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			resp, err = nil, svrkit.NewError(svrkit.Internal, "internal error")
		}
	}()
	return rt.call(ctx, req)
}

func unmarshal(ct string, body []byte, m proto.Message) error {
	if ct == ContentTypeJSON {
		if len(bytes.TrimSpace(body)) == 0 {
			return nil
		}
		return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(body, m)
	}
	return proto.Unmarshal(body, m)
}

func marshal(ct string, m proto.Message) ([]byte, error) {
	if ct == ContentTypeJSON {
		return protojson.Marshal(m)
	}
	return proto.Marshal(m)
}

func metadataFrom(h http.Header) svrkit.Metadata {
	md := make(svrkit.Metadata, len(h)+1)
	for k, vs := range h {
		k = strings.ToLower(k)
		if transportHeaders[k] || k == PeerAddrKey || len(vs) == 0 {
			continue
		}
		md[k] = vs[len(vs)-1]
	}
	return md
}

// ErrorBody is the JSON body of a failed call, in Connect's shape.
type ErrorBody struct {
	Code    string        `json:"code"`
	Message string        `json:"message,omitempty"`
	Details []ErrorDetail `json:"details,omitempty"`
}

// ErrorDetail is one typed detail of a failed call, in Connect's shape:
// the message's full protobuf name and its binary encoding in base64.
type ErrorDetail struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Err returns the error the body describes; unknown code names read as
// svrkit.Unknown, and details that do not decode are left out.
func (b ErrorBody) Err() *svrkit.Error {
	c, _ := svrkit.CodeFromString(b.Code)
	e := svrkit.NewError(c, b.Message)
	for _, d := range b.Details {
		v, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(d.Value, "="))
		if err != nil {
			continue
		}
		_, _ = e.AddDetail(&anypb.Any{TypeUrl: "type.googleapis.com/" + d.Type, Value: v})
	}
	return e
}

func errorBodyOf(e *svrkit.Error) ErrorBody {
	b := ErrorBody{Code: e.Code().String(), Message: e.Message()}
	for _, d := range e.Details() {
		b.Details = append(b.Details, ErrorDetail{
			Type:  string(d.MessageName()),
			Value: base64.RawStdEncoding.EncodeToString(d.Value),
		})
	}
	return b
}

// WriteError answers a plain HTTP handler's request (one mounted beside
// the CGIs, e.g. a download) with err as a CGI would: the HTTP status of
// its code and the JSON error body, so clients read one error shape from
// every path of a Logicsvr.
func WriteError(w http.ResponseWriter, err error) {
	e := svrkit.AsError(err)
	writeError(w, HTTPStatus(e.Code()), e)
}

func writeError(w http.ResponseWriter, status int, e *svrkit.Error) {
	b, _ := json.Marshal(errorBodyOf(e))
	w.Header().Set("Content-Type", ContentTypeJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
