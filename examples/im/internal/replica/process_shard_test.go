package replica_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/svrkit"
)

// Two shards, each a group of three real processes, behind a
// svrkit.ShardedInvoker split at hash 1<<63 as topology-sharded.json
// splits them: users land on both, each user's data only on its owner,
// and each shard survives the SIGKILL of its leader with every
// acknowledged write kept.
func TestProcessShardsSurviveLeaderKills(t *testing.T) {
	groups := []*procGroup{
		startNamedProcGroup(t, 3, "shard-test-a", "a"),
		startNamedProcGroup(t, 3, "shard-test-b", "b"),
	}
	var shards []svrkit.Shard
	for i, g := range groups {
		g.waitLeader(30 * time.Second)
		var addrs []string
		for _, p := range g.peers {
			addrs = append(addrs, p.RPC)
		}
		c, err := svrkit.NewClient(strings.Join(addrs, ","))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		shards = append(shards, svrkit.Shard{Name: fmt.Sprintf("im.Storage/%d", i), From: uint64(i) << 63, Invoker: c})
	}
	sharded, err := svrkit.NewShardedInvoker(shards)
	if err != nil {
		t.Fatal(err)
	}
	store := im.NewStorageClient(sharded)
	owner := func(user uint64) int {
		if svrkit.KeyHash(fmt.Sprint(user)) >= 1<<63 {
			return 1
		}
		return 0
	}

	// The writer cycles over 40 users (and user 0, the global data).
	type write struct {
		user uint64
		key  string
	}
	var mu sync.Mutex
	var acked []write
	perShard := [2]int{}
	stop, done := make(chan struct{}), make(chan struct{})
	var werr error
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			w := write{user: uint64(i % 41), key: fmt.Sprint("k", i)}
			start := time.Now()
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := store.Put(ctx, &im.KVPutRequest{UserId: w.user, Key: []byte(w.key), Value: []byte(w.key), AnyVersion: true})
				cancel()
				if err == nil {
					break
				}
				if time.Since(start) > 30*time.Second {
					werr = fmt.Errorf("write %v not acknowledged within 30s: %v", w, err)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			mu.Lock()
			acked = append(acked, w)
			perShard[owner(w.user)]++
			mu.Unlock()
		}
	}()
	// waitMore waits for n more acknowledged writes on each shard.
	waitMore := func(n int) {
		t.Helper()
		mu.Lock()
		target := [2]int{perShard[0] + n, perShard[1] + n}
		mu.Unlock()
		deadline := time.Now().Add(60 * time.Second)
		for {
			mu.Lock()
			ok := perShard[0] >= target[0] && perShard[1] >= target[1]
			got := perShard
			mu.Unlock()
			if ok {
				return
			}
			if werr != nil || time.Now().After(deadline) {
				t.Fatalf("writes per shard %v, want %v: %v", got, target, werr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitMore(20)
	for i, g := range groups {
		l := g.leader()
		if l < 0 {
			l = g.waitLeader(30 * time.Second)
		}
		g.kill(l)
		t.Logf("killed shard %d's leader %s", i, g.peers[l].ID)
		waitMore(20)
	}
	close(stop)
	<-done
	if werr != nil {
		t.Fatal(werr)
	}
	t.Logf("%d acknowledged writes, per shard %v", len(acked), perShard)
	for _, w := range acked {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := store.Get(ctx, &im.KVGetRequest{UserId: w.user, Key: []byte(w.key)})
		cancel()
		if err != nil || string(r.GetValue()) != w.key {
			t.Fatalf("acknowledged %v: %v %v", w, r, err)
		}
	}
	// Each user's data is on its owner only; user 0's on shard 1.
	if owner(0) != 1 {
		t.Fatalf("user 0 is on shard %d; the README says 1", owner(0))
	}
	for _, w := range acked[:82] {
		other := im.NewStorageClient(shards[1-owner(w.user)].Invoker)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := other.Get(ctx, &im.KVGetRequest{UserId: w.user, Key: []byte(w.key)})
		cancel()
		if svrkit.CodeOf(err) != svrkit.NotFound {
			t.Fatalf("user %d's %s on the shard that does not own it: %v", w.user, w.key, err)
		}
	}
}

// The README's offline split: shard 1's leader is stopped and its store
// copied to seed a third group, which then owns the upper half of shard
// 1's range; every write made before is read back through the new shard
// map, the moved users' from the new group.
func TestProcessSplitShard(t *testing.T) {
	a := startNamedProcGroup(t, 3, "split-test-a", "a")
	b := startNamedProcGroup(t, 3, "split-test-b", "b")
	client := func(g *procGroup) svrkit.Invoker {
		var addrs []string
		for _, p := range g.peers {
			addrs = append(addrs, p.RPC)
		}
		c, err := svrkit.NewClient(strings.Join(addrs, ","))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a.waitLeader(30 * time.Second)
	b.waitLeader(30 * time.Second)
	ca, cb := client(a), client(b)
	twoShards, err := svrkit.NewShardedInvoker([]svrkit.Shard{{Name: "a", From: 0, Invoker: ca}, {Name: "b", From: 1 << 63, Invoker: cb}})
	if err != nil {
		t.Fatal(err)
	}
	put := func(store im.StorageClient, user uint64, key string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := store.Put(ctx, &im.KVPutRequest{UserId: user, Key: []byte(key), Value: []byte(key), AnyVersion: true})
			cancel()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("put user %d %s: %v", user, key, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	const users = 60
	before := im.NewStorageClient(twoShards)
	for u := range uint64(users) {
		put(before, u, "before")
	}

	// Writes have stopped. Shard b's leader stops; its store seeds c.
	lb := b.waitLeader(30 * time.Second)
	time.Sleep(time.Second)
	b.term(lb)
	c := newProcGroup(t, 3, "split-test-c", "c")
	for _, dir := range c.dirs {
		if err := os.CopyFS(filepath.Join(dir, "kv"), os.DirFS(filepath.Join(b.dirs[lb], "kv"))); err != nil {
			t.Fatal(err)
		}
	}
	b.start(lb)
	for i := range c.peers {
		c.start(i)
	}
	c.waitLeader(30 * time.Second)
	cc := client(c)
	threeShards, err := svrkit.NewShardedInvoker([]svrkit.Shard{{Name: "a", From: 0, Invoker: ca},
		{Name: "b", From: 1 << 63, Invoker: cb}, {Name: "c", From: 3 << 62, Invoker: cc}})
	if err != nil {
		t.Fatal(err)
	}
	after := im.NewStorageClient(threeShards)
	moved := 0
	for u := range uint64(users) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := after.Get(ctx, &im.KVGetRequest{UserId: u, Key: []byte("before")})
		cancel()
		if err != nil || string(r.GetValue()) != "before" {
			t.Fatalf("user %d after the split: %v %v", u, r, err)
		}
		put(after, u, "after")
		if threeShards.Owner(fmt.Sprint(u)).Name == "c" {
			moved++
			// Its new write is on c only.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := im.NewStorageClient(cb).Get(ctx, &im.KVGetRequest{UserId: u, Key: []byte("after")})
			cancel()
			if svrkit.CodeOf(err) != svrkit.NotFound {
				t.Fatalf("moved user %d's new write on b: %v", u, err)
			}
		}
	}
	if moved == 0 {
		t.Fatal("no user moved to c")
	}
	t.Logf("%d of %d users moved to the new group c; every write before the split read back", moved, users)
}
