package replica_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/replica"
	"github.com/svrkit/svrkit/examples/im/internal/testport"
	"github.com/svrkit/svrkit/svrkit"
)

// Membership changes on real processes, through StorageAdmin as an
// operator calls it, while callers route by a routing file that is edited
// as the README's procedure says.

// addProc starts a new replica process with "join": true on an empty
// directory and returns its index. It is not a member until AddReplica.
func (g *procGroup) addProc(id string) int {
	g.t.Helper()
	g.peers = append(g.peers, replica.Peer{ID: id, RPC: testport.Addr(g.t), Raft: testport.Addr(g.t)})
	g.dirs = append(g.dirs, filepath.Join(g.root, id))
	g.join = append(g.join, true)
	g.cmds = append(g.cmds, nil)
	i := len(g.peers) - 1
	one, err := svrkit.NewClient(g.peers[i].RPC, svrkit.WithRetries(0))
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { one.Close() })
	g.one = append(g.one, one)
	g.start(i)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", g.peers[i].Raft, time.Second)
		if err == nil {
			c.Close()
			return i
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("%s not listening within 30s: %v", id, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// admin calls fn with a StorageAdmin client over the given replicas'
// addresses, within d.
func (g *procGroup) admin(d time.Duration, replicas []int, fn func(context.Context, im.StorageAdminClient) error) error {
	g.t.Helper()
	var addrs []string
	for _, i := range replicas {
		addrs = append(addrs, g.peers[i].RPC)
	}
	c, err := svrkit.NewClient(strings.Join(addrs, ","))
	if err != nil {
		g.t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return fn(ctx, im.NewStorageAdminClient(c))
}

// routes is the callers' routing file for im.Storage.
type routes struct {
	t    *testing.T
	path string
	rt   *svrkit.RouteTable
}

func newRoutes(t *testing.T, g *procGroup, replicas ...int) (*routes, im.StorageClient) {
	t.Helper()
	r := &routes{t: t, path: filepath.Join(t.TempDir(), "routes.json")}
	r.set(g, replicas...)
	rt, err := svrkit.LoadRouteTable(r.path, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	r.rt = rt
	c, err := svrkit.NewClient("im.Storage", svrkit.WithResolver(rt))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return r, im.NewStorageClient(c)
}

// set rewrites the file to list replicas, and waits until the table has
// re-read it.
func (r *routes) set(g *procGroup, replicas ...int) {
	r.t.Helper()
	var addrs []string
	for _, i := range replicas {
		addrs = append(addrs, g.peers[i].RPC)
	}
	raw, _ := json.Marshal(map[string]any{"services": map[string][]string{"im.Storage": addrs}})
	tmp := r.path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Rename(tmp, r.path); err != nil {
		r.t.Fatal(err)
	}
	if r.rt == nil {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := r.rt.Resolve("im.Storage")
		if slices.Equal(got, addrs) {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("routes still %v, want %v", got, addrs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writer writes keys through the routed client until stopped, retrying
// each (idempotent: AnyVersion puts of a fixed value) until it is
// acknowledged, and records the acknowledged ones.
type writer struct {
	mu    sync.Mutex
	acked []string
	worst time.Duration // the longest a write waited for its acknowledgement
	stop  chan struct{}
	done  chan struct{}
	err   error
}

func startWriter(store im.StorageClient) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			key := fmt.Sprint("w", i)
			start := time.Now()
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := store.Put(ctx, &im.KVPutRequest{UserId: 7, Key: []byte(key), Value: []byte(key), AnyVersion: true})
				cancel()
				if err == nil {
					break
				}
				if time.Since(start) > 30*time.Second {
					w.err = fmt.Errorf("write %s not acknowledged within 30s: %v", key, err)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			w.mu.Lock()
			w.acked = append(w.acked, key)
			w.worst = max(w.worst, time.Since(start))
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// waitMore waits until n more writes than now are acknowledged.
func (w *writer) waitMore(t *testing.T, n int, d time.Duration) {
	t.Helper()
	target := w.count() + n
	deadline := time.Now().Add(d)
	for w.count() < target {
		if w.err != nil || time.Now().After(deadline) {
			t.Fatalf("writes stalled at %d (want %d): %v", w.count(), target, w.err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *writer) finish(t *testing.T) []string {
	t.Helper()
	close(w.stop)
	<-w.done
	if w.err != nil {
		t.Fatal(w.err)
	}
	return w.acked
}

func checkKeys(t *testing.T, store im.StorageClient, keys []string) {
	t.Helper()
	for _, k := range keys {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := store.Get(ctx, &im.KVGetRequest{UserId: 7, Key: []byte(k)})
		cancel()
		if err != nil || string(r.GetValue()) != k {
			t.Fatalf("acknowledged key %s: %v %v", k, r, err)
		}
	}
}

func memberIDs(rs []*im.Replica) []string {
	var ids []string
	for _, r := range rs {
		id := r.GetId()
		if !r.GetVoter() {
			id += "(non-voter)"
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

var addMB = flag.Int("replica.addmb", 4, "MB of data the replica TestProcessReplaceDeadReplica adds must catch up")

// Replace a dead replica: one of three dies for good, a fresh fourth on an
// empty directory is added (catching up a few MB from a snapshot), the
// dead one is removed, the routes follow, and then another original dies:
// the group keeps taking writes throughout and every acknowledged write is
// there at the end.
func TestProcessReplaceDeadReplica(t *testing.T) {
	g := startProcGroup(t, 3)
	l := g.waitLeader(30 * time.Second)
	r, store := newRoutes(t, g, 0, 1, 2)

	// A few MB (more with -replica.addmb), so that the new replica's
	// catching up is measurable.
	const ops, size = 32, 8 << 10
	batches := max(1, *addMB<<20/(ops*size))
	for b := range batches {
		req := &im.BatchRequest{UserId: 9}
		for o := range ops {
			req.Ops = append(req.Ops, &im.BatchOp{Kind: im.BatchOp_KIND_PUT, Key: []byte(fmt.Sprint("bulk", b, "-", o)),
				Value: make([]byte, size), AnyVersion: true})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := store.Batch(ctx, req)
		cancel()
		if err != nil {
			t.Fatalf("bulk batch %d: %v", b, err)
		}
	}
	w := startWriter(store)
	w.waitMore(t, 20, 30*time.Second)

	dead := l // the leader dies, for good
	g.kill(dead)
	t.Logf("killed %s (the leader) for good", g.peers[dead].ID)
	// Enough entries that the new leader snapshots and cuts its log
	// (threshold 64, 32 kept): s4 must catch up from a snapshot.
	w.waitMore(t, 150, 60*time.Second)

	n4 := g.addProc("s4")
	live := []int{0, 1, 2}
	live = slices.DeleteFunc(live, func(i int) bool { return i == dead })
	start := time.Now()
	var added *im.AddReplicaReply
	err := g.admin(60*time.Second, live, func(ctx context.Context, a im.StorageAdminClient) error {
		var err error
		added, err = a.AddReplica(ctx, &im.AddReplicaRequest{Id: "s4", Rpc: g.peers[n4].RPC, Raft: g.peers[n4].Raft})
		return err
	})
	if err != nil {
		t.Fatalf("add s4: %v", err)
	}
	t.Logf("added s4 (caught up %d MB of values and the writes meanwhile) in %s: members %v", batches*ops*size>>20,
		time.Since(start).Round(time.Millisecond), memberIDs(added.GetReplicas()))
	if snaps, _ := filepath.Glob(filepath.Join(g.dirs[n4], "snapshots", "*", "meta.json")); len(snaps) == 0 {
		t.Error("s4 holds no snapshot: it did not catch up from one")
	}
	r.set(g, append(live, n4)...)
	w.waitMore(t, 20, 30*time.Second)

	var removed *im.RemoveReplicaReply
	err = g.admin(30*time.Second, append(live, n4), func(ctx context.Context, a im.StorageAdminClient) error {
		var err error
		removed, err = a.RemoveReplica(ctx, &im.RemoveReplicaRequest{Id: g.peers[dead].ID})
		return err
	})
	if err != nil {
		t.Fatalf("remove %s: %v", g.peers[dead].ID, err)
	}
	if got := memberIDs(removed.GetReplicas()); len(got) != 3 || slices.Contains(got, g.peers[dead].ID) {
		t.Fatalf("members after the removal: %v", got)
	}
	t.Logf("removed %s: members %v", g.peers[dead].ID, memberIDs(removed.GetReplicas()))
	w.waitMore(t, 20, 30*time.Second)

	// Another original dies: s4 and the last original are a majority.
	other := live[0]
	if l2 := g.leader(); l2 == live[1] {
		other = live[1] // the leader, if it is an original
	}
	g.kill(other)
	t.Logf("killed %s too", g.peers[other].ID)
	w.waitMore(t, 30, 30*time.Second)
	acked := w.finish(t)
	checkKeys(t, store, acked)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r, err := store.Get(ctx, &im.KVGetRequest{UserId: 9, Key: []byte(fmt.Sprint("bulk", batches-1, "-", ops-1))}); err != nil || len(r.GetValue()) != size {
		t.Fatalf("bulk data: %v", err)
	}
	t.Logf("%d acknowledged writes all there; the slowest waited %s", len(acked), w.worst.Round(time.Millisecond))
}

// Removing the leader through the command: the leadership moves first, a
// new leader removes the old one, and writes go on.
func TestProcessRemoveLeader(t *testing.T) {
	g := startProcGroup(t, 3)
	l := g.waitLeader(30 * time.Second)
	r, store := newRoutes(t, g, 0, 1, 2)
	w := startWriter(store)
	w.waitMore(t, 20, 30*time.Second)

	old := g.peers[l].ID
	var removed *im.RemoveReplicaReply
	start := time.Now()
	err := g.admin(30*time.Second, []int{0, 1, 2}, func(ctx context.Context, a im.StorageAdminClient) error {
		var err error
		removed, err = a.RemoveReplica(ctx, &im.RemoveReplicaRequest{Id: old})
		return err
	})
	if err != nil {
		t.Fatalf("remove the leader %s: %v", old, err)
	}
	t.Logf("removed the leader %s in %s: members %v", old, time.Since(start).Round(time.Millisecond), memberIDs(removed.GetReplicas()))
	var rest []int
	for i := range 3 {
		if i != l {
			rest = append(rest, i)
		}
	}
	if got := memberIDs(removed.GetReplicas()); len(got) != 2 || slices.Contains(got, old) {
		t.Fatalf("members: %v", got)
	}
	w.waitMore(t, 20, 30*time.Second)
	r.set(g, rest...)
	g.kill(l)
	w.waitMore(t, 20, 30*time.Second)
	nl := g.waitLeader(30 * time.Second)
	if nl == l {
		t.Fatal("the removed replica still leads")
	}
	acked := w.finish(t)
	checkKeys(t, store, acked)
	t.Logf("%d acknowledged writes all there; the slowest waited %s", len(acked), w.worst.Round(time.Millisecond))
}

// Bad input gets a clear error within a deadline and changes nothing.
func TestProcessMembershipBadInput(t *testing.T) {
	g := startProcGroup(t, 3)
	g.waitLeader(30 * time.Second)
	all := []int{0, 1, 2}
	call := func(name string, want svrkit.Code, fn func(context.Context, im.StorageAdminClient) error, replicas []int) {
		t.Helper()
		start := time.Now()
		err := g.admin(15*time.Second, replicas, fn)
		took := time.Since(start)
		t.Logf("%s: %v (%s)", name, err, took.Round(time.Millisecond))
		if svrkit.CodeOf(err) != want {
			t.Fatalf("%s: %v, want %v", name, err, want)
		}
		if took > 10*time.Second {
			t.Fatalf("%s took %s", name, took)
		}
	}
	call("remove an unknown id", svrkit.NotFound, func(ctx context.Context, a im.StorageAdminClient) error {
		_, err := a.RemoveReplica(ctx, &im.RemoveReplicaRequest{Id: "s9"})
		return err
	}, all)
	call("add an address that does not answer", svrkit.InvalidArgument, func(ctx context.Context, a im.StorageAdminClient) error {
		_, err := a.AddReplica(ctx, &im.AddReplicaRequest{Id: "s9", Rpc: testport.Addr(t), Raft: testport.Addr(t)})
		return err
	}, all)
	call("add with no id", svrkit.InvalidArgument, func(ctx context.Context, a im.StorageAdminClient) error {
		_, err := a.AddReplica(ctx, &im.AddReplicaRequest{Rpc: testport.Addr(t), Raft: testport.Addr(t)})
		return err
	}, all)
	var list *im.ListReplicasReply
	if err := g.admin(10*time.Second, all, func(ctx context.Context, a im.StorageAdminClient) error {
		var err error
		list, err = a.ListReplicas(ctx, &im.ListReplicasRequest{})
		return err
	}); err != nil || len(list.GetReplicas()) != 3 {
		t.Fatalf("members after bad input: %v %v", list, err)
	}

	// No quorum: the new replica answers, but two of three are down.
	n4 := g.addProc("s4")
	l := g.waitLeader(30 * time.Second)
	g.kill((l + 1) % 3)
	g.kill((l + 2) % 3)
	call("add while no quorum", svrkit.Unavailable, func(ctx context.Context, a im.StorageAdminClient) error {
		_, err := a.AddReplica(ctx, &im.AddReplicaRequest{Id: "s4", Rpc: g.peers[n4].RPC, Raft: g.peers[n4].Raft})
		return err
	}, []int{l})
}
