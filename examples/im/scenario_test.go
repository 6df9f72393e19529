package im_test

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/imclient"
	"github.com/svrkit/svrkit/examples/im/imtest"
)

// TestScenarioChaos is issue #5's scenario: the real backend under
// `svrkit up`; three users exchange 1,000 messages while the send and sync
// Logicsvrs and the storage service are SIGKILLed and restarted at random
// moments. Then every message acknowledged to its sender must have been
// synced by its receiver exactly once, in send order per sender, and no
// sync may have returned a gap or a duplicate — checked on every answer, not
// only at the end.
//
// Each user has two devices: "phone" sends, "tablet" only syncs; the tablet
// sees the user's incoming messages and the copies of what the phone sent.
// Senders send one message at a time (the next after the previous is
// acknowledged), so per sender the acknowledged messages have a send order
// the receivers must reproduce.
//
// With -im.topology topology-replicated.json or topology-sharded.json the
// same runs on replicated storage, where each storage kill is of the
// current leader of a replica group (chosen at random with shards).
func TestScenarioChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole backend with restarts")
	}
	const (
		total   = 1000
		pace    = 15 * time.Millisecond // between one sender's messages
		sendMax = 90 * time.Second      // one send, retries included
	)
	b := imtest.StartTopology(t, *scenarioTopology)
	addrs, err := imclient.ReadStateFile(b.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	names := []string{"alice", "bob", "carol"}
	type user struct {
		name          string
		id            uint64
		phone, tablet *imclient.Client
	}
	users := make([]*user, len(names))
	byID := map[uint64]int{}
	for i, name := range names {
		u := &user{name: name, phone: imclient.New(addrs), tablet: imclient.New(addrs)}
		id, err := u.phone.Register(ctx, name, "password-"+name, "")
		if err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
		u.id = id
		if _, err := u.phone.Login(ctx, name, "password-"+name, "phone"); err != nil {
			t.Fatalf("login %s: %v", name, err)
		}
		if _, err := u.tablet.Login(ctx, name, "password-"+name, "tablet"); err != nil {
			t.Fatalf("login %s: %v", name, err)
		}
		users[i], byID[id] = u, i
	}

	// acked[s][r] counts messages from s to r acknowledged to s; sentBy[s]
	// all of s's acknowledged messages.
	var acked [3][3]atomic.Int64
	var sentBy [3]atomic.Int64
	var sendersDone sync.WaitGroup
	sendErr := make(chan error, len(users))
	// Senders wait at half way until each victim has been killed once, so
	// on a fast machine the traffic cannot end before the chaos has begun.
	eachKilledOnce := make(chan struct{})
	perSender := []int{total/3 + total%3, total / 3, total / 3}
	for s, u := range users {
		sendersDone.Add(1)
		go func() {
			defer sendersDone.Done()
			for n := 1; n <= perSender[s]; n++ {
				if n == perSender[s]/2 {
					select {
					case <-eachKilledOnce:
					case <-time.After(3 * time.Minute):
					}
				}
				r := (s + 1 + n%2) % 3 // alternate between the other two
				text := fmt.Sprintf("m|%d|%d", s, n)
				sctx, scancel := context.WithTimeout(ctx, sendMax)
				_, err := u.phone.SendText(sctx, users[r].id, fmt.Sprintf("%s-%d", u.name, n), text)
				scancel()
				if err != nil {
					sendErr <- fmt.Errorf("%s send %d: %w", u.name, n, err)
					return
				}
				acked[s][r].Add(1)
				sentBy[s].Add(1)
				time.Sleep(pace)
			}
		}()
	}

	// Receivers check every answer as it comes.
	type progress struct {
		mu       sync.Mutex
		last     [3]int // last n seen from each other sender
		lastSelf int    // last n of the own copies
		got      [3]int
		gotSelf  int
		versions uint64
		bad      []string
	}
	recv := make([]*progress, len(users))
	recvCtx, stopRecv := context.WithCancel(ctx)
	var receivers sync.WaitGroup
	for i, u := range users {
		p := &progress{}
		recv[i] = p
		receivers.Add(1)
		go func() {
			defer receivers.Done()
			for recvCtx.Err() == nil {
				rctx, rcancel := context.WithTimeout(recvCtx, 10*time.Second)
				rep, err := u.tablet.Sync(rctx, 200)
				rcancel()
				if err != nil {
					if !imclient.Transient(err) && recvCtx.Err() == nil {
						p.mu.Lock()
						p.bad = append(p.bad, fmt.Sprintf("sync: %v", err))
						p.mu.Unlock()
						return
					}
					time.Sleep(20 * time.Millisecond)
					continue
				}
				p.mu.Lock()
				if rep.GetGap() {
					p.bad = append(p.bad, "sync answered gap")
				}
				for _, it := range rep.GetItems() {
					if it.GetType() != im.SyncType_SYNC_TYPE_MESSAGES {
						continue
					}
					if it.GetVersion() <= p.versions {
						p.bad = append(p.bad, fmt.Sprintf("version %d after %d", it.GetVersion(), p.versions))
					}
					p.versions = it.GetVersion()
					m := it.GetMessage()
					f := strings.Split(m.GetText(), "|")
					s, n := -1, 0
					if len(f) == 3 {
						s, _ = strconv.Atoi(f[1])
						n, _ = strconv.Atoi(f[2])
					}
					switch {
					case s < 0 || s > 2 || n == 0:
						p.bad = append(p.bad, fmt.Sprintf("unexpected message %q", m.GetText()))
					case s == i:
						if n != p.lastSelf+1 {
							p.bad = append(p.bad, fmt.Sprintf("own copy %d after %d", n, p.lastSelf))
						}
						p.lastSelf = n
						p.gotSelf++
					default:
						// Sender s's messages to i are every other n; the
						// next one after n is n+2 (the first is 1 or 2).
						if want := p.last[s] + 2; p.last[s] != 0 && n != want || p.last[s] == 0 && n > 2 {
							p.bad = append(p.bad, fmt.Sprintf("from %s: %d after %d (gap or duplicate)", names[s], n, p.last[s]))
						}
						p.last[s] = n
						p.got[s]++
					}
				}
				p.mu.Unlock()
				if !rep.GetContinueFlag() {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}

	// Chaos: kill send, sync and storage (each at least once, in random
	// order), each at a random moment after the previous victim is back.
	victims := []string{"send", "sync", "storage"}
	rand.Shuffle(len(victims), func(i, j int) { victims[i], victims[j] = victims[j], victims[i] })
	for range 3 {
		victims = append(victims, []string{"send", "sync", "storage"}[rand.IntN(3)])
	}
	allSent := make(chan struct{})
	go func() { sendersDone.Wait(); close(allSent) }()
	kills := map[string]int{}
chaos:
	for i, v := range victims {
		if i == 3 {
			close(eachKilledOnce)
		}
		select {
		case <-allSent:
			break chaos
		case <-time.After(time.Duration(200+rand.IntN(800)) * time.Millisecond):
		}
		victim := v
		if v == "storage" {
			victim = storageVictim(t, b)
		}
		pid, err := b.Kill(victim)
		if err != nil {
			t.Fatalf("killing %s: %v", victim, err)
		}
		kills[v]++
		t.Logf("SIGKILLed %s (pid %d)", victim, pid)
		if err := b.WaitReady(ctx, victim, pid, 60*time.Second); err != nil {
			t.Fatalf("%v\n%s", err, tail(b.Output(), 60))
		}
	}
	select {
	case <-eachKilledOnce:
	default:
		close(eachKilledOnce)
	}
	select {
	case <-allSent:
	case <-ctx.Done():
		t.Fatal("senders did not finish")
	}
	close(sendErr)
	for err := range sendErr {
		t.Error(err)
	}
	for _, v := range []string{"send", "sync", "storage"} {
		if kills[v] == 0 {
			t.Errorf("%s was never killed: senders finished after %d kills; slow the senders down", v, len(kills))
		}
	}

	// Every acknowledged message arrives, bounded.
	complete := func() bool {
		for r, p := range recv {
			p.mu.Lock()
			ok := p.gotSelf == int(sentBy[r].Load())
			for s := range users {
				if s != r && p.got[s] != int(acked[s][r].Load()) {
					ok = false
				}
			}
			p.mu.Unlock()
			if !ok {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(60 * time.Second)
	for !complete() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	// A little longer, to catch a late duplicate.
	time.Sleep(500 * time.Millisecond)
	stopRecv()
	receivers.Wait()

	var sent int64
	for s := range users {
		sent += sentBy[s].Load()
	}
	if sent != total {
		t.Errorf("%d messages acknowledged, want %d", sent, total)
	}
	for r, p := range recv {
		for _, bad := range p.bad {
			t.Errorf("%s: %s", names[r], bad)
		}
		for s := range users {
			if s != r && p.got[s] != int(acked[s][r].Load()) {
				t.Errorf("%s received %d messages from %s, %d were acknowledged", names[r], p.got[s], names[s], acked[s][r].Load())
			}
		}
		if p.gotSelf != int(sentBy[r].Load()) {
			t.Errorf("%s's tablet has %d own copies, %d were sent", names[r], p.gotSelf, sentBy[r].Load())
		}
	}
	for r, p := range recv {
		t.Logf("%s: received %d from %s, %d from %s, %d own copies; all in order", names[r],
			p.got[(r+1)%3], names[(r+1)%3], p.got[(r+2)%3], names[(r+2)%3], p.gotSelf)
	}
	for _, v := range []string{"send", "sync", "storage"} {
		if *scenarioTopology == "" {
			t.Logf("%s: %d kills, %d restarts", v, kills[v], b.Instance(v).Restarts)
		} else {
			t.Logf("%s: %d kills", v, kills[v])
		}
	}
	if t.Failed() {
		t.Logf("backend output (tail):\n%s", tail(b.Output(), 80))
	}
}

var scenarioTopology = flag.String("im.topology", "", "run TestScenarioChaos on this topology file of examples/im (topology-replicated.json, topology-sharded.json) instead of topology.json")

// storageVictim returns the storage instance to SIGKILL: the only one of
// the default topology, else the leader of a replica group chosen at
// random (asked with StorageAdmin.ListReplicas as the operator).
func storageVictim(t *testing.T, b *imtest.Backend) string {
	t.Helper()
	insts, err := b.Instances()
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string][]string{}
	for _, in := range insts {
		if slices.Contains(in.Serves, im.StorageAdmin_ServiceName) {
			groups[in.Service] = append(groups[in.Service], in.Name)
		}
	}
	if len(groups) == 1 && len(groups["storage"]) == 1 {
		return groups["storage"][0]
	}
	names := slices.Sorted(maps.Keys(groups))
	group := groups[names[rand.IntN(len(names))]]
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, name := range group {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			r, err := im.NewStorageAdminClient(b.RPC(name, "operator")).ListReplicas(ctx, &im.ListReplicasRequest{})
			cancel()
			if err != nil {
				continue
			}
			for _, rep := range r.GetReplicas() {
				if rep.GetLeader() && slices.Contains(group, rep.GetId()) {
					return rep.GetId() // the topologies name replicas by instance
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader of %v within 30s", group)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
