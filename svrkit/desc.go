package svrkit

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"
)

// MethodDesc describes one unary method: everything the server, the client
// and the HTTP front need to know about it. protoc-gen-svrkit emits one per
// rpc from the IDL; hand-written descriptors work the same way.
type MethodDesc struct {
	// CmdID is the method's number on the wire, unique within its server.
	// Values from ReservedCmdIDBase up belong to the framework.
	CmdID uint32
	// FullName is "/package.Service/Method", the Connect/gRPC route.
	FullName string
	// CGIPath is the HTTP path of the method's CGI, e.g.
	// "/cgi-bin/micromsg-bin/newsendmsg"; empty when it has none.
	CGIPath string
	// Timeout bounds the call when the caller sets no earlier deadline;
	// 0 means the service's or the server's default.
	Timeout time.Duration
	// Idempotent methods may be retried by the client on Unavailable.
	Idempotent bool
	// NonBlocking methods never block (no I/O, no locks held long) and are
	// run on the event loop instead of a worker, saving a hand-off.
	NonBlocking bool
	// Priority is the default admission priority of the method's requests;
	// higher is more important (0 = the server's default).
	Priority uint8
	// NewRequest and NewResponse return empty messages of the method's types.
	NewRequest  func() proto.Message
	NewResponse func() proto.Message
	// RoutingKey, if set, extracts the key the client hashes to choose an
	// endpoint (the IDL's routing key field, e.g. the user id).
	RoutingKey func(req proto.Message) string
	// Handler calls the method on a service implementation. req has the
	// type NewRequest returns.
	Handler func(impl any, ctx context.Context, req proto.Message) (proto.Message, error)
}

// ServiceDesc describes a service: its methods and the interface an
// implementation must satisfy.
type ServiceDesc struct {
	// Name is the fully-qualified protobuf name, e.g. "hello.Greeter".
	Name string
	// HandlerType is a nil pointer to the server interface, used to check
	// implementations at registration: (*GreeterServer)(nil).
	HandlerType any
	// Logicsvr is the Logicsvr the service belongs to, from the IDL.
	Logicsvr string
	// Callers are the identities (Logicsvr names) allowed to call the
	// service when the server requires service authentication
	// (WithTrustedCallers); empty means any authenticated caller.
	Callers []string
	Methods []MethodDesc
}

// ReservedCmdIDBase is the first cmdid reserved for framework methods (such
// as the describe endpoint); the IDL compiler rejects user cmdids from here.
const ReservedCmdIDBase uint32 = 0xFFFF0000

// Invoker is what generated clients call. *Client implements it; tests and
// in-process transports can supply their own.
type Invoker interface {
	Invoke(ctx context.Context, method *MethodDesc, req, resp proto.Message, opts ...CallOption) error
}

// Registrar is what generated registration functions call. *Server
// implements it, and so does the HTTP CGI front.
type Registrar interface {
	RegisterService(desc *ServiceDesc, impl any)
}
