package queue_test

// Benchmarks of the queue against its peer: the same work done with
// nats.go's jetstream package directly, on the same embedded server, the
// same kind of stream (work-queue retention, file storage, R1) and, for
// consuming, the same consumer settings (one consumer per partition, one
// message in flight each, explicit acks). The difference is what the
// wrapper costs. "raw-unordered" drops the one-in-flight rule (one
// consumer, JetStream's default batching): the price of per-key order.
//
//	go test ./svrkit/queue -run '^$' -bench . -count 5

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/svrkit/svrkit/svrkit/queue"
	"github.com/svrkit/svrkit/svrkit/queue/embedded"
)

const benchPartitions = 16

// benchEnv is one server with the wrapper's stream and the raw peer's.
type benchEnv struct {
	q     *queue.Client
	nc    *nats.Conn
	js    jetstream.JetStream
	raw   jetstream.Stream
	subjs []string
}

func newBenchEnv(b *testing.B, syncAlways bool) *benchEnv {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := embedded.Start(ctx, embedded.Config{Dir: filepath.Join(b.TempDir(), "q"), Listen: "127.0.0.1:0", Token: testToken, SyncAlways: syncAlways})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Shutdown)
	e := &benchEnv{q: open(b, s, queue.Config{Partitions: benchPartitions})}
	e.nc, err = nats.Connect(s.URL(), nats.Token(testToken))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(e.nc.Close)
	e.js, _ = jetstream.New(e.nc)
	e.raw, err = e.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "RAW", Subjects: []string{"raw.p.*"}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute, AllowDirect: true, Discard: jetstream.DiscardNew,
	})
	if err != nil {
		b.Fatal(err)
	}
	for p := range benchPartitions {
		e.subjs = append(e.subjs, "raw.p."+strconv.Itoa(p))
	}
	return e
}

// rawPublish is what Publish does, written directly against nats.go: a
// message id, a key header, the key's partition subject, wait for PubAck.
func (e *benchEnv) rawPublish(ctx context.Context, key string, payload []byte) error {
	m := &nats.Msg{Subject: e.subjs[e.q.Partition(key)], Data: payload,
		Header: nats.Header{jetstream.MsgIDHeader: []string{nuid.Next()}, "Svrkit-Key": []string{key}}}
	_, err := e.js.PublishMsg(ctx, m)
	return err
}

// cpuMeter reports the process's CPU time per operation, from start to
// report, as cpu-µs/op.
type cpuMeter time.Duration

func startCPU() cpuMeter { return cpuMeter(processCPU()) }

func (m cpuMeter) report(b *testing.B) {
	used := processCPU() - time.Duration(m)
	b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-µs/op")
}

// publish publishes through the peer: the wrapper, or rawPublish.
func (e *benchEnv) publish(ctx context.Context, peer, key string, payload []byte) error {
	if peer == "raw" {
		return e.rawPublish(ctx, key, payload)
	}
	_, err := e.q.Publish(ctx, key, payload)
	return err
}

// countdown closes done when hit has been called n times.
type countdown struct {
	n    int64
	hits atomic.Int64
	done chan struct{}
}

func newCountdown(n int) *countdown { return &countdown{n: int64(n), done: make(chan struct{})} }

func (c *countdown) hit() {
	if c.hits.Add(1) == c.n {
		close(c.done)
	}
}

// wait waits for the last hit, failing the benchmark after 5 minutes.
func (c *countdown) wait(b *testing.B) {
	select {
	case <-c.done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("handled %d of %d", c.hits.Load(), c.n)
	}
}

func benchKey(i int) string { return "group-" + strconv.Itoa(i%1000) }

// BenchmarkPublish: one publisher waiting for each acknowledgement
// (latency), and 16 at once (throughput).
func BenchmarkPublish(b *testing.B) {
	payload := make([]byte, 256)
	for _, syncAlways := range []bool{false, true} {
		for _, par := range []int{1, 16} {
			for _, peer := range []string{"raw", "queue"} {
				name := fmt.Sprintf("sync=%s/publishers=%d/%s", map[bool]string{false: "interval", true: "always"}[syncAlways], par, peer)
				b.Run(name, func(b *testing.B) {
					e := newBenchEnv(b, syncAlways)
					ctx := context.Background()
					b.ReportAllocs()
					b.SetBytes(int64(len(payload)))
					b.ResetTimer()
					cpu := startCPU()
					var next atomic.Int64
					var wg sync.WaitGroup
					for range par {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for i := int(next.Add(1)); i <= b.N; i = int(next.Add(1)) {
								if err := e.publish(ctx, peer, benchKey(i), payload); err != nil {
									b.Error(err)
									return
								}
							}
						}()
					}
					wg.Wait()
					cpu.report(b)
				})
			}
		}
	}
}

