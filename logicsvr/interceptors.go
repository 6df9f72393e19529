package logicsvr

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/svrkit"
)

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
		st := h.state(m)
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
			level, what := slog.LevelWarn, "call failed"
			if _, ok := svrkit.RedirectOf(err); ok {
				// A replica that is not its group's leader redirects
				// every call that reaches it, by design, and the
				// caller follows: nothing to warn about.
				level, what = slog.LevelDebug, "call redirected"
			}
			h.log.LogAttrs(ctx, level, what,
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

// guard is the host's inner interceptor, the isolation the seed's mmweb
// lacked. It refuses a call over its method's concurrency limit at once, and
// turns a panic into an Internal error (counted, logged with its stack).
//
// It enforces no deadline of its own: the transport already gives the
// handler a context that ends at the call's deadline (see svrkit.Server and
// svrkit/cgi), so a deadline costs a call nothing here. The one thing guard
// adds is the answer: when the handler of a call with a deadline returns
// after its context ended, the call is answered with the context's error
// (DeadlineExceeded, HTTP 504), whatever the handler returned, so the caller
// never takes a late result for a timely one.
// The handler runs on the caller's goroutine and keeps its concurrency slot
// until it really returns, so a CGI stuck past its deadline exhausts its own
// limit, not the process.
func (h *Host) guard(ctx context.Context, req proto.Message, m *svrkit.MethodDesc, next svrkit.UnaryHandler) (proto.Message, error) {
	st := h.state(m)
	if st == nil {
		return h.runRecover(ctx, nil, m, req, next)
	}
	if n := st.inflight.Add(1); st.limit > 0 && n > st.limit {
		st.inflight.Add(-1)
		return nil, svrkit.Errorf(svrkit.ResourceExhausted, "%s is at its limit of %d concurrent calls", m.FullName, st.limit)
	}
	defer st.inflight.Add(-1)
	resp, err := h.runRecover(ctx, st, m, req, next)
	if _, ok := ctx.Deadline(); ok {
		if cerr := ctx.Err(); cerr != nil {
			return nil, svrkit.AsError(cerr)
		}
	}
	return resp, err
}

// intercept is the host's innermost interceptor: it runs the ones of Use and
// WithInterceptors around the handler. One of them costs no allocation;
// more are chained per call.
func (h *Host) intercept(ctx context.Context, req proto.Message, m *svrkit.MethodDesc, next svrkit.UnaryHandler) (proto.Message, error) {
	ics := h.interceptors
	switch {
	case len(ics) == 0 || isDescribe(m):
		return next(ctx, req)
	case len(ics) == 1:
		return ics[0](ctx, req, m, next)
	}
	for i := len(ics) - 1; i >= 0; i-- {
		ic, inner := ics[i], next
		next = func(ctx context.Context, req proto.Message) (proto.Message, error) { return ic(ctx, req, m, inner) }
	}
	return next(ctx, req)
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
