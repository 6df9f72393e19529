// Package wire defines svrkit's binary frame format: how a request, a
// response and the control messages around them are laid out on a TCP
// connection. It is deliberately small and fixed so that a client in another
// language can be written from this comment alone.
//
// # Frame layout
//
// Every frame is a 4-byte length prefix followed by that many bytes. All
// integers are unsigned and big-endian.
//
//	offset size field
//	     0    4 length     bytes that follow this field (>= 24)
//	     4    1 version    1 for this specification
//	     5    1 kind       1 request, 2 response, 3 ping, 4 pong, 5 goaway,
//	                       6 cancel, 7 hello, 8 auth, 9 push
//	     6    1 priority   on requests: business priority for admission
//	                       control (0 = unset; higher is more important);
//	                       on responses: the business part of the server's
//	                       admission level (see Overload control)
//	     7    1 flags      on requests: bits 0–6 the user priority (1–127;
//	                       0 = unset), bit 7 reserved; on responses: bits
//	                       0–6 the user part of the admission level; on
//	                       hello: bit 0 authentication required. Other bits
//	                       are reserved: senders write 0, receivers ignore them
//	     8    4 request id chosen by the client, unique among its in-flight
//	                       requests on one connection; responses carry it back
//	    12    4 cmdid      the method's numeric id (0 on control frames)
//	    16    4 timeout    on requests: microseconds the caller will still
//	                       wait, 0 = no deadline; on responses: the method's
//	                       admission level (see Overload control), 0 = none
//	    20    4 status     status code on responses (0 = OK); 0 elsewhere
//	    24    2 metalen    bytes of the metadata section
//	    26    2 msglen     bytes of the status message section
//	    28    … metadata   metalen bytes
//	     …    … message    msglen bytes of UTF-8 (a readable error message)
//	     …    … body       the rest: the protobuf-encoded request or response
//
// The metadata section is a sequence of entries, each
//
//	2 key length, key bytes, 2 value length, value bytes
//
// and the entries must fill metalen exactly. Keys are lower-case ASCII by
// convention; a key may repeat.
//
// # Kinds
//
//   - request: client to server. Body is the request message.
//   - response: server to client, same request id. Status 0 means the body is
//     the response message; any other status means the call failed and the
//     message section says why. A failed call's body is then empty, or a
//     google.rpc.Status message (google/rpc/status.proto) of which only
//     field 3, details (repeated google.protobuf.Any), is set: typed error
//     details. Its code and message fields are unset; the frame's status and
//     message section are authoritative. A receiver that does not want the
//     details ignores the body.
//   - ping / pong: either side may ping; the peer answers a pong with the same
//     request id and body. Used for health checks and idle detection.
//   - goaway: server to client. The server accepts no new requests on this
//     connection; requests already received are still answered. The client
//     should open a new connection for further calls.
//   - cancel: client to server. The caller of request id no longer waits; the
//     server cancels the handler's context and sends no response.
//   - hello: server to client, the first frame on every connection, sent as
//     soon as the server accepts it. Body: NonceSize random bytes, the
//     connection's nonce. Flags bit 0 (FlagAuthRequired) says the server
//     requires service authentication: until the client has sent a valid
//     auth frame, every request is answered with status 16
//     (unauthenticated). A client reads the hello before it sends anything.
//   - auth: client to server, at most once, right after the hello and
//     before any request (requests may follow it in the same write).
//     Metadata key "identity": who is calling (a Logicsvr name, or an
//     operator's). Body: the Ed25519 signature (RFC 8032, 64 bytes) of
//     AuthMessage(nonce, identity), the bytes "svrkit-auth-v1", one zero
//     byte, the nonce and the identity. The server checks it with the
//     public key it trusts for that identity. The server sends nothing back
//     for an auth frame: a refused one leaves the connection
//     unauthenticated, and its requests are answered status 16. The nonce
//     is fresh per connection, so a recorded auth frame is worth nothing
//     on another connection. Nothing after the handshake is signed or
//     encrypted: the handshake proves who connected, not that every later
//     byte came from them.
//   - push: server to client, unsolicited: a message the client did not
//     ask for, with request id 0. Cmdid says what kind of push it is and
//     the body carries it; the protocol that uses pushes defines both (the
//     IM backend's client long link does, in package
//     github.com/svrkit/svrkit/examples/im/link). svrkit's own RPC never
//     sends one, and its servers close a connection that sends one.
//
// # Overload control
//
// A request's admission key is business<<7 | user, from its priority and
// flags (an unset business priority counts as 128; an unset user priority
// as one the server picks). A server under overload refuses requests whose
// key is below its admission level with status 17 (overloaded), unrun,
// and reports its current level on every response: priority = level>>7,
// flags = level&0x7f (both 0 when it admits everything). A client may
// refuse locally, without sending, requests below the level its endpoint
// last reported, for as long as the report is recent.
//
// A response's timeout field carries the level of its method, when the
// server knows one above 0: the level at which the services this method
// calls refuse requests, learnt from their own responses (a request of the
// method below it would be refused further down the chain). The server
// refuses the method's requests below it with status 17, and a client may
// refuse them locally as above, for that method only. A receiver that
// ignores the field loses nothing but the early refusal.
//
// # Limits and errors
//
// A receiver enforces a maximum frame size (DefaultMaxFrameSize unless
// configured) on the length prefix, before it allocates anything. A frame
// whose length is over the limit, whose version is unknown, whose sections do
// not fit in its length, or whose metadata entries do not fill their section
// is a protocol error: the receiver closes the connection. There is no way to
// resynchronise a byte stream once a length is wrong.
//
// Encoding and decoding a header do not allocate; decoding returns views into
// the caller's buffer.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Version is the protocol version this package writes and accepts.
const Version = 1

