// Package rpcbench measures svrkit side by side with gRPC-Go and with a raw
// gnet echo that is the ceiling for svrkit's transport, all serving the same
// echo method from one .proto (echo.proto; message code in echopb, generated
// by protoc-gen-go and protoc-gen-go-grpc). The command is
// `go run ./tools/rpcbench`; BenchmarkEcho runs the same systems under
// testing.B.
//
// # The systems
//
//   - svrkit: svrkit.NewServer and svrkit.NewClient with default options;
//     the echo handler runs on a worker goroutine (EchoServiceDesc, written
//     by hand until protoc-gen-svrkit generates it).
//   - grpc: gRPC-Go with default server and dial options, one ClientConn
//     (HTTP/2 multiplexes all callers over it, as gRPC-Go recommends),
//     plaintext because svrkit has no TLS either. Options.GRPCConns spreads
//     callers over more ClientConns for comparison at equal connection
//     counts.
//   - ceiling: a gnet server that parses svrkit/wire frames and echoes each
//     body in a response frame inline on the event loop, with no dispatch
//     and no protobuf, driven by a minimal multiplexed client over net.Conn
//     (request-id map, one coalescing writer at a time, one reader) with as
//     many connections as svrkit's client opens by default. See ceiling.go
//     for why its writer yields before writing.
//   - svrkit-inline (only when asked for): svrkit with the method declared
//     NonBlocking, so it runs on the event loop.
//   - ceiling-gnetclient (only when asked for): the ceiling's server driven
//     by a raw client on gnet's client event loops instead of the netpoller
//     (gnetclient.go), to choose svrkit's client transport by measurement.
//
// Every server listens on 127.0.0.1 with a free port in this process, and
// every call crosses real loopback TCP.
//
// # How a cell is measured
//
// A cell is one system, one payload size and one number of callers. Each
// caller is a goroutine in a closed loop: call, record the latency, call
// again. The harness collects garbage, runs the callers through a warm-up
// (so connections, buffers and pools reach their working size), then opens
// the measured window: it reads runtime.MemStats, lets the callers run for
// the configured duration, and reads MemStats again. A call counts if it
// completes inside the window; requests per second is those calls over the
// window's length.
//
// Latencies go into one log-linear histogram per caller goroutine (exact
// below 128 ns, within 1.6% above), preallocated and reused across cells,
// so recording allocates nothing and takes no lock; they are merged after
// the window and p50/p99/p999 read by nearest rank.
//
// Allocations and bytes per call are the MemStats deltas (Mallocs,
// TotalAlloc) over the window divided by the calls: client, server,
// protobuf and runtime together, since they share the process. The
// framework figures subtract what the protobuf messages of one echo cost by
// themselves (ProtoCost: decoding the request and the response into new
// messages, each copying the payload, and the handler's response struct;
// encoding into reused buffers allocates nothing). A stack that encodes into
// fresh buffers therefore shows that as framework allocation, which it is.
// The ceiling uses no protobuf, so nothing is subtracted from it.
//
// # Runs and noise
//
// Machines are noisy, so the matrix is run several times (Config.Runs) and
// every figure reported is the median of that figure over runs. Within a
// run the systems take turns cell by cell, so a slow stretch of the machine
// falls on all of them rather than on one. All systems are started once and
// stay up for the whole invocation; their idle event loops cost nothing
// measurable.
package rpcbench

//go:generate protoc --go_out=echopb --go_opt=paths=source_relative --go-grpc_out=echopb --go-grpc_opt=paths=source_relative echo.proto
