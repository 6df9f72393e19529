package logicsvr

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	svrkitpb "github.com/svrkit/svrkit/idl/svrkit"
	"github.com/svrkit/svrkit/svrkit"
)

// RequestIDKey is the metadata key (and, as X-Request-Id, the HTTP header)
// of a call's request id. A Logicsvr keeps the id it is given, makes one up
// when there is none, logs it with every line about the call, echoes it in
// HTTP responses and sends it on with every call its handlers make through
// Host.Client, so one id follows a request through every service it touches.
const RequestIDKey = "x-request-id"

// methodState is what the host keeps per method: its limits, its in-flight
// count and its metrics on each transport. It is created at registration and
// read without locks afterwards.
type methodState struct {
	desc     *svrkit.MethodDesc
	limit    int64 // 0: unbounded
	inflight atomic.Int64
	http     *transportMetrics
	rpc      *transportMetrics
	panics   prometheus.Counter
}

func (h *Host) newMethodState(md *svrkit.MethodDesc, limit int) *methodState {
	st := &methodState{desc: md, limit: int64(limit)}
	st.http = h.metrics.forMethod(md, "http")
	st.rpc = h.metrics.forMethod(md, "rpc")
	cmdid := strconv.FormatUint(uint64(md.CmdID), 10)
	st.panics = h.metrics.panics.WithLabelValues(md.FullName, cmdid)
	h.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        metricInFlight,
		Help:        "Calls running now, over both transports, by method.",
		ConstLabels: prometheus.Labels{"method": md.FullName, "cmdid": cmdid},
	}, func() float64 { return float64(st.inflight.Load()) }))
	return st
}

// idlMaxConcurrent reads a method's max_concurrent option (or its service's)
// from the descriptor the generated code registered.
func idlMaxConcurrent(service string, md *svrkit.MethodDesc) int {
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return 0
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return 0
	}
	name, ok := strings.CutPrefix(md.FullName, "/"+service+"/")
	if !ok {
		return 0
	}
	if m := sd.Methods().ByName(protoreflect.Name(name)); m != nil {
		if o, _ := proto.GetExtension(m.Options(), svrkitpb.E_Method).(*svrkitpb.MethodOptions); o.GetMaxConcurrent() > 0 {
			return int(o.GetMaxConcurrent())
		}
	}
	o, _ := proto.GetExtension(sd.Options(), svrkitpb.E_Service).(*svrkitpb.ServiceOptions)
	return int(o.GetMaxConcurrent())
}

// callInfo is what a handler's context carries about its call.
type callInfo struct {
	requestID string
	method    *svrkit.MethodDesc
	log       *slog.Logger
}

type callInfoKey struct{}

// RequestID returns the request id of the call ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	if ci, _ := ctx.Value(callInfoKey{}).(*callInfo); ci != nil {
		return ci.requestID
	}
	return ""
}

// Logger returns a logger for the call ctx belongs to: the host's logger
// with the request id and method attached. Outside a call it returns
// slog.Default().
func Logger(ctx context.Context) *slog.Logger {
	if ci, _ := ctx.Value(callInfoKey{}).(*callInfo); ci != nil {
		return ci.log.With("request_id", ci.requestID, "method", ci.method.FullName)
	}
	return slog.Default()
}

// newRequestID returns 16 random hex digits.
func newRequestID() string {
	var b [8]byte
	u := rand.Uint64()
	for i := range b {
		b[i] = byte(u >> (8 * i))
	}
	return hex.EncodeToString(b[:])
}

// PropagateRequestID is a client interceptor that sends the request id of
// the call being handled (RequestID(ctx)) with every outgoing call, unless
// the outgoing metadata already has one. Host.Client installs it; add it to
// clients made otherwise.
func PropagateRequestID(ctx context.Context, method *svrkit.MethodDesc, req, resp proto.Message, next svrkit.UnaryInvoker) error {
	if id := RequestID(ctx); id != "" {
		if _, set := svrkit.OutgoingMetadata(ctx)[RequestIDKey]; !set {
			ctx = svrkit.WithOutgoingMetadata(ctx, svrkit.Metadata{RequestIDKey: id})
		}
	}
	return next(ctx, method, req, resp)
}

