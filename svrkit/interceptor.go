package svrkit

import (
	"context"

	"google.golang.org/protobuf/proto"
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

// ChainServer folds interceptors into one handler, the first outermost.
func ChainServer(h UnaryHandler, method *MethodDesc, ics ...UnaryServerInterceptor) UnaryHandler {
	for i := len(ics) - 1; i >= 0; i-- {
		ic, next := ics[i], h
		h = func(ctx context.Context, req proto.Message) (proto.Message, error) {
			return ic(ctx, req, method, next)
		}
	}
	return h
}

// ChainClient folds interceptors into one invoker, the first outermost.
func ChainClient(inv UnaryInvoker, ics ...UnaryClientInterceptor) UnaryInvoker {
	for i := len(ics) - 1; i >= 0; i-- {
		ic, next := ics[i], inv
		inv = func(ctx context.Context, method *MethodDesc, req, resp proto.Message) error {
			return ic(ctx, method, req, resp, next)
		}
	}
	return inv
}
