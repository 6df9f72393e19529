// Package link is the IM backend's client long link: the protocol between a
// client and a gateway (the gateway Logicsvr, idl/im/gateway.proto), written
// down precisely enough to implement a client from this comment, plus the Go
// pieces clients and the gateway share — the method table (Routes), the
// close reasons and the JSON envelope of WebSocket text messages.
//
// A long link carries the client's requests to any client-facing CGI and
// the server's pushes back, over one connection the client authenticates
// once. It sits beside the short path (plain HTTP to each Logicsvr's CGIs,
// idl/im/account.proto), which keeps working unchanged; Register and Login
// are made there, since a link needs a token before it opens.
//
// # Transports
//
// One gateway port serves both:
//
//   - TCP, for native clients: a byte stream of frames (below), client
//     first.
//   - WebSocket (RFC 6455), for browsers: GET ws://HOST:PORT/link. Each
//     WebSocket message is one link message: a binary message is one frame
//     exactly as on TCP, length prefix included; a text message is one JSON
//     object (see JSON messages). The first message, the auth, fixes the
//     connection's mode: the gateway answers in the same mode, and a
//     message in the other mode is a protocol error. No extensions
//     (permessage-deflate) and no subprotocol are negotiated. WebSocket
//     pings are answered with pongs; both count as activity.
//
// The gateway tells them apart by the first byte: "G" (an HTTP GET) starts
// a WebSocket handshake, anything else a TCP frame (whose first byte, the
// top of a length below 16 MiB, is 0).
//
// # Frames
//
// A TCP frame is a frame of svrkit's binary RPC protocol (package
// github.com/svrkit/svrkit/svrkit/wire, whose doc is the byte-level spec:
// 4-byte length prefix, 24-byte header, metadata, message and body
// sections, all integers big-endian). The long link uses its kinds so:
//
//	kind       dir   request id   cmdid          status   body
//	auth (8)   c→s   client's     0              0        the session token (UTF-8)
//	request(1) c→s   client's     link cmdid     0        the method's request (protobuf)
//	response(2)s→c   the request's 0             code     reply, or error details
//	ping (3)   c→s   any          0              0        any, at most 64 bytes
//	pong (4)   s→c   the ping's   0              0        the ping's body
//	cancel (6) c→s   a request's  0              0        empty
//	push (9)   s→c   0            push type      0        the push (protobuf)
//	goaway (5) s→c   0            0              reason   empty; message says why
//
// Fields not listed are 0. Request ids are the client's: non-zero, unique
// among its requests in flight on the connection (0 is the pushes'). The
// metadata section of client frames is ignored, except on auth (below), and
// so are a request's priority and flags: the gateway sets the call's
// priorities itself. A request's timeout field bounds the call in
// microseconds as in svrkit (0: the method's own timeout from the IDL).
//
// # Connecting and auth
//
// The client's first frame must be auth, carrying the token Login returned
// (idl/im/account.proto; the bare token, without "Bearer "). Metadata key
// "device-id" is optional: when present it must equal the token's device,
// or the token is refused as being for another device. The client sends
// nothing else until the auth's response:
//
//   - status 0 (ok): the body is an im.LinkAuthReply — the user, device and
//     token expiry, the heartbeat interval to use and the idle timeout the
//     gateway applies, the connection's id. The device is now online:
//     pushes may follow at any time.
//   - status 16 (unauthenticated) with the message "missing session
//     token", "invalid session token", "session expired; log in again" or
//     "session token is for another device": the gateway closes the
//     connection after it. Log in again (HTTP) before reconnecting.
//
// A connection that has not completed auth within the auth timeout (10s
// by default) is closed with goaway 16.
//
// After auth the client syncs (Sync, below) before anything else: pushes
// name only what changes after the device came online, so what changed
// while it was offline is found by that first sync.
//
// # Requests
//
// A request addresses a client-facing method by its link cmdid, unique
// across the backend: the service's base (option (im.link).base in the
// IDL, see idl/im/link.proto) plus the method's svrkit cmdid. Today:
//
//	100 + n  im.Account    101 Register, 102 Login, 103 GetProfile, 104 SetProfile,
//	                        105 Logout, 106 ChangePassword
//	200 + n  im.Contact    201 AddContact, 202 RemoveContact, 203 ListContacts
//	300 + n  im.Send       301 SendText, 302 SendVoice, 303 SendGroupText,
//	                        304 SendGroupVoice
//	400 + n  im.Sync       401 Sync
//	500 + n  im.SendMedia  501 StartUpload, 502 UploadChunk, 503 GetUpload,
//	                        504 CompleteUpload, 505 SendImage, 506 SendVideo,
//	                        507 DeleteMedia
//	600 + n  im.Group      601 CreateGroup, 602 InviteMembers, 603 LeaveGroup,
//	                        604 RemoveMember, 605 RenameGroup, 606 ListMembers,
//	                        607 ListMyGroups
//
// (An upload chunk bigger than MaxClientFrame cannot go over the link;
// clients upload over HTTP.)
//
// (Register and Login are reachable too, but a client has already logged
// in over HTTP by the time it has a link.)
// Routes (Default) is the table, built from the IDL; its String method
// prints it. The body is the method's request message and the response's
// body its reply, the same protobuf messages as over HTTP; the call acts
// for the connection's user and device, exactly as an HTTP call with the
// token would, with the same codes and messages. Link-level refusals:
//
//   - unknown cmdid: status 12 (unimplemented), "unknown link cmdid N";
//   - a body that does not decode: 3 (invalid_argument);
//   - more than 32 requests in flight on the connection, or the gateway at
//     its total limit: 8 (resource_exhausted), unrun;
//   - a request id already in flight: 3 (invalid_argument);
//   - the Logicsvr unreachable: 14 (unavailable), as over HTTP.
//
// None of these closes the connection. A failed response's body is empty
// or a google.rpc.Status with details only, as in svrkit (package wire).
// Responses come back in any order. A cancel frame abandons a request: the
// gateway cancels the call and sends no response.
//
// # Pushes
//
// A push frame's cmdid says what it is; a client ignores push types it
// does not know. Today there is one:
//
//	1  sync notify   body im.SyncNotify {type, version}
//
// A sync notify says the user's inbox of that type changed, up to that
// version; it carries no data. The client syncs (cmdid 401) over the same
// connection, unless its SyncKey already covers the version. Type 0 with
// version 0 asks the client to sync everything. Notifies are best effort:
// one may be lost (then the next one, or the sync after a reconnect,
// repairs it) and one may name something already synced. Correctness is
// Sync's alone: a client that syncs after every notify and after every
// (re)connect has every item exactly once.
//
// # Heartbeats and idle timeout
//
// A client with nothing else to send pings every heartbeat_ms (from the
// auth reply; 30s by default). The gateway closes a connection from which
// it has received nothing — no frame, no WebSocket ping — for idle_timeout_ms
// (90s by default) with goaway 4. The gateway does not ping: a client
// that hears nothing, pong included, for twice its heartbeat interval
// should assume the connection dead and reconnect.
//
// # Closing: goaway reasons
//
// The gateway closes a connection on its own only after a goaway frame
// whose status says why (on WebSocket: a close frame with code 4000 +
// status and the same reason text, cut to 123 bytes), except for a client
// that does not read (it would not read the goaway either):
//
//	status                  when                                           client
//	3  invalid_argument     a malformed frame (length, version, kind,      fix it; reconnect
//	                        sections), a second auth, a kind the client
//	                        may not send, mixed WebSocket modes
//	4  deadline_exceeded    nothing received for idle_timeout_ms           reconnect
//	8  resource_exhausted   a frame over the size limit                    fix it; reconnect
//	10 aborted              replaced: the same device authenticated        do NOT reconnect on
//	                        on another connection (here or on another      its own: another
//	                        gateway)                                       copy is in use
//	14 unavailable          the gateway is shutting down (requests         reconnect, with backoff
//	                        already received are still answered first)
//	16 unauthenticated      no auth within the auth timeout; the first     log in again if the
//	                        frame was not auth; the token expired while    token expired, then
//	                        connected                                      reconnect
//
// A client that does not read: when what the gateway holds for it passes
// 1 MiB (beyond what the kernel buffers), the connection is closed, with
// no goaway. Every connection that breaks otherwise (network, a gateway
// crash) is the client's to reconnect.
//
// Reconnect with exponential backoff and jitter (the Go client starts at
// 100ms and doubles to 10s), authenticate again and sync: that repairs
// whatever was missed meanwhile.
//
// # Limits
//
// A client frame (or WebSocket message) is at most MaxClientFrame bytes
// (128 KiB: a 48 KiB voice clip fits, base64 and JSON included); the
// gateway's frames are at most MaxServerFrame (4 MiB, svrkit's default). An
// over-long WebSocket handshake (over 8 KiB) is refused with HTTP 431.
//
// # JSON messages
//
// On a WebSocket in JSON mode each message is one JSON object (Message),
// its "type" one of the frame kinds by name. Bodies are the protobuf
// messages in protobuf's JSON mapping (protojson: 64-bit integers as
// strings, bytes as base64, enums by name). Client to gateway:
//
//	{"type":"auth", "token":"...", "device_id":"web"}          device_id optional
//	{"type":"request", "id":1, "cmd":301, "body":{...}}         or "method":"im.Send/SendText" instead of cmd
//	{"type":"request", "id":2, "method":"im.Sync/Sync", "timeout_ms":5000, "body":{"syncKey":"..."}}
//	{"type":"ping", "id":3}
//	{"type":"cancel", "id":2}
//
// Gateway to client:
//
//	{"type":"response", "id":1, "body":{...}}                   success
//	{"type":"response", "id":1, "code":"not_found", "message":"no user 42"}
//	{"type":"push", "cmd":1, "body":{"type":"SYNC_TYPE_MESSAGES", "version":"12"}}
//	{"type":"pong", "id":3}
//	{"type":"goaway", "code":"unavailable", "message":"gateway is shutting down"}
//
// The auth's response carries the auth's id, like any response
// ({"type":"response","id":1,"body":{LinkAuthReply}} for an auth sent with
// "id":1; an id of 0 is left out, as every zero field is), or a code such
// as "unauthenticated". Codes are svrkit's names
// (svrkit.Code.String: "invalid_argument", ...).
package link