const (
	// PrefixSize is the size of the length prefix.
	PrefixSize = 4
	// HeaderSize is the size of the fixed header after the prefix.
	HeaderSize = 24
	// MinFrameSize is the smallest complete frame: prefix plus header.
	MinFrameSize = PrefixSize + HeaderSize
	// DefaultMaxFrameSize bounds a frame (prefix included) unless a server
	// or client configures another limit.
	DefaultMaxFrameSize = 4 << 20
	// MaxTimeout is the largest timeout a frame can carry (about 71 minutes);
	// longer deadlines are sent as MaxTimeout.
	MaxTimeout = time.Duration(math.MaxUint32) * time.Microsecond
)

// Kind says what a frame is for.
type Kind uint8

// Frame kinds.
const (
	KindRequest  Kind = 1
	KindResponse Kind = 2
	KindPing     Kind = 3
	KindPong     Kind = 4
	KindGoAway   Kind = 5
	KindCancel   Kind = 6
	KindHello    Kind = 7
	KindAuth     Kind = 8
	KindPush     Kind = 9
)

// FlagAuthRequired, set on a hello frame, says the server requires
// service authentication.
const FlagAuthRequired uint8 = 1

// NonceSize is the size of a hello frame's nonce.
const NonceSize = 32

// AuthMessage returns the bytes an auth frame's signature covers.
func AuthMessage(nonce []byte, identity string) []byte {
	const domain = "svrkit-auth-v1\x00"
	b := make([]byte, 0, len(domain)+len(nonce)+len(identity))
	b = append(b, domain...)
	b = append(b, nonce...)
	return append(b, identity...)
}

func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindResponse:
		return "response"
	case KindPing:
		return "ping"
	case KindPong:
		return "pong"
	case KindGoAway:
		return "goaway"
	case KindCancel:
		return "cancel"
	case KindHello:
		return "hello"
	case KindAuth:
		return "auth"
	case KindPush:
		return "push"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Protocol errors. A receiver that gets one closes the connection.
var (
	ErrTooLarge  = errors.New("wire: frame exceeds maximum size")
	ErrTooSmall  = errors.New("wire: frame shorter than header")
	ErrVersion   = errors.New("wire: unsupported protocol version")
	ErrKind      = errors.New("wire: unknown frame kind")
	ErrSections  = errors.New("wire: metadata and message do not fit in frame")
	ErrMetadata  = errors.New("wire: malformed metadata section")
	ErrTruncated = errors.New("wire: truncated frame")
)

// Header is the fixed part of a frame.
type Header struct {
	Kind     Kind
	Priority uint8
	Flags    uint8
	ReqID    uint32
	CmdID    uint32
	// Timeout is in microseconds on requests; 0 means no deadline. On
	// responses it is the method's admission level (see the package doc).
	Timeout uint32
	Status  uint32
}

// TimeoutFromDuration converts a remaining time to the frame's field,
// clamping to [1µs, MaxTimeout] so a positive deadline never reads as "none".
func TimeoutFromDuration(d time.Duration) uint32 {
	if d <= 0 {
		return 1
	}
	if d >= MaxTimeout {
		return math.MaxUint32
	}
	us := d / time.Microsecond
	if us == 0 {
		return 1
	}
	return uint32(us)
}

// Frame is a decoded frame. Meta, Msg and Body alias the buffer it was
// parsed from.
type Frame struct {
	Header
	Meta []byte
	Msg  []byte
	Body []byte
}

// FrameSize reads the length prefix at the start of b and returns the size of
// the whole frame, prefix included. It needs only PrefixSize bytes, so a
// reader can check the limit before buffering or allocating the rest.
// max <= 0 means DefaultMaxFrameSize.
func FrameSize(b []byte, max int) (int, error) {
	if len(b) < PrefixSize {
		return 0, ErrTruncated
	}
	if max <= 0 {
		max = DefaultMaxFrameSize
	}
	n := uint64(binary.BigEndian.Uint32(b))
	if n < HeaderSize {
		return 0, ErrTooSmall
	}
	if n+PrefixSize > uint64(max) {
		return 0, ErrTooLarge
	}
	return int(n) + PrefixSize, nil
}

