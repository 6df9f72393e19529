package replica

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im/internal/testport"
)

// addNode opens a new, joining replica beside the group's and returns its
// index in g.nodes.
func (g *group) addNode(id string) int {
	g.t.Helper()
	p := Peer{ID: id, RPC: "rpc-of-" + id, Raft: testport.Addr(g.t)}
	g.cfg.Peers = append(g.cfg.Peers, p)
	g.dirs = append(g.dirs, g.t.TempDir())
	g.nodes = append(g.nodes, nil)
	i := len(g.nodes) - 1
	cfg := g.cfg
	cfg.ID, cfg.Join = id, true
	n, err := Open(g.dirs[i], cfg)
	if err != nil {
		g.t.Fatalf("open %s: %v", id, err)
	}
	g.nodes[i] = n
	return i
}

func voters(t *testing.T, n *Node) map[string]bool {
	t.Helper()
	ms, err := n.Members(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range ms {
		out[m.ID] = m.Voter
	}
	return out
}

// A joining replica on an empty directory is added, catches up from a
// snapshot, and votes; a dead one is removed; the group then survives
// losing another original.
func TestAddAndRemoveReplica(t *testing.T) {
	g := startGroup(t, 3, func(c *Config) {
		c.SnapshotThreshold, c.TrailingLogs, c.SnapshotInterval = 64, 16, 100*time.Millisecond
	})
	ctx := context.Background()
	l := g.leader()
	for i := range 200 {
		if _, err := put(ctx, g.nodes[l], fmt.Sprint("k", i), "v", 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.nodes[l].Snapshot(); err != nil {
		t.Fatal(err)
	}
	dead := (l + 1) % 3
	g.stop(dead)
	n4 := g.addNode("r4")
	if g.nodes[n4].IsLeader() || g.nodes[n4].status().Member {
		t.Fatal("a joining replica is a member before it is added")
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	start := time.Now()
	err := g.nodes[l].AddReplica(cctx, g.cfg.Peers[n4])
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("added r4 in %s", time.Since(start).Round(time.Millisecond))
	if v := voters(t, g.nodes[l]); !v["r4"] || len(v) != 4 {
		t.Fatalf("members after the add: %v", v)
	}
	// Adding it again changes nothing.
	if err := g.nodes[l].AddReplica(ctx, g.cfg.Peers[n4]); err != nil {
		t.Fatalf("second add: %v", err)
	}
	if err := g.nodes[l].RemoveReplica(ctx, g.cfg.Peers[dead].ID); err != nil {
		t.Fatal(err)
	}
	if v := voters(t, g.nodes[l]); len(v) != 3 || v[g.cfg.Peers[dead].ID] {
		t.Fatalf("members after the removal: %v", v)
	}
	// The other original goes: the leader and r4 are a majority of three.
	other := 3 - l - dead
	g.stop(other)
	if _, err := put(ctx, g.nodes[l], "after", "v", 0); err != nil {
		t.Fatalf("write with the leader and r4: %v", err)
	}
	if val, _, err := g.nodes[n4].db.Get(ctx, []byte("k0")); err != nil || string(val) != "v" {
		t.Fatalf("r4 holds k0: %q %v", val, err)
	}
	// The directory names r4's RPC address, on every replica.
	if p, ok := g.nodes[n4].peer("r4"); !ok || p.RPC != "rpc-of-r4" {
		t.Fatalf("r4's directory entry: %+v %v", p, ok)
	}
}

func TestMembershipBadInput(t *testing.T) {
	g := startGroup(t, 3, nil)
	ctx := context.Background()
	l := g.leader()
	var me *MembershipError
	bounded := func(name string, f func(context.Context) error) error {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		start := time.Now()
		err := f(cctx)
		if d := time.Since(start); d > 8*time.Second {
			t.Errorf("%s took %s", name, d)
		}
		t.Logf("%s: %v", name, err)
		return err
	}
	if err := bounded("remove unknown", func(c context.Context) error { return g.nodes[l].RemoveReplica(c, "r9") }); !errors.As(err, &me) {
		t.Fatalf("removing an unknown id: %v", err)
	}
	silent := Peer{ID: "r9", RPC: "rpc-of-r9", Raft: testport.Addr(t)}
	if err := bounded("add silent", func(c context.Context) error { return g.nodes[l].AddReplica(c, silent) }); !errors.As(err, &me) {
		t.Fatalf("adding an address nobody answers: %v", err)
	}
	taken := Peer{ID: "r9", RPC: "x", Raft: g.cfg.Peers[(l+1)%3].Raft}
	if err := bounded("add taken", func(c context.Context) error { return g.nodes[l].AddReplica(c, taken) }); !errors.As(err, &me) {
		t.Fatalf("adding another replica's address: %v", err)
	}
	f := (l + 1) % 3
	var nle *NotLeaderError
	if err := g.nodes[f].RemoveReplica(ctx, "r1"); !errors.As(err, &nle) {
		t.Fatalf("removing on a follower: %v, want a NotLeaderError", err)
	}
	if v := voters(t, g.nodes[l]); len(v) != 3 {
		t.Fatalf("bad input changed the membership: %v", v)
	}
	// No quorum: a joining replica is up, but two of three are down.
	n4 := g.addNode("r4")
	g.stop((l + 1) % 3)
	g.stop((l + 2) % 3)
	if err := bounded("add without quorum", func(c context.Context) error { return g.nodes[l].AddReplica(c, g.cfg.Peers[n4]) }); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("adding without a quorum: %v", err)
	}
}

// Removing the leader hands the leadership over first and names the new
// leader, which removes it.
func TestRemoveLeader(t *testing.T) {
	g := startGroup(t, 3, nil)
	ctx := context.Background()
	l := g.leader()
	old := g.cfg.Peers[l].ID
	err := g.nodes[l].RemoveReplica(ctx, old)
	var nle *NotLeaderError
	if !errors.As(err, &nle) {
		t.Fatalf("removing the leader: %v, want a NotLeaderError", err)
	}
	nl := -1
	for i, p := range g.cfg.Peers {
		if p.ID == nle.LeaderID {
			nl = i
		}
	}
	if nl < 0 || nl == l {
		t.Fatalf("new leader %q", nle.LeaderID)
	}
	if err := g.nodes[nl].RemoveReplica(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := put(ctx, g.nodes[nl], "k", "v", 0); err != nil {
		t.Fatal(err)
	}
	if v := voters(t, g.nodes[nl]); len(v) != 2 || v[old] {
		t.Fatalf("members: %v", v)
	}
	// The removed replica sends callers to the new leader.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, err := g.nodes[l].Get(ctx, []byte("k"))
		if errors.As(err, &nle) && nle.LeaderID == g.cfg.Peers[nl].ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the removed replica answers %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Splitting a shard offline: a new group seeded with copies of a stopped
// replica's store serves the copied data under its own log, and so does
// the old group; a store of another group under an existing log, or under
// a joining replica, is refused.
func TestSeedNewGroupFromAnotherGroupsStore(t *testing.T) {
	old := startGroup(t, 3, nil)
	ctx := context.Background()
	l := old.leader()
	for i := range 100 {
		if _, err := put(ctx, old.nodes[l], fmt.Sprint("k", i), "v", 0); err != nil {
			t.Fatal(err)
		}
	}
	waitApplied(t, old, old.nodes[l].AppliedIndex())
	for i := range old.nodes {
		old.stop(i)
	}

	seeded := &group{t: t, cfg: old.cfg}
	seeded.cfg.Cluster = "seeded-" + t.Name()
	seeded.cfg.Peers = nil
	for i := range 3 {
		seeded.cfg.Peers = append(seeded.cfg.Peers, Peer{ID: fmt.Sprintf("n%d", i+1), RPC: fmt.Sprintf("rpc-of-n%d", i+1), Raft: testport.Addr(t)})
		dir := t.TempDir()
		if err := os.CopyFS(filepath.Join(dir, "kv"), os.DirFS(filepath.Join(old.dirs[l], "kv"))); err != nil {
			t.Fatal(err)
		}
		seeded.dirs = append(seeded.dirs, dir)
	}
	seeded.nodes = make([]*Node, 3)
	t.Cleanup(func() {
		for i := range seeded.nodes {
			seeded.stop(i)
		}
	})
	for i := range 3 {
		seeded.start(i)
	}
	sl := seeded.leader()
	for _, k := range []string{"k0", "k99"} {
		if v, _, err := seeded.nodes[sl].Get(ctx, []byte(k)); err != nil || string(v) != "v" {
			t.Fatalf("seeded group: %s = %q %v", k, v, err)
		}
	}
	// Its own writes apply (the store forgot the old group's index),
	// compare-and-set against the copied versions included.
	_, ver, _ := seeded.nodes[sl].Get(ctx, []byte("k5"))
	if _, err := put(ctx, seeded.nodes[sl], "k5", "w", ver); err != nil {
		t.Fatalf("CAS on a copied key: %v", err)
	}
	if _, err := put(ctx, seeded.nodes[sl], "new", "w", 0); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, seeded, seeded.nodes[sl].AppliedIndex())
	for i, n := range seeded.nodes {
		if v, _, err := n.db.Get(ctx, []byte("k5")); err != nil || string(v) != "w" {
			t.Fatalf("seeded replica %d: k5 = %q %v", i, v, err)
		}
	}
	// The old group goes on with its own data.
	for i := range old.nodes {
		old.start(i)
	}
	ol := old.leader()
	if v, _, err := old.nodes[ol].Get(ctx, []byte("k5")); err != nil || string(v) != "v" {
		t.Fatalf("old group: k5 = %q %v", v, err)
	}

	// A seeded store under the old group's raft log: refused.
	old.stop(ol)
	seeded.stop(0)
	mixed := t.TempDir()
	if err := os.CopyFS(mixed, os.DirFS(old.dirs[ol])); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(mixed, "kv"))
	if err := os.CopyFS(filepath.Join(mixed, "kv"), os.DirFS(filepath.Join(seeded.dirs[0], "kv"))); err != nil {
		t.Fatal(err)
	}
	cfg := old.cfg
	cfg.ID = old.cfg.Peers[ol].ID
	cfg.Raft = testport.Addr(t)
	if n, err := Open(mixed, cfg); err == nil {
		n.Close()
		t.Fatal("a replica opened another group's store under its raft log")
	} else {
		t.Logf("refused: %v", err)
	}
	// A joining replica on another group's store: refused.
	joining := t.TempDir()
	if err := os.CopyFS(filepath.Join(joining, "kv"), os.DirFS(filepath.Join(seeded.dirs[0], "kv"))); err != nil {
		t.Fatal(err)
	}
	cfg.Join = true
	if n, err := Open(joining, cfg); err == nil {
		n.Close()
		t.Fatal("a joining replica opened another group's store")
	} else {
		t.Logf("refused: %v", err)
	}
}
