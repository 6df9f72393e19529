package queue

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// puller fetches one partition's messages one at a time, speaking
// JetStream's pull protocol directly: a request for one message on a
// subscription that lives as long as the puller.
//
// nats.go's own iterator (Consumer.Messages) was the first choice, but
// with one message per pull it can skip sending a pull request (when the
// message arrives before its goroutine has marked the previous request as
// sent) and then waits for missing heartbeats to notice: the partition
// stalled for two heartbeat intervals, about once in 100,000 messages on a
// busy machine. Here the request is sent before waiting, always; and
// because the subscription outlives every request, a message the server
// sends is never dropped on a closed inbox.
type puller struct {
	nc      *nats.Conn
	subject string // the consumer's next-message API subject
	sub     *nats.Subscription
	msgs    chan *nats.Msg
	request []byte

	pending bool        // a request is at the server
	timer   *time.Timer // fires when the server has gone quiet
}

// Pull settings. The server answers a request within pullExpiry (with a
// message or a 408) and sends a heartbeat every pullHeartbeat while it
// waits; pullSilence without either means the request is lost (its
// server died, the connection was re-established, the consumer lost its
// leader), and a new one is sent. pullSilence bounds how long a partition
// can stall after a fail-over.
const (
	pullExpiry    = 10 * time.Second
	pullHeartbeat = 2 * time.Second
	pullSilence   = 5 * time.Second
)

// errConsumerGone is returned by next when the server-side consumer was
// deleted: it must be created again.
var errConsumerGone = errors.New("queue: partition consumer deleted")

func newPuller(nc *nats.Conn, stream, consumer string) (*puller, error) {
	request, err := json.Marshal(struct {
		Batch     int           `json:"batch"`
		Expires   time.Duration `json:"expires"`
		Heartbeat time.Duration `json:"idle_heartbeat"`
	}{1, pullExpiry, pullHeartbeat})
	if err != nil {
		return nil, err
	}
	p := &puller{nc: nc, subject: "$JS.API.CONSUMER.MSG.NEXT." + stream + "." + consumer,
		msgs: make(chan *nats.Msg, 8), request: request}
	p.sub, err = nc.ChanSubscribe(nc.NewInbox(), p.msgs)
	if err != nil {
		return nil, err
	}
	p.timer = time.NewTimer(pullSilence)
	return p, nil
}

// next returns the partition's next message, waiting until one comes or
// ctx is done.
func (p *puller) next(ctx context.Context) (*nats.Msg, error) {
	for {
		if !p.pending {
			if err := p.nc.PublishRequest(p.subject, p.sub.Subject, p.request); err != nil {
				return nil, err
			}
			p.pending = true
		}
		p.timer.Reset(pullSilence)
		select {
		case m := <-p.msgs:
			status := m.Header.Get("Status")
			if status == "" { // a message: it ends the one-message request
				p.pending = false
				return m, nil
			}
			switch status {
			case "100": // idle heartbeat: the request is alive
			case "409":
				p.pending = false
				if strings.Contains(strings.ToLower(m.Header.Get("Description")), "consumer deleted") {
					return nil, errConsumerGone
				}
			default: // 404, 408: the request ended empty; others: it ended
				p.pending = false
			}
		case <-p.timer.C:
			p.pending = false
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// close drops the subscription and hands back, for immediate redelivery,
// a message that arrived but was not taken. One the server sends after
// this is delivered again after the ack wait.
func (p *puller) close() {
	p.timer.Stop()
	_ = p.sub.Unsubscribe() // fails only on a closed connection, which dropped it already
	for {
		select {
		case m := <-p.msgs:
			if m.Header.Get("Status") == "" {
				_ = m.Nak()
			}
		default:
			return
		}
	}
}