// observe returns the outermost interceptor of one transport: it settles
// the request id, counts the call and its latency, and logs failures.
func (h *Host) observe(transport string) svrkit.UnaryServerInterceptor {
	rpc := transport == "rpc"
	return func(ctx context.Context, req proto.Message, m *svrkit.MethodDesc, next svrkit.UnaryHandler) (proto.Message, error) {
		if rpc {
			h.rpcInflight.Add(1)
			defer h.rpcInflight.Add(-1)
			if h.rpcDraining.Load() {
				return nil, svrkit.NewError(svrkit.Unavailable, "logicsvr is shutting down")
			}
		}
		start := time.Now()
		id := svrkit.IncomingMetadata(ctx)[RequestIDKey]
		if id == "" {
			id = newRequestID()
		}
		ctx = context.WithValue(ctx, callInfoKey{}, &callInfo{requestID: id, method: m, log: h.log})
		resp, err := next(ctx, req)
		elapsed := time.Since(start)
		st := h.methods[m]
		if st == nil {
			return resp, err
		}
		tm := st.rpc
		if transport == "http" {
			tm = st.http
		}
		tm.requests.Inc()
		tm.duration.Observe(elapsed.Seconds())
		if err != nil {
			code := svrkit.CodeOf(err)
			tm.failed(code)
			h.log.LogAttrs(ctx, slog.LevelWarn, "call failed",
				slog.String("method", m.FullName), slog.String("transport", transport),
				slog.String("request_id", id), slog.String("code", code.String()),
				slog.Duration("elapsed", elapsed), slog.String("err", svrkit.AsError(err).Message()))
		} else if h.log.Enabled(ctx, slog.LevelDebug) {
			h.log.LogAttrs(ctx, slog.LevelDebug, "call",
				slog.String("method", m.FullName), slog.String("transport", transport),
				slog.String("request_id", id), slog.Duration("elapsed", elapsed))
		}
		return resp, err
	}
}

// guard is the innermost interceptor, the isolation the seed's mmweb
// lacked. It refuses a call over its method's concurrency limit at once; it
// turns a panic into an Internal error (counted, logged with its stack);
// and when the call has a deadline it answers DeadlineExceeded at the
// deadline even if the handler ignores its context. A handler that outlives
// its deadline keeps its concurrency slot until it really returns, so a
// stuck CGI exhausts its own limit, not the process.
func (h *Host) guard(ctx context.Context, req proto.Message, m *svrkit.MethodDesc, next svrkit.UnaryHandler) (proto.Message, error) {
	st := h.methods[m]
	if st == nil {
		return h.runRecover(ctx, nil, m, req, next)
	}
	if n := st.inflight.Add(1); st.limit > 0 && n > st.limit {
		st.inflight.Add(-1)
		return nil, svrkit.Errorf(svrkit.ResourceExhausted, "%s is at its limit of %d concurrent calls", m.FullName, st.limit)
	}
	if _, ok := ctx.Deadline(); !ok || m.NonBlocking {
		defer st.inflight.Add(-1)
		return h.runRecover(ctx, st, m, req, next)
	}
	done := make(chan callResult, 1)
	go func() {
		resp, err := h.runRecover(ctx, st, m, req, next)
		st.inflight.Add(-1)
		done <- callResult{resp, err}
	}()
	select {
	case r := <-done:
		return r.resp, r.err
	case <-ctx.Done():
		// The handler may still finish in the same instant; prefer its
		// answer if it is there.
		select {
		case r := <-done:
			return r.resp, r.err
		default:
		}
		return nil, svrkit.AsError(ctx.Err())
	}
}

type callResult struct {
	resp proto.Message
	err  error
}

func (h *Host) runRecover(ctx context.Context, st *methodState, m *svrkit.MethodDesc, req proto.Message, next svrkit.UnaryHandler) (resp proto.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			id := RequestID(ctx)
			if st != nil {
				st.panics.Inc()
			}
			h.log.Error("handler panicked", "method", m.FullName, "request_id", id,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			resp, err = nil, svrkit.Errorf(svrkit.Internal, "internal error (request id %s)", id)
		}
	}()
	return next(ctx, req)
}
