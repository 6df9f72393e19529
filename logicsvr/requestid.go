package logicsvr

import (
	"context"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/svrkit"
)

// RequestIDKey is the metadata key (and, as X-Request-Id, the HTTP header)
// of a call's request id. A Logicsvr keeps the id it is given, makes one up
// when there is none, logs it with every line about the call, echoes it in
// HTTP responses and sends it on with every call its handlers make through
// Host.Client, so one id follows a request through every service it touches.
const RequestIDKey = "x-request-id"

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
