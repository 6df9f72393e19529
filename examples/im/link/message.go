package link

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/wire"
)

// Limits of the protocol (see the package doc).
const (
	// MaxClientFrame bounds a client's frame or WebSocket message.
	MaxClientFrame = 128 << 10
	// MaxServerFrame bounds the gateway's frames and messages.
	MaxServerFrame = wire.DefaultMaxFrameSize
	// MaxPingBody bounds a ping's body (a WebSocket control frame's payload
	// is at most 125 bytes; the link keeps less).
	MaxPingBody = 64
	// MaxHandshake bounds a WebSocket upgrade request.
	MaxHandshake = 8 << 10
	// WebSocketPath is where the gateway accepts WebSocket upgrades.
	WebSocketPath = "/link"
)

// Push types: a push frame's cmdid.
const (
	// PushSyncNotify: the body is an im.SyncNotify.
	PushSyncNotify uint32 = 1
)

// MetaDeviceID is the optional auth frame metadata key naming the device
// the client believes its token is for.
const MetaDeviceID = "device-id"

// The auth refusals beyond package session's: the messages clients see.
var (
	ErrWrongDevice = svrkit.NewError(svrkit.Unauthenticated, "session token is for another device")
	ErrAuthFirst   = svrkit.NewError(svrkit.Unauthenticated, "the first frame must be auth")
	ErrAuthTimeout = svrkit.NewError(svrkit.Unauthenticated, "no auth within the auth timeout")
	ErrReplaced    = svrkit.NewError(svrkit.Aborted, "replaced by a newer login of this device")
	ErrShutdown    = svrkit.NewError(svrkit.Unavailable, "gateway is shutting down")
)

// WebSocket close codes: 4000 + the goaway status, in the range RFC 6455
// leaves to applications.
const closeCodeBase = 4000

// CloseCode is the WebSocket close code of a goaway status.
func CloseCode(c svrkit.Code) uint16 {
	if c >= 1000 {
		c = svrkit.Unknown
	}
	return uint16(closeCodeBase + c)
}

// CodeOfClose returns the goaway status a WebSocket close code stands for,
// and false for a code outside 4000–4999.
func CodeOfClose(code uint16) (svrkit.Code, bool) {
	if code < closeCodeBase || code >= closeCodeBase+1000 {
		return 0, false
	}
	return svrkit.Code(code - closeCodeBase), true
}

// IsFinal reports whether a goaway (or close) status tells the client not
// to reconnect on its own: it was replaced by another login of the device,
// or its session is no longer valid (log in again first).
func IsFinal(c svrkit.Code) bool { return c == svrkit.Aborted || c == svrkit.Unauthenticated }

// Message is a JSON-mode WebSocket message (see the package doc): one
// frame, its kind in Type.
type Message struct {
	Type      string          `json:"type"`
	ID        uint32          `json:"id,omitempty"`
	Token     string          `json:"token,omitempty"`
	DeviceID  string          `json:"device_id,omitempty"`
	Cmd       uint32          `json:"cmd,omitempty"`
	Method    string          `json:"method,omitempty"`
	TimeoutMs uint32          `json:"timeout_ms,omitempty"`
	Body      json.RawMessage `json:"body,omitempty"`
	Code      string          `json:"code,omitempty"`
	Text      string          `json:"message,omitempty"`
}

// Message types: the frame kinds by name.
const (
	TypeAuth     = "auth"
	TypeRequest  = "request"
	TypeResponse = "response"
	TypePing     = "ping"
	TypePong     = "pong"
	TypeCancel   = "cancel"
	TypePush     = "push"
	TypeGoAway   = "goaway"
)

// ParseMessage decodes a JSON-mode message. Unknown fields are ignored (a
// newer client may send more); a message that is not a JSON object, or has
// no type, is an error.
func ParseMessage(b []byte) (*Message, error) {
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("link: malformed JSON message: %w", err)
	}
	if m.Type == "" {
		return nil, errors.New(`link: JSON message without "type"`)
	}
	return &m, nil
}

// Err returns the error a failed response or a goaway message carries, or
// nil when its code is empty or "ok".
func (m *Message) Err() error {
	if m.Code == "" || m.Code == "ok" {
		return nil
	}
	c, ok := svrkit.CodeFromString(m.Code)
	if !ok {
		c = svrkit.Unknown
	}
	return svrkit.NewError(c, m.Text)
}
