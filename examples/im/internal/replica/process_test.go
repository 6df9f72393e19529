package replica_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/replica"
	"github.com/svrkit/svrkit/examples/im/internal/testport"
	storage "github.com/svrkit/svrkit/examples/im/logicsvr/storage/handlers"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

// These tests run the storage Logicsvr as a group of real processes — the
// test binary re-executed as TestReplicaProcess — so that replicas can be
// killed with SIGKILL and paused with SIGSTOP, and talk to them over real
// TCP through the generated client and svrkit's routing, as the
// data-access services do.

const envChild = "REPLICA_TEST_CHILD"

// TestReplicaProcess is a storage replica when the parent runs it.
func TestReplicaProcess(t *testing.T) {
	raw := os.Getenv(envChild)
	if raw == "" {
		t.Skip("a child process of the group tests")
	}
	var cfg logicsvr.Config
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	h, err := logicsvr.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	impl, err := storage.NewStorage(h)
	if err != nil {
		t.Fatal(err)
	}
	im.RegisterStorageServer(h, impl)
	admin, err := storage.NewStorageAdmin(h)
	if err != nil {
		t.Fatal(err)
	}
	im.RegisterStorageAdminServer(h, admin)
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h.Shutdown(ctx)
}

// procGroup is a storage group of child processes.
type procGroup struct {
	t       *testing.T
	cluster string // the group's cluster id (default "group-test")
	root    string
	peers   []replica.Peer
	dirs    []string
	join    []bool // started with "join": true (added after the start)
	cmds    []*exec.Cmd
	store   im.StorageClient
	one     []*svrkit.Client // a client per replica, for finding the leader
}

func startProcGroup(t *testing.T, n int) *procGroup {
	t.Helper()
	return startNamedProcGroup(t, n, "group-test", "s")
}

// startNamedProcGroup starts a group of n replicas named prefix1..n with
// the cluster id cluster.
func startNamedProcGroup(t *testing.T, n int, cluster, prefix string) *procGroup {
	t.Helper()
	g := newProcGroup(t, n, cluster, prefix)
	for i := range n {
		g.start(i)
	}
	return g
}

