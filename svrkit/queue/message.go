package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Limits on what a message carries besides its payload.
const (
	MaxKeyLen = 256
	MaxIDLen  = 128
)

// Headers of an item in the stream. Nats-Msg-Id is JetStream's own: the
// server drops a second item with the same id within the duplicate window.
const (
	hdrID  = jetstream.MsgIDHeader
	hdrKey = "Svrkit-Key"
)

// Message is one delivery of an item to a handler. Its methods are safe to
// call from the handler's goroutine and from goroutines it starts, until
// the handler returns.
type Message struct {
	id         string
	key        string
	payload    []byte
	partition  int
	seq        uint64
	deliveries int
	published  time.Time

	msg     *nats.Msg
	settled atomic.Int32 // unsettled, or how the handler settled it
}

// How a message was settled.
const (
	unsettled int32 = iota
	settledAck
	settledNak
)

// ID returns the item's id: unique per item, the same on every delivery of
// it. A handler whose effects must happen once records it with them.
func (m *Message) ID() string { return m.id }

// Key returns the key the item was published with.
func (m *Message) Key() string { return m.key }

// Payload returns the item's bytes. The handler may keep them.
func (m *Message) Payload() []byte { return m.payload }

// Partition returns the partition the item's key maps to.
func (m *Message) Partition() int { return m.partition }

// Seq returns the item's position in the stream, increasing in publish
// order (across partitions).
func (m *Message) Seq() uint64 { return m.seq }

// Deliveries returns how many times the item has been delivered, this
// delivery included: 1 the first time.
func (m *Message) Deliveries() int { return m.deliveries }

// Published returns when the server stored the item.
func (m *Message) Published() time.Time { return m.published }

// errSettled is returned by Ack and Nak once the message is settled.
var errSettled = errors.New("queue: message already acknowledged or refused")

// Ack acknowledges the message now and waits until the server has recorded
// it (or ctx is done), for a handler that must know before it goes on.
// A handler need not call it: returning nil acknowledges.
func (m *Message) Ack(ctx context.Context) error {
	if !m.settled.CompareAndSwap(unsettled, settledAck) {
		return errSettled
	}
	if err := m.msg.AckSync(nats.Context(ctx)); err != nil {
		m.settled.Store(unsettled)
		return fmt.Errorf("queue: ack %s: %w", m.id, err)
	}
	return nil
}

// Nak refuses the message: the server delivers it again after delay, and
// its partition waits until then. It counts as a failed delivery. A handler
// may instead return an error, which does the same with the consumer's
// backoff as the delay.
func (m *Message) Nak(delay time.Duration) error {
	if !m.settled.CompareAndSwap(unsettled, settledNak) {
		return errSettled
	}
	if err := m.msg.NakWithDelay(delay); err != nil {
		m.settled.Store(unsettled)
		return fmt.Errorf("queue: nak %s: %w", m.id, err)
	}
	return nil
}

// itemHeader builds an item's headers.
func itemHeader(id, key string) nats.Header {
	return nats.Header{hdrID: []string{id}, hdrKey: []string{key}}
}

// decodeItem reads an item's id and key from its headers. An item lacking
// them was not published through this package; it still gets an id (its
// stream position) so that a handler can tell deliveries apart.
func decodeItem(h nats.Header, seq uint64) (id, key string) {
	id = h.Get(hdrID)
	if id == "" {
		id = "seq-" + strconv.FormatUint(seq, 10)
	}
	return id, h.Get(hdrKey)
}

// checkKey and checkID keep keys and ids to what a NATS header line can
// carry: no control characters (a line break would end the header).
func checkKey(key string) error { return checkHeaderValue(ErrInvalidKey, key, MaxKeyLen) }
func checkID(id string) error   { return checkHeaderValue(ErrInvalidID, id, MaxIDLen) }

func checkHeaderValue(kind error, s string, max int) error {
	if s == "" {
		return fmt.Errorf("%w: empty", kind)
	}
	if len(s) > max {
		return fmt.Errorf("%w: %d bytes, at most %d", kind, len(s), max)
	}
	if i := controlAt(s); i >= 0 {
		return fmt.Errorf("%w: control character at byte %d", kind, i)
	}
	return nil
}

func controlAt(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return i
		}
	}
	return -1
}

// headerLen is how many bytes nats.go spends on h on the wire, which
// count against the server's maximum payload.
func headerLen(h nats.Header) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	return n
}
