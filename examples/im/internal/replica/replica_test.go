package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im/internal/kv"
	"github.com/svrkit/svrkit/examples/im/internal/testport"
)

// group is a replica group of in-process nodes on loopback ports, each on
// its own directory: real raft, real TCP, real disks.
type group struct {
	t     *testing.T
	cfg   Config
	dirs  []string
	nodes []*Node
}

func startGroup(t *testing.T, size int, tune func(*Config)) *group {
	t.Helper()
	// Ports are picked before the nodes bind them (every node's config
	// names all of them); one taken meanwhile by another process fails the
	// start, which is retried on new ports and directories.
	var err error
	for range 5 {
		g := &group{t: t, cfg: Config{
			Cluster:          "test-" + t.Name(),
			HeartbeatTimeout: 300 * time.Millisecond,
			ElectionTimeout:  300 * time.Millisecond,
			LeaderWait:       3 * time.Second,
		}}
		for i := range size {
			g.cfg.Peers = append(g.cfg.Peers, Peer{ID: fmt.Sprintf("r%d", i+1), RPC: fmt.Sprintf("rpc-of-r%d", i+1), Raft: testport.Addr(t)})
			g.dirs = append(g.dirs, t.TempDir())
		}
		if tune != nil {
			tune(&g.cfg)
		}
		g.nodes = make([]*Node, size)
		t.Cleanup(func() {
			for i := range g.nodes {
				g.stop(i)
			}
		})
		if err = g.tryStart(); err == nil {
			return g
		}
		for i := range g.nodes {
			g.stop(i)
		}
	}
	t.Fatal(err)
	return nil
}

func (g *group) tryStart() error {
	for i := range g.nodes {
		cfg := g.cfg
		cfg.ID = g.cfg.Peers[i].ID
		n, err := Open(g.dirs[i], cfg)
		if err != nil {
			return err
		}
		g.nodes[i] = n
	}
	return nil
}

func (g *group) start(i int) {
	g.t.Helper()
	cfg := g.cfg
	cfg.ID = g.cfg.Peers[i].ID
	n, err := Open(g.dirs[i], cfg)
	if err != nil {
		g.t.Fatalf("start %s: %v", cfg.ID, err)
	}
	g.nodes[i] = n
}

func (g *group) stop(i int) {
	if g.nodes[i] != nil {
		g.nodes[i].Close()
		g.nodes[i] = nil
	}
}

