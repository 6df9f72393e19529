package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of Config.
const (
	DefaultURL             = "nats://127.0.0.1:4222"
	DefaultStream          = "QUEUE"
	DefaultPartitions      = 16
	DefaultDuplicateWindow = 2 * time.Minute
	// DefaultTimeout bounds Open and Publish when their context has no
	// deadline, so that neither waits forever for a server that is gone.
	DefaultTimeout = 30 * time.Second
)

// MaxPartitions bounds Config.Partitions: each partition is one JetStream
// consumer, and a consumer costs the server memory and a raft group on a
// cluster.
const MaxPartitions = 1024

// metaPartitions is the stream metadata key that records the partition
// count, so that a client configured differently is refused instead of
// silently reordering keys.
const metaPartitions = "svrkit.queue.partitions"

// Config says where the queue is and what the stream looks like. Only the
// credentials are required: the zero value of every other field is the
// embedded single-node queue's default.
type Config struct {
	// URLs of the NATS servers, nats://host:port; several for a cluster
	// (the client fails over between them). Default DefaultURL.
	URLs []string
	// Token, or User and Password, as the servers require.
	Token    string
	User     string
	Password string
	// Stream names the JetStream stream holding the items: letters,
	// digits, '-' and '_'. A second, independent queue on the same
	// servers is a second stream. Default DefaultStream.
	Stream string
	// Partitions is how many ordered lanes the stream has (default
	// DefaultPartitions): items of one key are processed one at a time
	// and in order; different partitions in parallel. Fixed when the
	// stream is created: Open refuses a different count.
	Partitions int
	// Replicas is how many servers hold each item: 1 (the default) on one
	// machine; 3 on a cluster, where an acknowledged item survives the
	// loss of any one server. Used when Open creates the stream.
	Replicas int
	// DuplicateWindow is how long the server remembers message ids to
	// drop a retried publish (default DefaultDuplicateWindow).
	DuplicateWindow time.Duration
	// MaxBytes bounds the stream's size on each server; once full,
	// Publish fails with ErrRejected rather than dropping old items.
	// Default unbounded (the server's storage limit).
	MaxBytes int64
	// Name is the connection's name in the server's monitoring. Default
	// "svrkit-queue".
	Name string
}

// Client publishes to and consumes from one stream. Its methods are safe
// for concurrent use. Close it when done.
type Client struct {
	cfg      Config
	nc       *nats.Conn
	js       jetstream.JetStream
	stream   jetstream.Stream
	prefix   string   // of every subject of the stream
	subjects []string // subjects[p] is partition p's subject
	dead     string   // the dead-letter subject
	opts     consumerOptions

	closed    atomic.Bool
	mu        sync.Mutex
	consumers map[*Consumer]struct{}
}

