package queue_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/svrkit/svrkit/svrkit/queue"
	"github.com/svrkit/svrkit/svrkit/queue/embedded"
)

// startCluster starts n JetStream nodes in this process, routed to each
// other on loopback, each storing in its own directory, and waits until
// they have elected a leader. The route ports are picked free beforehand
// (every node must be configured with the others'); if another process
// takes one meanwhile, it starts again with new ones.
func startCluster(t *testing.T, n int) []*embedded.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for attempt := 1; ; attempt++ {
		nodes, err := tryCluster(ctx, t, n)
		if err == nil {
			for _, s := range nodes {
				t.Cleanup(s.Shutdown)
			}
			for _, s := range nodes {
				if err := s.WaitHealthy(ctx); err != nil {
					t.Fatal(err)
				}
			}
			return nodes
		}
		if !strings.Contains(err.Error(), "address already in use") || attempt == 5 {
			t.Fatal(err)
		}
		t.Logf("attempt %d: %v; again with other ports", attempt, err)
	}
}

// tryCluster starts the nodes once; on error it stops those it started.
func tryCluster(ctx context.Context, t *testing.T, n int) ([]*embedded.Server, error) {
	routes := make([]string, n)
	for i := range routes {
		routes[i] = freeAddr(t)
	}
	nodes := make([]*embedded.Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i], errs[i] = embedded.Start(ctx, embedded.Config{
				Dir:    filepath.Join(t.TempDir(), fmt.Sprint("node", i)),
				Listen: "127.0.0.1:0",
				Token:  testToken,
				Name:   fmt.Sprint("node", i),
				Cluster: &embedded.Cluster{Name: "qtest", Listen: routes[i], Routes: routes,
					User: "route", Password: "route-secret"},
			})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, s := range nodes {
			if s != nil {
				s.Shutdown()
			}
		}
		return nil, err
	}
	return nodes, nil
}

// TestR3NothingAcknowledgedIsLost: a 3-node cluster holds a stream with 3
// replicas; a publisher keeps publishing while the stream's leader is shut
// down mid-way. Every item whose Publish returned is then consumed, and
// is stored once.
func TestR3NothingAcknowledgedIsLost(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-node cluster and a leader election take seconds")
	}
	nodes := startCluster(t, 3)
	var urls []string
	for _, s := range nodes {
		urls = append(urls, s.URL())
	}
	cfg := queue.Config{URLs: urls, Token: testToken, Stream: "R3", Replicas: 3, Partitions: 4}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := queue.Open(ctx, cfg, queue.WithAckWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	const (
		publishers = 4
		perPub     = 150
		total      = publishers * perPub
	)
	var (
		mu       sync.Mutex
		acked    = map[string]queue.Receipt{} // id → receipt
		failed   atomic.Int32
		progress atomic.Int32
	)
	killAt := int32(total / 3)
	killed := make(chan string, 1)
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perPub {
				pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				r, err := c.Publish(pctx, fmt.Sprintf("group-%d-%d", p, i%10), []byte(fmt.Sprintf("%d/%d", p, i)))
				cancel()
				if err != nil {
					failed.Add(1)
					t.Logf("publish %d/%d not acknowledged: %v", p, i, err)
					continue
				}
				mu.Lock()
				acked[r.ID] = r
				mu.Unlock()
				if progress.Add(1) == killAt {
					killed <- killLeader(t, ctx, urls, nodes)
				}
			}
		}()
	}
	wg.Wait()
	select {
	case name := <-killed:
		t.Logf("shut down the stream leader %s after %d acknowledged publishes", name, killAt)
	default:
		t.Fatal("the leader was never shut down")
	}
	mu.Lock()
	t.Logf("%d acknowledged, %d not", len(acked), failed.Load())
	if len(acked) < total*9/10 {
		t.Errorf("only %d of %d publishes acknowledged: the cluster did not fail over", len(acked), total)
	}
	mu.Unlock()

	var (
		dmu       sync.Mutex
		delivered = map[string]int{}
		seqOf     = map[string]uint64{}
		stored    = map[uint64]string{}
	)
	consume(t, c, func(ctx context.Context, m *queue.Message) error {
		dmu.Lock()
		defer dmu.Unlock()
		delivered[m.ID()]++
		seqOf[m.ID()] = m.Seq()
		stored[m.Seq()] = m.ID()
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	waitFor(t, 60*time.Second, "every acknowledged item", func() bool {
		dmu.Lock()
		defer dmu.Unlock()
		for id := range acked {
			if delivered[id] == 0 {
				return false
			}
		}
		return true
	})
	lagZero(t, c)
	dmu.Lock()
	defer dmu.Unlock()
	redelivered := 0
	for id, n := range delivered {
		redelivered += n - 1
		if r, ok := acked[id]; ok && r.Seq != seqOf[id] {
			t.Errorf("item %s acknowledged at seq %d, delivered from seq %d", id, r.Seq, seqOf[id])
		}
	}
	if len(stored) != len(delivered) {
		t.Errorf("%d distinct items stored at %d positions: an item was stored twice", len(delivered), len(stored))
	}
	t.Logf("consumed %d distinct items (%d acknowledged, the rest from publishes that timed out), %d redeliveries",
		len(delivered), len(acked), redelivered)
}

// killLeader shuts down the node leading stream R3 and returns its name.
func killLeader(t *testing.T, ctx context.Context, urls []string, nodes []*embedded.Server) string {
	nc, err := nats.Connect(urls[0]+","+urls[1]+","+urls[2], nats.Token(testToken))
	if err != nil {
		t.Errorf("connect: %v", err)
		return ""
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(ctx, "R3")
	if err != nil {
		t.Errorf("stream info: %v", err)
		return ""
	}
	leader := s.CachedInfo().Cluster.Leader
	for _, n := range nodes {
		if n.Name() == leader {
			n.Shutdown()
			return leader
		}
	}
	t.Errorf("leader %q is none of the nodes", leader)
	return ""
}