// leader waits for one node to lead and serve, and returns its index.
func (g *group) leader() int {
	g.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for i, n := range g.nodes {
			if n != nil && n.IsLeader() {
				return i
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	g.t.Fatal("no leader within 20s")
	return -1
}

func put(ctx context.Context, s kv.Store, key, value string, expect uint64) (uint64, error) {
	var b kv.Batch
	b.Put([]byte(key), []byte(value), expect)
	vs, err := s.Apply(ctx, &b)
	if err != nil {
		return 0, err
	}
	return vs[0], nil
}

// Writes on the leader are seen by reads; a follower names the leader; a
// failed compare-and-set fails the same as on one node.
func TestGroupServesLikeOneStore(t *testing.T) {
	g := startGroup(t, 3, nil)
	ctx := context.Background()
	l := g.leader()
	leader := g.nodes[l]
	v1, err := put(ctx, leader, "k", "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := put(ctx, leader, "k", "b", 0); !errors.Is(err, kv.ErrConflict) {
		t.Fatalf("create over an existing key: %v, want a conflict", err)
	}
	v2, err := put(ctx, leader, "k", "b", v1)
	if err != nil || v2 <= v1 {
		t.Fatalf("CAS: %d %v", v2, err)
	}
	if val, ver, err := leader.Get(ctx, []byte("k")); err != nil || string(val) != "b" || ver != v2 {
		t.Fatalf("get: %q %d %v", val, ver, err)
	}
	var row kv.Batch
	row.Append([]byte("row"), []byte("e1"))
	row.Append([]byte("row"), []byte("e2"))
	if vs, err := leader.Apply(ctx, &row); err != nil || vs[0] != 1 || vs[1] != 2 {
		t.Fatalf("append: %v %v", vs, err)
	}
	f := (l + 1) % 3
	_, _, err = g.nodes[f].Get(ctx, []byte("k"))
	var nle *NotLeaderError
	if !errors.As(err, &nle) || nle.LeaderRPC != g.cfg.Peers[l].RPC {
		t.Fatalf("follower read: %v, want NotLeaderError naming %s", err, g.cfg.Peers[l].RPC)
	}
	if _, err := put(ctx, g.nodes[f], "k", "c", kv.AnyVersion); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("follower write: %v", err)
	}
	// Every replica applies the same: the followers' DBs catch up to the
	// leader's bytes.
	waitApplied(t, g, leader.AppliedIndex())
	for i, n := range g.nodes {
		if val, ver, err := n.db.Get(ctx, []byte("k")); err != nil || string(val) != "b" || ver != v2 {
			t.Fatalf("replica %d holds %q %d %v", i, val, ver, err)
		}
	}
}

func waitApplied(t *testing.T, g *group, index uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		behind := 0
		for _, n := range g.nodes {
			if n != nil && n.AppliedIndex() < index {
				behind++
			}
		}
		if behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d replicas have not applied %d within 20s", behind, index)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The leader stops: another takes over within a bound and has every
// answered write; with a majority down, calls fail fast with
// ErrUnavailable.
func TestFailoverAndMajorityDown(t *testing.T) {
	g := startGroup(t, 3, nil)
	ctx := context.Background()
	l := g.leader()
	v, err := put(ctx, g.nodes[l], "k", "before", 0)
	if err != nil {
		t.Fatal(err)
	}
	g.stop(l)
	start := time.Now()
	l2 := g.leader()
	if _, err := put(ctx, g.nodes[l2], "k", "after", v); err != nil {
		t.Fatalf("write after failover: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("failover took %s", d)
	}
	// Now stop a second replica: no majority.
	for i := range g.nodes {
		if i != l2 && g.nodes[i] != nil {
			g.stop(i)
			break
		}
	}
	start = time.Now()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = put(wctx, g.nodes[l2], "k", "lost", kv.AnyVersion)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("write with a majority down: %v, want ErrUnavailable", err)
	}
	if _, _, err := g.nodes[l2].Get(wctx, []byte("k")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("read with a majority down: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("failing took %s; want fast", d)
	}
}

// A replica whose directory is deleted comes back empty and catches up
// from a snapshot (the log behind it was cut).
func TestReplicaRejoinsFromSnapshot(t *testing.T) {
	g := startGroup(t, 3, func(c *Config) {
		c.SnapshotThreshold, c.TrailingLogs = 16, 4
	})
	ctx := context.Background()
	l := g.leader()
	lost := (l + 1) % 3
	g.stop(lost)
	if err := os.RemoveAll(g.dirs[lost]); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := put(ctx, g.nodes[l], fmt.Sprintf("k%03d", i), "v", 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.nodes[l].Snapshot(); err != nil {
		t.Fatal(err)
	}
	// The log behind the snapshot is gone: the lost replica can only
	// catch up from the snapshot.
	if first, err := g.nodes[l].logs.FirstIndex(); err != nil || first <= 1 {
		t.Fatalf("leader's log starts at %d (%v); want it cut", first, err)
	}
	g.start(lost)
	waitApplied(t, g, g.nodes[l].AppliedIndex())
	for i := range 100 {
		if _, _, err := g.nodes[lost].db.Get(ctx, []byte(fmt.Sprintf("k%03d", i))); err != nil {
			t.Fatalf("rejoined replica misses k%03d: %v", i, err)
		}
	}
	if snaps, err := os.ReadDir(filepath.Join(g.dirs[lost], "snapshots")); err != nil || len(snaps) == 0 {
		t.Fatalf("no snapshot reached the rejoined replica: %v", err)
	}
}

// A node of another cluster pointed at this group is refused and changes
// nothing.
func TestRefusesAnotherCluster(t *testing.T) {
	g := startGroup(t, 3, nil)
	l := g.leader()
	intruder := g.cfg
	intruder.Cluster = "another"
	intruder.ID = "x"
	intruder.Peers = append(append([]Peer(nil), g.cfg.Peers...), Peer{ID: "x", RPC: "rpc-of-x", Raft: testport.Addr(t)})
	// A higher term is what an intruder would force on the group.
	intruder.ElectionTimeout, intruder.HeartbeatTimeout = 50*time.Millisecond, 50*time.Millisecond
	n, err := Open(t.TempDir(), intruder)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var refused uint64
		for _, m := range g.nodes {
			refused += m.Refused()
		}
		if refused > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the intruder's connections were not refused")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !g.nodes[l].IsLeader() {
		t.Fatal("the intruder disturbed the leader")
	}
	if _, err := put(context.Background(), g.nodes[l], "k", "v", 0); err != nil {
		t.Fatal(err)
	}
}

func FuzzReadHello(f *testing.F) {
	f.Add(appendHello(nil, "im-storage"))
	f.Add([]byte(helloMagic))
	f.Add(append([]byte(helloMagic), 0))
	f.Add(append([]byte(helloMagic), 255, 'x'))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := readHello(bytes.NewReader(b))
		if err == nil {
			if len(id) == 0 || len(id) > maxClusterIDLen {
				t.Fatalf("accepted cluster id of %d bytes", len(id))
			}
			if got := appendHello(nil, id); string(got) != string(b[:len(got)]) {
				t.Fatal("decoded hello does not re-encode to its input")
			}
		}
	})
}