// fill stores n items in the wrapper's stream (raw=false) or the peer's,
// quickly (async publishes), before a consume benchmark's timer starts.
func (e *benchEnv) fill(b *testing.B, raw bool, n int) {
	b.Helper()
	payload := make([]byte, 256)
	for i := range n {
		key := benchKey(i)
		subj := e.subjs[e.q.Partition(key)]
		if !raw {
			subj = "svrkit.queue." + queue.DefaultStream + ".p." + strconv.Itoa(e.q.Partition(key))
		}
		m := &nats.Msg{Subject: subj, Data: payload,
			Header: nats.Header{jetstream.MsgIDHeader: []string{nuid.Next()}, "Svrkit-Key": []string{key}}}
		if _, err := e.js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 || i == n-1 { // stay below the client's bound on unacknowledged async publishes
			select {
			case <-e.js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				b.Fatal("fill timed out")
			}
		}
	}
}

// BenchmarkConsume: handle items already stored, with a handler that does
// nothing, so that what is measured is the consuming machinery.
func BenchmarkConsume(b *testing.B) {
	for _, peer := range []string{"raw-unordered", "raw", "queue"} {
		b.Run(peer, func(b *testing.B) {
			e := newBenchEnv(b, false)
			e.fill(b, peer != "queue", b.N)
			handled := newCountdown(b.N)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU()
			stop := e.startConsumer(b, peer, func([]byte) { handled.hit() })
			handled.wait(b)
			b.StopTimer()
			cpu.report(b)
			stop()
		})
	}
}

// startConsumer starts the peer's consumer, calling handle with each
// message's payload before acknowledging it; stop stops it.
func (e *benchEnv) startConsumer(b *testing.B, peer string, handle func([]byte)) (stop func()) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	switch peer {
	case "queue":
		k, err := e.q.Consume(ctx, func(ctx context.Context, m *queue.Message) error { handle(m.Payload()); return nil })
		if err != nil {
			b.Fatal(err)
		}
		return func() { _ = k.Stop(context.Background()) }
	case "raw-unordered":
		cons, err := e.js.CreateOrUpdateConsumer(ctx, "RAW", jetstream.ConsumerConfig{Durable: "all", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			b.Fatal(err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) { handle(m.Data()); _ = m.Ack() })
		if err != nil {
			b.Fatal(err)
		}
		return cc.Stop
	}
	// raw: the queue's consumer settings, one goroutine per partition.
	stopCtx, stopAll := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for p, subj := range e.subjs {
		cons, err := e.js.CreateOrUpdateConsumer(ctx, "RAW", jetstream.ConsumerConfig{Durable: "part-" + strconv.Itoa(p),
			FilterSubject: subj, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1, MaxDeliver: -1, AckWait: 30 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		// The queue's pull settings: a lost pull request noticed after
		// two missed 2s heartbeats.
		it, err := cons.Messages(jetstream.PullMaxMessages(1), jetstream.PullExpiry(10*time.Second),
			jetstream.PullHeartbeat(2*time.Second), jetstream.WithMessagesErrOnMissingHeartbeat(false))
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer it.Stop()
			for {
				m, err := it.Next(jetstream.NextContext(stopCtx))
				if stopCtx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					return
				}
				if err != nil {
					continue
				}
				handle(m.Data())
				_ = m.Ack()
			}
		}()
	}
	return func() { stopAll(); wg.Wait() }
}

// BenchmarkEndToEnd: one publisher publishing one item after another
// while the consumer runs; reports the time from the start of a publish
// to the start of its handler, median and 99th percentile.
func BenchmarkEndToEnd(b *testing.B) {
	for _, peer := range []string{"raw", "queue"} {
		b.Run(peer, func(b *testing.B) {
			e := newBenchEnv(b, false)
			lat := make([]time.Duration, b.N)
			handled := newCountdown(b.N)
			record := func(payload []byte) {
				i, start := decodeStamp(payload)
				lat[i] = time.Since(start)
				handled.hit()
			}
			stop := e.startConsumer(b, peer, record)
			defer stop()
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU()
			for i := range b.N {
				if err := e.publish(ctx, peer, benchKey(i), stamp(i, time.Now())); err != nil {
					b.Fatal(err)
				}
			}
			handled.wait(b)
			b.StopTimer()
			cpu.report(b)
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

func stamp(i int, t time.Time) []byte {
	return []byte(strconv.Itoa(i) + " " + strconv.FormatInt(t.UnixNano(), 10))
}

func decodeStamp(p []byte) (int, time.Time) {
	var i int
	var ns int64
	fmt.Sscan(string(p), &i, &ns)
	return i, time.Unix(0, ns)
}
