// Package svrkit is a binary RPC runtime for Go backends in the style of
// WeChat's Svrkit: protobuf messages in length-prefixed frames over TCP, a
// server on gnet's event loops, a multiplexing client, static routing tables
// and codes modelled on gRPC's.
//
// Most users never call this package directly: protoc-gen-svrkit generates a
// typed client and a registration function per service, and the logicsvr
// package hosts the result. What the generated code relies on is small:
//
//   - MethodDesc and ServiceDesc describe methods (cmdid, timeouts, routing
//     key, how to decode a request and call the implementation).
//   - Server (NewServer, RegisterService, Start, Shutdown) serves them.
//   - Client (NewClient, Invoke) calls them; it implements Invoker.
//   - *Error carries a Code and a message across the wire; CodeOf reads the
//     code of any error.
//
// # A call, end to end
//
// The client marshals the request into a pooled buffer, picks an endpoint
// (round robin, or rendezvous hash of the method's routing key so one user's
// storage calls always reach the same node), picks one of that endpoint's
// connections, and appends a request frame (see package wire) with a fresh
// request id and the time left before the caller's deadline. The first caller
// to find the connection idle writes everything pending; the others only
// append, so one write carries many frames under load.
//
// The server's event loop cuts the frame out of its input buffer, checks the
// size limit on the prefix before reading further, looks up the cmdid,
// decodes the request and admits it against the per-connection and total
// concurrency limits (over them: ResourceExhausted at once — a bounded queue
// is what keeps an overloaded server answering). The call joins the worker
// pool's queue: a worker finishing another call takes it without parking, or
// a parked worker is woken. The handler runs with a context carrying the
// caller's deadline and metadata; a panic becomes an Internal status. The
// response frame joins the connection's pending buffer. If no other call is
// running on that connection the worker writes it to the socket itself;
// otherwise it goes out in the next batched write from the event loop, with
// every response that finished meanwhile (see Server for the flush policy
// and why).
//
// The client's reader goroutine matches the response to its call by request
// id, decodes the body straight into the caller's message and wakes it.
// Responses arrive in any order. (Decoding in the calling goroutine instead,
// from a copy, measured no better.)
//
// # Sizing and performance
//
// The server runs half as many gnet event loops as CPUs: a loop blocked in
// epoll_wait keeps its Go scheduler P, and with one loop per P the handlers
// the loops wake wait for the runtime to take a P back (see WithEventLoops).
// The client keeps DefaultConnsPerEndpoint connections per endpoint.
//
// What a call costs beyond the transport itself (tools/rpcbench compares
// svrkit with a raw gnet echo of the same frames): four protobuf passes and
// their allocations (the GC then scans the stacks of every parked caller and
// worker), the hand-off from the event loop to a worker, and the worker's
// hand-back to the loop for the batched write (an eventfd wake-up and, in
// gnet, three allocations per batch). A NonBlocking method skips both
// hand-offs, which pays while the event loop keeps up; with many callers
// and larger payloads one loop doing all the protobuf work falls behind the
// workers. Declare methods NonBlocking when they never block and are cheap.
//
// One caller's round trip is bounded below by the transport: a gnet loop is
// an OS thread woken from epoll_wait for every request, where Go's netpoller
// (gRPC-Go's transport) can hand readiness to a running scheduler thread.
// Most of a lone call's time is waking idle threads, which is why a single
// caller's latency improves when other work keeps the CPUs awake.
// tools/rpcbench and the README keep the figures.
//
// # Overload control
//
// Every server sheds load by priority when it falls behind, after WeChat's
// DAGOR (see admission.go for the mechanism and priority.go for where a
// request's priorities come from): the business priority of the method
// from the IDL, inherited along the call chain, and a user priority hashed
// from the user (rotating hourly). Refusals are immediate, unrun, with
// status Overloaded; clients learn the server's admission level from its
// responses and refuse locally what it would refuse. Server.AdmissionStats
// shows the level, the queuing time and what was admitted and shed.
//
// # Failure semantics
//
// Every failure a caller sees is an *Error with a code:
//
//   - the deadline passes: DeadlineExceeded (client and server both enforce it;
//     the server cancels the handler's context);
//   - the caller's context is canceled: Canceled, and a cancel frame tells the
//     server to cancel the handler and send nothing;
//   - the connection breaks, the endpoint cannot be dialed, or the server is
//     shutting down: Unavailable;
//   - the server is overloaded and sheds the request's priority:
//     Overloaded (unrun; retried on another endpoint when the call is not
//     routed by key, never on the same one);
//   - unknown cmdid: Unimplemented; undecodable request: InvalidArgument;
//     too many concurrent calls or an oversize frame: ResourceExhausted;
//     handler panic: Internal.
//
// A call that never reached the wire is retried on another endpoint; one that
// may have reached it is retried only when its method is Idempotent. A peer
// that sends a malformed frame is disconnected: a byte stream cannot be
// resynchronised once a length is wrong.
//
// # What it does not do
//
// No streaming (unary calls only), no TLS (run it on a trusted network or
// behind a proxy: service authentication proves who connected, it does not
// hide or protect the bytes). A stalled peer costs bounded memory and no
// missed deadlines, but requests already queued behind it are not moved to
// another connection. Overload control measures queuing for workers, so a
// server whose handlers all wait on a slow dependency (workers blocked, the
// CPU idle) is not detected as overloaded by it; the concurrency limits
// bound that case.
package svrkit
