package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter is an item that failed every delivery, kept with why, in the
// stream's dead-letter stream (named after it, with "_DEAD"). The dead
// letters stay until an operator deletes them; to try one again, publish
// its payload anew (with a new id: the old one may still be inside the
// duplicate window).
type DeadLetter struct {
	ID         string    // the item's id
	Key        string    // its key
	Payload    []byte    // its bytes
	Reason     string    // the last handler error, or why there was none
	Deliveries int       // how many times it was delivered
	Partition  int       // its partition
	Seq        uint64    // its position in the item stream
	Published  time.Time // when the item stream stored it
	// DeadSeq is its position in the dead-letter stream; DeadLetters
	// pages with it.
	DeadSeq uint64
	// Died is when the dead-letter stream stored it.
	Died time.Time
}

// Headers of a dead letter. Nats-Msg-Id is derived from the item's id so
// that dead-lettering the same delivery twice stores one copy.
const (
	hdrDeadID         = "Svrkit-Id"
	hdrDeadReason     = "Svrkit-Reason"
	hdrDeadDeliveries = "Svrkit-Deliveries"
	hdrDeadPartition  = "Svrkit-Partition"
	hdrDeadSeq        = "Svrkit-Seq"
	hdrDeadPublished  = "Svrkit-Published"
)

// maxReasonLen bounds the reason kept with a dead letter; a panic's stack
// is cut there.
const maxReasonLen = 2048

func encodeDeadLetter(d DeadLetter) nats.Header {
	return nats.Header{
		hdrID:             []string{"dead." + d.ID},
		hdrDeadID:         []string{d.ID},
		hdrKey:            []string{d.Key},
		hdrDeadReason:     []string{headerSafe(d.Reason, maxReasonLen)},
		hdrDeadDeliveries: []string{strconv.Itoa(d.Deliveries)},
		hdrDeadPartition:  []string{strconv.Itoa(d.Partition)},
		hdrDeadSeq:        []string{strconv.FormatUint(d.Seq, 10)},
		hdrDeadPublished:  []string{d.Published.UTC().Format(time.RFC3339Nano)},
	}
}

// headerSafe makes s fit on one header line: control characters become
// spaces, and it is cut to at most n bytes, on a rune boundary.
func headerSafe(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// decodeDeadLetter reads a dead letter's headers. It fails on a message
// that this package did not write (missing or malformed headers), so that
// a stray message in the dead-letter subject is reported, not misread.
func decodeDeadLetter(h nats.Header) (DeadLetter, error) {
	d := DeadLetter{ID: h.Get(hdrDeadID), Key: h.Get(hdrKey), Reason: h.Get(hdrDeadReason)}
	if d.ID == "" {
		return d, errors.New("no " + hdrDeadID + " header")
	}
	var err error
	if d.Deliveries, err = strconv.Atoi(h.Get(hdrDeadDeliveries)); err != nil || d.Deliveries < 0 {
		return d, fmt.Errorf("bad %s header %q", hdrDeadDeliveries, h.Get(hdrDeadDeliveries))
	}
	if d.Partition, err = strconv.Atoi(h.Get(hdrDeadPartition)); err != nil || d.Partition < 0 || d.Partition >= MaxPartitions {
		return d, fmt.Errorf("bad %s header %q", hdrDeadPartition, h.Get(hdrDeadPartition))
	}
	if d.Seq, err = strconv.ParseUint(h.Get(hdrDeadSeq), 10, 64); err != nil {
		return d, fmt.Errorf("bad %s header %q", hdrDeadSeq, h.Get(hdrDeadSeq))
	}
	// The year check keeps what encodeDeadLetter (in UTC) can write back.
	if d.Published, err = time.Parse(time.RFC3339Nano, h.Get(hdrDeadPublished)); err != nil || d.Published.UTC().Year() < 1 || d.Published.UTC().Year() > 9999 {
		return d, fmt.Errorf("bad %s header %q", hdrDeadPublished, h.Get(hdrDeadPublished))
	}
	return d, nil
}

// DeadLetters returns up to max dead letters stored after position after
// in the dead-letter stream, oldest first; pass the last one's DeadSeq to
// read on. It returns fewer (none) at the end.
func (c *Client) DeadLetters(ctx context.Context, after uint64, max int) ([]DeadLetter, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	var s jetstream.Stream
	err := retry(ctx, "dead letters", func(ctx context.Context) error {
		var err error
		s, err = c.js.Stream(ctx, c.deadStream())
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []DeadLetter
	for seq := after + 1; len(out) < max; {
		var raw *jetstream.RawStreamMsg
		err := retry(ctx, "dead letters", func(ctx context.Context) error {
			var err error
			raw, err = s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(c.dead))
			return err
		})
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return out, err
		}
		d, err := decodeDeadLetter(raw.Header)
		if err != nil {
			return out, fmt.Errorf("queue: dead letter at %d: %w", raw.Sequence, err)
		}
		d.Payload, d.DeadSeq, d.Died = raw.Data, raw.Sequence, raw.Time
		out = append(out, d)
		seq = raw.Sequence + 1
	}
	return out, nil
}