// newProcGroup is startNamedProcGroup without the start: the caller may
// fill the replicas' directories first, then start each.
func newProcGroup(t *testing.T, n int, cluster, prefix string) *procGroup {
	t.Helper()
	g := &procGroup{t: t, cluster: cluster, cmds: make([]*exec.Cmd, n), join: make([]bool, n)}
	root := t.TempDir()
	g.root = root
	var rpcs []string
	for i := range n {
		p := replica.Peer{ID: fmt.Sprintf("%s%d", prefix, i+1), RPC: testport.Addr(t), Raft: testport.Addr(t)}
		g.peers = append(g.peers, p)
		g.dirs = append(g.dirs, filepath.Join(root, p.ID))
		rpcs = append(rpcs, p.RPC)
	}
	t.Cleanup(func() {
		for i := range g.cmds {
			g.kill(i)
		}
	})
	c, err := svrkit.NewClient(joinAddrs(rpcs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	g.store = im.NewStorageClient(c)
	for _, a := range rpcs {
		one, err := svrkit.NewClient(a, svrkit.WithRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { one.Close() })
		g.one = append(g.one, one)
	}
	return g
}

func joinAddrs(a []string) string {
	s := ""
	for i, x := range a {
		if i > 0 {
			s += ","
		}
		s += x
	}
	return s
}

func (g *procGroup) start(i int) {
	g.t.Helper()
	app, _ := json.Marshal(map[string]any{
		"dir": g.dirs[i], "sync_key_secret": "group test secret",
		"replica": map[string]any{
			"id": g.peers[i].ID, "cluster": g.cluster, "peers": g.peers, "join": g.join[i],
			"heartbeat_timeout": "500ms", "election_timeout": "500ms",
			// Small, so that the log is cut often and a replica that was
			// down catches up from a snapshot.
			"snapshot_threshold": 64, "trailing_logs": 32, "snapshot_interval": "200ms",
		},
	})
	cfg, _ := json.Marshal(logicsvr.Config{
		Name: "storage", HTTP: logicsvr.Off, RPC: g.peers[i].RPC, Admin: "127.0.0.1:0",
		App: app, Dev: true, DrainTimeout: logicsvr.Duration(2 * time.Second),
	})
	cmd := exec.Command(os.Args[0], "-test.run=^TestReplicaProcess$", "-test.v=false")
	cmd.Env = append(os.Environ(), envChild+"="+string(cfg))
	if testing.Verbose() {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	g.cmds[i] = cmd
}

// kill SIGKILLs replica i (resuming it first if it is stopped).
func (g *procGroup) kill(i int) {
	if c := g.cmds[i]; c != nil {
		c.Process.Signal(syscall.SIGCONT)
		c.Process.Kill()
		c.Wait()
		g.cmds[i] = nil
	}
}

// term stops replica i gracefully (SIGTERM) and waits for it.
func (g *procGroup) term(i int) {
	if c := g.cmds[i]; c != nil {
		c.Process.Signal(syscall.SIGTERM)
		c.Wait()
		g.cmds[i] = nil
	}
}

func (g *procGroup) signal(i int, s syscall.Signal) {
	if c := g.cmds[i]; c != nil {
		c.Process.Signal(s)
	}
}

// leader returns the replica that serves reads now, or -1.
func (g *procGroup) leader() int {
	for i, c := range g.one {
		if g.cmds[i] == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := im.NewStorageClient(c).Get(ctx, &im.KVGetRequest{UserId: 1, Key: []byte("probe")})
		cancel()
		if svrkit.CodeOf(err) == svrkit.NotFound || err == nil {
			return i
		}
	}
	return -1
}

// waitInGroup waits up to d for replica i to serve or to redirect to a
// leader: it is up and hears from the group.
func (g *procGroup) waitInGroup(i int, d time.Duration) {
	g.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := im.NewStorageClient(g.one[i]).Get(ctx, &im.KVGetRequest{UserId: 1, Key: []byte("probe")})
		cancel()
		if _, redirect := svrkit.RedirectOf(err); redirect || err == nil || svrkit.CodeOf(err) == svrkit.NotFound {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	g.t.Fatalf("replica %d not back in the group within %s", i, d)
}

// waitLeader waits up to d for a leader.
func (g *procGroup) waitLeader(d time.Duration) int {
	g.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if l := g.leader(); l >= 0 {
			return l
		}
		time.Sleep(50 * time.Millisecond)
	}
	g.t.Fatalf("no leader within %s", d)
	return -1
}

// Failover: the leader is SIGKILLed; writes through the routed client
// resume within a bound. A replica whose data directory was deleted
// rejoins from a snapshot and is then needed for a majority, and every
// write is still there.
func TestProcessFailoverAndRejoin(t *testing.T) {
	g := startProcGroup(t, 3)
	ctx := context.Background()
	g.waitLeader(30 * time.Second)
	write := func(key string) error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := g.store.Put(cctx, &im.KVPutRequest{UserId: 7, Key: []byte(key), Value: []byte(key), AnyVersion: true})
		return err
	}
	// mustWrite retries a write a leader change failed (it is idempotent).
	mustWrite := func(key string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			err := write(key)
			if err == nil {
				return
			}
			if svrkit.CodeOf(err) != svrkit.Unavailable || time.Now().After(deadline) {
				t.Fatalf("write %s: %v", key, err)
			}
		}
	}
	for i := range 50 {
		mustWrite(fmt.Sprint("a", i))
	}
	l := g.leader()
	g.kill(l)
	killed := time.Now()
	for {
		if write("after-kill") == nil {
			break
		}
		if time.Since(killed) > 15*time.Second {
			t.Fatal("no write succeeded within 15s of the leader's kill")
		}
	}
	failover := time.Since(killed)
	t.Logf("first write %s after the leader's SIGKILL", failover.Round(time.Millisecond))
	g.start(l) // back, on its old directory

	// Wipe a follower, write past a few snapshots, bring it back empty.
	l = g.waitLeader(30 * time.Second)
	wiped := (l + 1) % 3
	g.kill(wiped)
	if err := os.RemoveAll(g.dirs[wiped]); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		mustWrite(fmt.Sprint("b", i))
	}
	g.start(wiped)
	t.Logf("wiped replica restarted")
	// Now the third replica goes: the wiped one is needed for a majority.
	other := 3 - l - wiped
	g.kill(other)
	deadline := time.Now().Add(30 * time.Second)
	for write("needs-the-wiped") != nil {
		if time.Now().After(deadline) {
			t.Fatal("the group of the leader and the wiped replica did not take a write")
		}
	}
	t.Logf("written with the wiped replica in the majority")
	for _, k := range []string{"a0", "a49", "after-kill", "b0", "b299", "needs-the-wiped"} {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r, err := g.store.Get(cctx, &im.KVGetRequest{UserId: 7, Key: []byte(k)})
		cancel()
		if err != nil || string(r.GetValue()) != k {
			t.Fatalf("key %s: %v %v", k, r, err)
		}
	}
	if _, err := os.Stat(filepath.Join(g.dirs[wiped], "kv")); err != nil {
		t.Fatalf("the wiped replica has no store: %v", err)
	}
}

var failovers = flag.Int("replica.failovers", 0, "measure failover time over this many leader kills (TestFailoverTime)")

// TestFailoverTime measures failover as a client sees it: the leader is
// SIGKILLed, and the time to the first successful write through the
// routed client is taken; the killed replica is restarted before the next
// round. It reports the median and the maximum. Off by default:
//
//	go test ./examples/im/internal/replica -run FailoverTime -replica.failovers 10 -v
func TestFailoverTime(t *testing.T) {
	if *failovers <= 0 {
		t.Skip("measure with -replica.failovers N")
	}
	g := startProcGroup(t, 3)
	g.waitLeader(30 * time.Second)
	var times []time.Duration
	for round := range *failovers {
		l := g.waitLeader(30 * time.Second)
		g.kill(l)
		killed := time.Now()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := g.store.Put(ctx, &im.KVPutRequest{UserId: 7, Key: []byte("k"), Value: []byte(fmt.Sprint(round)), AnyVersion: true})
			cancel()
			if err == nil {
				break
			}
			if time.Since(killed) > 30*time.Second {
				t.Fatalf("round %d: no write within 30s: %v", round, err)
			}
		}
		times = append(times, time.Since(killed))
		g.start(l)
		// The next kill needs the restarted replica for a majority.
		g.waitInGroup(l, 30*time.Second)
	}
	slices.Sort(times)
	t.Logf("failover (leader SIGKILL -> first write) over %d rounds: median %s, max %s, all %v",
		len(times), times[len(times)/2].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond), times)
}