// Open connects to the queue and makes sure its streams exist (the items'
// and the dead letters'), creating them as cfg describes if they do not.
// It waits for the servers, retrying, until ctx is done (DefaultTimeout if
// ctx has no deadline), so a program may start before its queue; it fails
// at once on bad credentials or a Config that contradicts the stream on
// the server. The Options become the defaults of the Client's consumers.
func Open(ctx context.Context, cfg Config, opts ...Option) (*Client, error) {
	if err := cfg.resolve(); err != nil {
		return nil, err
	}
	o, err := defaultConsumerOptions().with(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	nc, err := connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("queue: %w", err)
	}
	c := &Client{cfg: cfg, nc: nc, js: js, opts: o, consumers: make(map[*Consumer]struct{})}
	prefix := "svrkit.queue." + cfg.Stream
	c.prefix = prefix
	c.subjects = make([]string, cfg.Partitions)
	for p := range c.subjects {
		c.subjects[p] = prefix + ".p." + strconv.Itoa(p)
	}
	c.dead = prefix + ".dead"
	err = retry(ctx, "open stream "+cfg.Stream, func(ctx context.Context) error {
		var err error
		c.stream, err = c.ensureStreams(ctx, prefix)
		return err
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func (cfg *Config) resolve() error {
	if len(cfg.URLs) == 0 {
		cfg.URLs = []string{DefaultURL}
	}
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = DefaultPartitions
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.DuplicateWindow == 0 {
		cfg.DuplicateWindow = DefaultDuplicateWindow
	}
	if cfg.Name == "" {
		cfg.Name = "svrkit-queue"
	}
	switch {
	case cfg.Token == "" && cfg.User == "":
		return fmt.Errorf("%w: no credentials (Token, or User and Password): the queue accepts no anonymous client", ErrConfig)
	case cfg.Token != "" && cfg.User != "":
		return fmt.Errorf("%w: give a Token or a User and Password, not both", ErrConfig)
	case !validName(cfg.Stream):
		return fmt.Errorf("%w: stream name %q: use letters, digits, '-' and '_' only", ErrConfig, cfg.Stream)
	case cfg.Partitions < 1 || cfg.Partitions > MaxPartitions:
		return fmt.Errorf("%w: %d partitions: want 1 to %d", ErrConfig, cfg.Partitions, MaxPartitions)
	case cfg.Replicas < 1 || cfg.Replicas > 5:
		return fmt.Errorf("%w: %d replicas: JetStream allows 1 to 5", ErrConfig, cfg.Replicas)
	case cfg.DuplicateWindow < 0 || cfg.MaxBytes < 0:
		return fmt.Errorf("%w: negative DuplicateWindow or MaxBytes", ErrConfig)
	}
	return nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}

// connect dials until a server answers or ctx is done. Once connected the
// client reconnects forever by itself, to any of the URLs and to the
// cluster's other servers it learns of; operations in the meantime wait
// for it within their own deadlines.
func connect(ctx context.Context, cfg Config) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.ReconnectJitter(50*time.Millisecond, 50*time.Millisecond),
		nats.Timeout(2 * time.Second),
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	} else {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	url := strings.Join(cfg.URLs, ",")
	wait := 50 * time.Millisecond
	for {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			return nc, nil
		}
		if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) {
			return nil, fmt.Errorf("queue: connect to %s: credentials refused: %w: %w", url, ErrConfig, err)
		}
		select {
		case <-ctx.Done():
			return nil, unavailable("connect to "+url, err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// retry runs op until it succeeds, fails for good, or ctx is done, waiting
// a little longer after each retryable failure.
func retry(ctx context.Context, what string, op func(context.Context) error) error {
	wait := 20 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := op(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return unavailable(what, err, ctx.Err())
		}
		if !retryable(err) {
			if errors.Is(err, ErrConfig) || errors.Is(err, ErrClosed) {
				return err
			}
			return fmt.Errorf("queue: %s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return unavailable(what, err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// attemptTimeout bounds one request to JetStream. A request that reached a
// server which then died gets no answer; after this long it is sent again
// (with the same message id, so a publish is still stored once).
const attemptTimeout = 2 * time.Second

// ensureStreams creates the item and dead-letter streams, or checks the
// existing item stream against cfg.
func (c *Client) ensureStreams(ctx context.Context, prefix string) (jetstream.Stream, error) {
	cfg := c.cfg
	want := jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "svrkit/queue items, one subject per partition",
		Subjects:    []string{prefix + ".p.*"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DuplicateWindow,
		MaxBytes:    orUnlimited(cfg.MaxBytes),
		Discard:     jetstream.DiscardNew,
		AllowDirect: true,
		Metadata:    map[string]string{metaPartitions: strconv.Itoa(cfg.Partitions)},
	}
	s, err := c.js.Stream(ctx, cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = c.js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // another client won the race
			s, err = c.js.Stream(ctx, cfg.Stream)
		}
	}
	if err != nil {
		return nil, err
	}
	got := s.CachedInfo().Config
	if n := got.Metadata[metaPartitions]; n != strconv.Itoa(cfg.Partitions) {
		return nil, fmt.Errorf("%w: stream %s has %q partitions, this client is configured with %d: the count cannot change, as it decides each key's order", ErrConfig, cfg.Stream, n, cfg.Partitions)
	}
	if got.Retention != jetstream.WorkQueuePolicy {
		return nil, fmt.Errorf("%w: stream %s exists with %v retention; the queue needs work-queue retention", ErrConfig, cfg.Stream, got.Retention)
	}
	dead := jetstream.StreamConfig{
		Name:        c.deadStream(),
		Description: "svrkit/queue dead letters of stream " + cfg.Stream,
		Subjects:    []string{c.dead},
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DuplicateWindow,
		AllowDirect: true,
	}
	if _, err := c.js.Stream(ctx, dead.Name); errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = c.js.CreateStream(ctx, dead)
		if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	return s, nil
}

// deadStream names the stream of dead letters.
func (c *Client) deadStream() string { return c.cfg.Stream + "_DEAD" }

func orUnlimited(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

// Close stops the Client's consumers (cancelling handlers still running,
// whose messages the server delivers again after their ack wait) and
// closes the connection. Calls after the first return nil.
func (c *Client) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	c.mu.Lock()
	consumers := make([]*Consumer, 0, len(c.consumers))
	for k := range c.consumers {
		consumers = append(consumers, k)
	}
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no grace: Close is the abrupt stop; Consumer.Stop is the graceful one
	for _, k := range consumers {
		_ = k.Stop(ctx)
	}
	c.nc.Close()
	return nil
}

// Partition returns the partition a key's items go to: FNV-1a of the key,
// modulo the partition count. Stable for a given key and count.
func (c *Client) Partition(key string) int { return partition(key, len(c.subjects)) }

func partition(key string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}
