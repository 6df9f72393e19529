package queue

import (
	"fmt"
	"log/slog"
	"time"
)

// Option is a consumer knob. Given to Open it becomes the default of every
// consumer the Client starts; given to Consume it applies to that consumer
// and overrides the Client's default. One type serves both, as connect-go's
// Option serves clients and handlers, so each knob is named once.
type Option interface{ apply(*consumerOptions) }

type optionFunc func(*consumerOptions)

func (f optionFunc) apply(o *consumerOptions) { f(o) }

// Defaults of the consumer knobs.
const (
	DefaultAckWait    = 30 * time.Second
	DefaultMaxDeliver = 8
	DefaultBackoffMin = time.Second
	DefaultBackoffMax = time.Minute
)

type consumerOptions struct {
	ackWait    time.Duration
	maxDeliver int
	backoffMin time.Duration
	backoffMax time.Duration
	logger     *slog.Logger
}

func defaultConsumerOptions() consumerOptions {
	return consumerOptions{
		ackWait:    DefaultAckWait,
		maxDeliver: DefaultMaxDeliver,
		backoffMin: DefaultBackoffMin,
		backoffMax: DefaultBackoffMax,
		logger:     slog.Default(),
	}
}

// with returns o changed by opts, checked.
func (o consumerOptions) with(opts []Option) (consumerOptions, error) {
	for _, opt := range opts {
		opt.apply(&o)
	}
	return o, o.check()
}

func (o *consumerOptions) check() error {
	switch {
	case o.ackWait < 10*time.Millisecond:
		return fmt.Errorf("%w: ack wait %v is below 10ms", ErrConfig, o.ackWait)
	case o.maxDeliver < 1:
		return fmt.Errorf("%w: max deliver %d is below 1", ErrConfig, o.maxDeliver)
	case o.backoffMin <= 0 || o.backoffMax < o.backoffMin:
		return fmt.Errorf("%w: backoff %v..%v: need 0 < min <= max", ErrConfig, o.backoffMin, o.backoffMax)
	}
	return nil
}

// WithAckWait sets how long a delivered message may stay unacknowledged
// before the server delivers it again (default DefaultAckWait). The
// handler's context expires then too. Choose it above the handler's worst
// case: a handler that outlives it is not stopped, and its message is
// processed twice.
func WithAckWait(d time.Duration) Option {
	return optionFunc(func(o *consumerOptions) { o.ackWait = d })
}

// WithMaxDeliver sets how many deliveries a message gets before it goes to
// the dead-letter stream (default DefaultMaxDeliver). A delivery counts
// whether the handler failed, panicked, or never answered.
func WithMaxDeliver(n int) Option {
	return optionFunc(func(o *consumerOptions) { o.maxDeliver = n })
}

// WithBackoff sets the delay before a failed message is delivered again:
// min after the first failure, doubling after each further one, at most
// max (defaults DefaultBackoffMin, DefaultBackoffMax). Its partition waits
// meanwhile: that is the price of per-key order.
func WithBackoff(min, max time.Duration) Option {
	return optionFunc(func(o *consumerOptions) { o.backoffMin, o.backoffMax = min, max })
}

// WithLogger sets where a consumer reports what it cannot return to anyone:
// failed acknowledgements, dead-lettered messages, lost connections.
// Default slog.Default().
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *consumerOptions) {
		if l != nil {
			o.logger = l
		}
	})
}
