package rpcbench

// Hand-written svrkit descriptor of echo.proto's Echo service. It is not
// generated because protoc-gen-svrkit's output would share package echopb
// with protoc-gen-go-grpc's, and both declare EchoServer,
// RegisterEchoServer and Echo_Echo_FullMethodName; and because the
// benchmark also needs the NonBlocking variant. TestEchoServiceDescsMatchProto
// checks it against echo.proto. Keep it the only svrkit-specific code about
// the service.

import (
	"context"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/tools/internal/rpcbench/echopb"
)

// EchoService is what an implementation of the Echo service satisfies on
// svrkit.
type EchoService interface {
	Echo(ctx context.Context, req *echopb.EchoRequest) (*echopb.EchoResponse, error)
}

// EchoServiceDesc describes the Echo service to svrkit. Its one method runs
// on a worker goroutine, as every method does unless declared NonBlocking.
var EchoServiceDesc = echoServiceDesc(false)

// EchoInlineServiceDesc is EchoServiceDesc with Echo declared NonBlocking,
// so the server runs it on the event loop.
var EchoInlineServiceDesc = echoServiceDesc(true)

func echoServiceDesc(nonBlocking bool) svrkit.ServiceDesc {
	return svrkit.ServiceDesc{
		Name:        "rpcbench.echo.Echo",
		HandlerType: (*EchoService)(nil),
		Methods: []svrkit.MethodDesc{{
			CmdID:       1,
			FullName:    "/rpcbench.echo.Echo/Echo",
			NonBlocking: nonBlocking,
			NewRequest:  func() proto.Message { return new(echopb.EchoRequest) },
			NewResponse: func() proto.Message { return new(echopb.EchoResponse) },
			Handler: func(impl any, ctx context.Context, req proto.Message) (proto.Message, error) {
				return impl.(EchoService).Echo(ctx, req.(*echopb.EchoRequest))
			},
		}},
	}
}