// Parse decodes one whole frame, prefix included, from b. len(b) must equal
// the size FrameSize reported. The result aliases b.
func Parse(b []byte, max int) (Frame, error) {
	var f Frame
	size, err := FrameSize(b, max)
	if err != nil {
		return f, err
	}
	if len(b) < size {
		return f, ErrTruncated
	}
	b = b[PrefixSize:size]
	if b[0] != Version {
		return f, ErrVersion
	}
	f.Kind = Kind(b[1])
	if f.Kind < KindRequest || f.Kind > KindPush {
		return f, ErrKind
	}
	f.Priority = b[2]
	f.Flags = b[3]
	f.ReqID = binary.BigEndian.Uint32(b[4:])
	f.CmdID = binary.BigEndian.Uint32(b[8:])
	f.Timeout = binary.BigEndian.Uint32(b[12:])
	f.Status = binary.BigEndian.Uint32(b[16:])
	metaLen := int(binary.BigEndian.Uint16(b[20:]))
	msgLen := int(binary.BigEndian.Uint16(b[22:]))
	rest := b[HeaderSize:]
	if metaLen+msgLen > len(rest) {
		return f, ErrSections
	}
	f.Meta = rest[:metaLen:metaLen]
	f.Msg = rest[metaLen : metaLen+msgLen : metaLen+msgLen]
	f.Body = rest[metaLen+msgLen:]
	if err := ValidateMeta(f.Meta); err != nil {
		return f, err
	}
	return f, nil
}

// AppendFrame appends a complete frame to dst and returns the extended
// slice. meta must be a metadata section built with AppendMeta (or nil); msg
// longer than 65535 bytes is truncated. It returns ErrTooLarge when the frame
// would exceed max (<= 0 means DefaultMaxFrameSize) or a section overflows
// its length field.
func AppendFrame(dst []byte, h *Header, meta []byte, msg string, body []byte, max int) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxFrameSize
	}
	if len(msg) > math.MaxUint16 {
		msg = msg[:math.MaxUint16]
	}
	if len(meta) > math.MaxUint16 {
		return dst, ErrTooLarge
	}
	n := HeaderSize + len(meta) + len(msg) + len(body)
	if n+PrefixSize > max {
		return dst, ErrTooLarge
	}
	var hb [PrefixSize + HeaderSize]byte
	binary.BigEndian.PutUint32(hb[0:], uint32(n))
	hb[4] = Version
	hb[5] = byte(h.Kind)
	hb[6] = h.Priority
	hb[7] = h.Flags
	binary.BigEndian.PutUint32(hb[8:], h.ReqID)
	binary.BigEndian.PutUint32(hb[12:], h.CmdID)
	binary.BigEndian.PutUint32(hb[16:], h.Timeout)
	binary.BigEndian.PutUint32(hb[20:], h.Status)
	binary.BigEndian.PutUint16(hb[24:], uint16(len(meta)))
	binary.BigEndian.PutUint16(hb[26:], uint16(len(msg)))
	dst = append(dst, hb[:]...)
	dst = append(dst, meta...)
	dst = append(dst, msg...)
	dst = append(dst, body...)
	return dst, nil
}

// AppendMeta appends one metadata entry to a metadata section. Keys and
// values longer than 65535 bytes are truncated.
func AppendMeta(dst []byte, key, value string) []byte {
	if len(key) > math.MaxUint16 {
		key = key[:math.MaxUint16]
	}
	if len(value) > math.MaxUint16 {
		value = value[:math.MaxUint16]
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(key)))
	dst = append(dst, key...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(value)))
	return append(dst, value...)
}

// ValidateMeta reports whether meta is a well-formed metadata section.
func ValidateMeta(meta []byte) error {
	return RangeMeta(meta, func(_, _ []byte) bool { return true })
}

// RangeMeta calls fn for each entry of a metadata section in order, until fn
// returns false. The slices alias meta.
func RangeMeta(meta []byte, fn func(key, value []byte) bool) error {
	for len(meta) > 0 {
		if len(meta) < 2 {
			return ErrMetadata
		}
		kl := int(binary.BigEndian.Uint16(meta))
		meta = meta[2:]
		if len(meta) < kl+2 {
			return ErrMetadata
		}
		k := meta[:kl]
		meta = meta[kl:]
		vl := int(binary.BigEndian.Uint16(meta))
		meta = meta[2:]
		if len(meta) < vl {
			return ErrMetadata
		}
		v := meta[:vl]
		meta = meta[vl:]
		if !fn(k, v) {
			return nil
		}
	}
	return nil
}
