package groups

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/queue"
)

// QueueConfig is the "queue" object of groupdata's and the fan-out
// worker's app config: where the queue service is and its credentials.
type QueueConfig struct {
	// URLs of the queue's servers, nats://host:port (svrkit up:
	// "nats://{rpc:queue}").
	URLs []string `json:"urls"`
	// Token is the queue's client token. Outside development mode ("dev":
	// true, which svrkit up sets) a token starting "dev-only", as the one
	// topology.json publishes, is refused.
	Token string `json:"token"`
	// Partitions of the stream (default queue.DefaultPartitions): fan-outs
	// of that many groups run at once. Every client of the stream must
	// say the same.
	Partitions int `json:"partitions,omitempty"`
	// Replicas: 1 on one machine (default), 3 on a NATS cluster.
	Replicas int `json:"replicas,omitempty"`
}

// Check refuses a config that cannot work, or a published development
// token outside development mode.
func (c QueueConfig) Check(dev bool) error {
	switch {
	case len(c.URLs) == 0:
		return errors.New(`app config: "queue": {"urls": [...]} is required: the fan-out queue's servers`)
	case c.Token == "":
		return errors.New(`app config: "queue": "token" is required: the queue accepts no anonymous client`)
	case strings.HasPrefix(c.Token, "dev-only") && !dev:
		return errors.New(`app config: REFUSING TO START: "queue": "token" is the public development token of ` +
			`examples/im/topology.json; set your own (the queue service's SVRKIT_QUEUE_TOKEN), or "dev": true for a development run`)
	}
	return nil
}

func (c QueueConfig) queueConfig(name string) queue.Config {
	return queue.Config{URLs: c.URLs, Token: c.Token, Stream: Stream, Partitions: c.Partitions, Replicas: c.Replicas, Name: name}
}

// Queue is a connection to the fan-out queue that opens in the background,
// so a service starts (and answers what does not need the queue) while
// the queue service is still starting or restarting. Its methods are safe
// for concurrent use.
type Queue struct {
	ready  chan struct{} // closed once client or err is set
	client *queue.Client
	err    error
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// DialQueue starts opening the queue cfg names, retrying until it
// succeeds or Close is called; opts are the consumers' defaults.
func DialQueue(cfg QueueConfig, name string, log *slog.Logger, opts ...queue.Option) *Queue {
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue{ready: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(q.done)
		for attempt := 0; ; attempt++ {
			octx, ocancel := context.WithTimeout(ctx, 30*time.Second)
			c, err := queue.Open(octx, cfg.queueConfig(name), opts...)
			ocancel()
			if err == nil {
				q.client = c
				close(q.ready)
				return
			}
			if ctx.Err() != nil || errors.Is(err, queue.ErrConfig) {
				q.err = err
				close(q.ready)
				return
			}
			if attempt%10 == 0 {
				log.Warn("fan-out queue not reachable yet; retrying", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	return q
}

// Client returns the open client, waiting for it until ctx is done:
// unavailable meanwhile, or the error that made opening give up.
func (q *Queue) Client(ctx context.Context) (*queue.Client, error) {
	select {
	case <-q.ready:
		if q.err != nil {
			return nil, svrkit.Errorf(svrkit.Unavailable, "fan-out queue: %v", q.err)
		}
		return q.client, nil
	case <-ctx.Done():
		return nil, svrkit.Errorf(svrkit.Unavailable, "fan-out queue not open yet: %v", ctx.Err())
	}
}

// Publish publishes it, idempotently: a second publish of one entry
// within the queue's duplicate window is stored once, and one after it
// is a wake-up call the worker finds nothing to do for.
func (q *Queue) Publish(ctx context.Context, it Item) error {
	c, err := q.Client(ctx)
	if err != nil {
		return err
	}
	if _, err := c.PublishWithID(ctx, it.ID(), it.Key(), it.Payload()); err != nil {
		return svrkit.Errorf(svrkit.Unavailable, "fan-out queue: %v", err)
	}
	return nil
}

// Close stops opening and closes the client (its consumers first).
func (q *Queue) Close() error {
	var err error
	q.once.Do(func() {
		q.cancel()
		<-q.done
		if q.client != nil {
			err = q.client.Close()
		}
	})
	return err
}

// String names the queue for logs.
func (q *Queue) String() string { return fmt.Sprintf("queue stream %s", Stream) }
