package rpcbench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/tools/internal/rpcbench/echopb"
)

// A System is one stack under test, started in-process: an echo server on
// 127.0.0.1 and a client connected to it.
type System interface {
	// NewCaller returns the call function one caller goroutine uses for
	// all its calls; every call echoes payload. It is made before the
	// measured window, so what it sets up is not counted per call.
	NewCaller(payload []byte) Caller
	// Close stops the client and then the server, bounded in time.
	Close() error
}

// A Caller makes one echo call and returns the echoed payload, which stays
// valid until its next call. It is not safe for concurrent use: each caller
// goroutine has its own.
type Caller func(ctx context.Context) ([]byte, error)

// Options configure how systems are started.
type Options struct {
	// Conns is the number of TCP connections the ceiling's raw client
	// opens; 0 means as many as svrkit's client uses by default, so the
	// ceiling is measured on the same transport shape as svrkit.
	Conns int
	// GRPCConns is the number of grpc.ClientConns the gRPC side spreads
	// its callers over; 0 means one, gRPC-Go's recommended setup.
	GRPCConns int
	// EventLoops sets the gnet event loops of the svrkit and ceiling
	// servers; 0 means svrkit's default (half the CPUs, at least one) for both.
	EventLoops int
}

// system is an entry in the registry of stacks the harness knows.
type system struct {
	name  string
	about string
	// proto says whether the stack encodes the payload in protobuf
	// messages; its framework figures then have the messages' own
	// allocations subtracted.
	proto bool
	// extra stacks run only when asked for by name.
	extra bool
	start func(Options) (System, error)
}

// systems lists the stacks in the order tables show them.
var systems = []system{
	{
		name:  "svrkit",
		about: "svrkit.NewServer / svrkit.NewClient, default options",
		proto: true,
		start: func(o Options) (System, error) { return startSvrkit(o, &EchoServiceDesc, false) },
	},
	{
		name:  "svrkit-auth",
		about: "svrkit with service authentication: the server requires it, the client proves an identity the service lists as a caller",
		proto: true,
		extra: true,
		start: func(o Options) (System, error) { return startSvrkit(o, &EchoServiceDesc, true) },
	},
	{
		name:  "grpc",
		about: "gRPC-Go, one ClientConn, default options, insecure credentials",
		proto: true,
		start: startGRPC,
	},
	{
		name:  "ceiling",
		about: "raw gnet echo of svrkit/wire frames, no RPC layer, raw multiplexed client",
		proto: false,
		start: startCeiling,
	},
	{
		name:  "ceiling-proto",
		about: "the ceiling with protobuf: its server decodes each request and encodes a new response, its client encodes each request and decodes each response into a new message",
		proto: true,
		extra: true,
		start: startCeilingProto,
	},
	{
		name:  "ceiling-gnetclient",
		about: "the ceiling's server driven by a raw client on gnet's client event loops instead of Go's netpoller",
		proto: false,
		extra: true,
		start: startCeilingGnet,
	},
	{
		name:  "svrkit-inline",
		about: "svrkit with Echo declared NonBlocking, so it runs on the event loop",
		proto: true,
		extra: true,
		start: func(o Options) (System, error) { return startSvrkit(o, &EchoInlineServiceDesc, false) },
	},
	{
		name:  "svrkit-nooverload",
		about: "svrkit with overload control off (WithOverloadControl(0)): what admission costs a call",
		proto: true,
		extra: true,
		start: func(o Options) (System, error) {
			return startSvrkit(o, &EchoServiceDesc, false, svrkit.WithOverloadControl(0))
		},
	},
	{
		name:  "svrkit-client",
		about: "svrkit's client against the ceiling's server: the client's share of the distance to the ceiling (halves.go)",
		proto: true,
		extra: true,
		start: startSvrkitClientHalf,
	},
	{
		name:  "svrkit-server",
		about: "the ceiling's raw client against svrkit's server: the server's share of the distance to the ceiling (halves.go)",
		proto: true,
		extra: true,
		start: startSvrkitServerHalf,
	},
}

// SystemNames returns the names of the stacks the harness can run, in
// table order.
func SystemNames() []string {
	names := make([]string, 0, len(systems))
	for _, s := range systems {
		names = append(names, s.name)
	}
	return names
}

// DefaultSystems returns the stacks run when none are named: svrkit, gRPC
// and the ceiling.
func DefaultSystems() []string {
	var names []string
	for _, s := range systems {
		if !s.extra {
			names = append(names, s.name)
		}
	}
	return names
}

// SystemAbout returns a one-line description of the named stack.
func SystemAbout(name string) string {
	s, err := lookupSystem(name)
	if err != nil {
		return ""
	}
	return s.about
}

func lookupSystem(name string) (system, error) {
	for _, s := range systems {
		if s.name == name {
			return s, nil
		}
	}
	return system{}, fmt.Errorf("rpcbench: unknown system %q (have %s)", name, strings.Join(SystemNames(), ", "))
}

// Start starts the named stack.
func Start(name string, o Options) (System, error) {
	s, err := lookupSystem(name)
	if err != nil {
		return nil, err
	}
	return s.start(o)
}

// echoLen checks that an echo came back whole; the harness checks length
// only, so that comparing 16 KiB per call does not tax the stack being
// measured (the tests compare bytes).
func echoLen(got []byte, want int) error {
	if len(got) != want {
		return fmt.Errorf("rpcbench: echoed %d bytes, sent %d", len(got), want)
	}
	return nil
}

// echo is the method body all proto-based stacks run: it answers with the
// request's payload, as a real handler would, without copying it.
func echo(req *echopb.EchoRequest) *echopb.EchoResponse {
	return &echopb.EchoResponse{Payload: req.GetPayload()}
}

// stopWithin stops a system's server, giving it 10 seconds, for Close and
// for a start that fails after the server is up.
func stopWithin(stop func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return stop(ctx)
}
