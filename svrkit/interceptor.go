package svrkit

import (
	"context"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/svrkit/internal/chain"
)

// UnaryHandler runs a method for a decoded request.
type UnaryHandler func(ctx context.Context, req proto.Message) (proto.Message, error)

// UnaryServerInterceptor wraps every call a server handles: logging,
// metrics, auth and tracing plug in here. It must call next to run the
// method, or return an error to refuse the call.
type UnaryServerInterceptor func(ctx context.Context, req proto.Message, method *MethodDesc, next UnaryHandler) (proto.Message, error)

// UnaryInvoker performs a call on the client side.
type UnaryInvoker func(ctx context.Context, method *MethodDesc, req, resp proto.Message) error

// UnaryClientInterceptor wraps every call a client makes. It must call next
// to send the call.
type UnaryClientInterceptor func(ctx context.Context, method *MethodDesc, req, resp proto.Message, next UnaryInvoker) error

// chainServer folds interceptors into one handler, the first outermost.
func chainServer(h UnaryHandler, method *MethodDesc, ics []UnaryServerInterceptor) UnaryHandler {
	return chain.Fold(h, ics, func(ic UnaryServerInterceptor, next UnaryHandler) UnaryHandler {
		return func(ctx context.Context, req proto.Message) (proto.Message, error) {
			return ic(ctx, req, method, next)
		}
	})
}

// chainClient folds interceptors into one invoker, the first outermost.
func chainClient(inv UnaryInvoker, ics []UnaryClientInterceptor) UnaryInvoker {
	return chain.Fold(inv, ics, func(ic UnaryClientInterceptor, next UnaryInvoker) UnaryInvoker {
		return func(ctx context.Context, method *MethodDesc, req, resp proto.Message) error {
			return ic(ctx, method, req, resp, next)
		}
	})
}
