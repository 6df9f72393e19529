// Package replica runs the IM backend's data store (package kv) as one
// replica of a Raft group, so the storage service has no single point of
// failure: a write is answered only once a majority of the group has it in
// its fsync'd log, and any minority of replicas may die or be cut off
// without losing an answered write or stopping the group.
//
// # Engine
//
// The consensus is github.com/hashicorp/raft, with its BoltDB log store
// (raft-boltdb/v2) and its file snapshot store; pebble, through kv.DB,
// is the state machine. hashicorp/raft rather than etcd's raft because it
// is a complete node — transport, log and snapshot plumbing, membership
// changes, leader heartbeats and VerifyLeader — where etcd's is a library
// of the algorithm alone that leaves the transport, storage loop and
// snapshot shipping to the user: more of our own code in exactly the place
// where bugs lose data. Its costs: one goroutine-heavy node per group
// (fine for a handful of groups per process), and msgpack on the wire.
//
// # Write path
//
// Node.Apply (the kv.Store method the layers above already call) encodes
// the batch (kv.EncodeBatch) and hands it to raft on the leader. Once the
// entry is committed, every replica's FSM decodes it and applies it with
// kv.DB.ApplyCommitted, in log order, from one goroutine: deterministic
// (the same versions and conflicts on every replica) and skipping entries
// the DB already holds after a restart. The leader's Apply returns the
// batch's own result (versions, or the conflict that failed it), so
// compare-and-set, Key-Table and batch semantics are exactly the
// single-node ones. The pebble applies are not fsync'd — the raft log is
// the durable copy; a snapshot makes them durable before the log is cut.
//
// # Read path: linearizable, by read index
//
// Reads are served by the leader only, and only after it has confirmed it
// is still the leader: it notes the commit index, asks a majority with a
// heartbeat round (raft's VerifyLeader, no disk write), and waits for its
// FSM to have applied up to the noted index before it reads pebble. So a
// read sees every write answered before it began, anywhere in the group.
// A new leader first commits an empty marker entry of its own term and
// serves nothing until the marker is applied: only then does its FSM hold
// everything the old leader answered.
//
// No leader lease is used for reads, so clocks do not matter to their
// correctness: a leader paused (SIGSTOP, a long GC) and replaced meanwhile
// fails the heartbeat round when it wakes instead of answering from stale
// data. raft's own LeaderLeaseTimeout only makes a leader that lost
// contact with a majority step down; it measures with Go's monotonic
// clock, so a wall-clock jump does not affect it either.
//
// Follower reads are not offered. A follower's pebble lags the leader by
// the entries still in flight, so a follower read is a consistent but
// possibly stale snapshot: fine for data the client then reads again
// (a profile shown once), wrong for anything the inbox turns into a SyncKey
// promise or a compare-and-set reads back. Nothing in the IM backend needs
// the first kind badly enough to be worth the second kind's bugs.
//
// # Leaders and callers
//
// A replica that is not the leader answers a *NotLeaderError naming the
// leader's RPC address, which the storage service turns into a svrkit
// redirect; svrkit's client follows it and keeps calling the leader. While
// no leader is known (an election), a replica waits for one up to
// Config.LeaderWait before it answers ErrUnavailable, so an election costs
// callers a pause, not errors; with a majority down no leader comes and
// every call fails with ErrUnavailable after that bound.
//
// # Snapshots and catching up
//
// Raft snapshots the FSM every SnapshotThreshold entries (a pebble
// snapshot streamed out, see kv.Snapshot) and keeps TrailingLogs entries
// behind it. A replica further behind than that — down for long, or
// started on an empty directory — is sent the snapshot, restores its DB
// from it (kv.DB.Restore) and goes on from the log. On start a replica
// does not restore its own last snapshot (its DB, persisted at least up to
// it, is newer) unless its DB is behind it, for example deleted.
//
// # Splitting a shard (offline)
//
// A new group may be seeded with a copy of another group's store, to take
// over part of its key range (the README's procedure): with writes
// stopped, every replica of the new group starts on a copy of the same
// stopped replica's "kv" directory and nothing else, under the new
// cluster id. The store records which group's log it follows (its
// cluster id); a replica bootstrapping a new group on a store of another
// group resets the store's applied index, so the new log's entries, from
// index 1, apply on top of the copied data identically on every replica.
// A store of another group under an existing raft log, or under a
// joining replica, is refused: that is a directory copied by mistake.
//
// # Membership and safety
//
// The group's first members are the configured peers, bootstrapped
// identically on every replica on its first start (a replica of an
// unchanged group restarted on an empty directory bootstraps the same
// configuration again, which is consistent with the group's log). From
// then on the membership is raft's, in the log, and changes with
// AddReplica and RemoveReplica on the leader (membership.go: a new replica
// starts with Join, is added as a non-voter, catches up from a snapshot and
// then votes; removing the leader hands the leadership over first). The
// raft transport has its own TCP port and every connection names the
// group's cluster id first: a replica of another group that is pointed at
// this one by mistake is refused (see transport.go).
package replica

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/svrkit/svrkit/examples/im/internal/kv"
)

// Peer is one replica of the group.
type Peer struct {
	ID   string `json:"id"`   // unique in the group, stable across restarts
	RPC  string `json:"rpc"`  // its svrkit RPC address, where callers go
	Raft string `json:"raft"` // its raft transport address
}

// Config describes this replica and its group.
type Config struct {
	// ID is this replica's id, one of Peers.
	ID string
	// Cluster names the group; every replica of it has the same, and a
	// connection naming another is refused.
	Cluster string
	// Raft is the address the raft transport listens on (default: this
	// replica's Peers entry).
	Raft string
	// Peers are every replica of the group, this one included. On a first
	// start (an empty directory) they are the group's initial membership,
	// unless Join is set; afterwards the group's own log says who is a
	// member (membership changes: AddReplica, RemoveReplica), and Peers
	// only supply RPC addresses the group's peer directory lacks.
	Peers []Peer
	// Join makes a replica started on an empty directory wait to be added
	// to an existing group (AddReplica on its leader) instead of
	// bootstrapping Peers as a new group. Every replica started after a
	// membership change — a new one, or one whose directory was lost —
	// must join: bootstrapping a membership the group has since changed
	// would put a different configuration at the same log index.
	Join bool

	// HeartbeatTimeout and ElectionTimeout are raft's (default 1s each):
	// how long a follower waits without hearing from the leader before it
	// stands for election. Failover takes about that long plus an
	// election.
	HeartbeatTimeout, ElectionTimeout time.Duration
	// LeaderWait is how long a call waits for a leader to be known before
	// failing with ErrUnavailable (default 2 election timeouts + 1s).
	LeaderWait time.Duration
	// SnapshotThreshold (default 8192 entries) and TrailingLogs (default
	// 10240) are raft's: how many entries make a snapshot, and how many
	// stay in the log behind it for replicas slightly behind.
	SnapshotThreshold, TrailingLogs uint64
	// SnapshotInterval is how often raft checks the threshold (default
	// 30s).
	SnapshotInterval time.Duration

	// OnLead is called each time this replica becomes the leader and is
	// ready to serve, before it serves: state kept in memory above the
	// store (package seq's allocation windows) must be dropped there, as
	// another leader may have moved on meanwhile.
	OnLead func()
	// Logger receives the node's and raft's messages (default: discarded).
	Logger *slog.Logger
}

// Node is one replica. It implements kv.Store; it is safe for concurrent
// use.
type Node struct {
	cfg   Config
	log   *slog.Logger
	db    *kv.DB
	fsm   *fsm
	raft  *raft.Raft
	trans *raft.NetworkTransport
	logs  *raftboltdb.BoltStore
	peers map[raft.ServerID]Peer

	// lead is set while this replica is the leader and has applied its
	// marker entry; reads and writes are served only then.
	lead    atomic.Pointer[leadership]
	notify  chan bool
	done    chan struct{}
	refused atomic.Uint64
	// lastLeader is the last leader id raft reported (see observe), for
	// a replica removed from the group to send callers on.
	lastLeader atomic.Pointer[string]
	closing    atomic.Bool
	observer   *raft.Observer
	observed   chan raft.Observation
}

type leadership struct {
	marker uint64 // the index of this term's marker entry
}

var _ kv.Store = (*Node)(nil)

// Open opens (creating if needed) the replica's data in dir — the store in
// dir/kv, the raft log in dir/raft.db, snapshots in dir/snapshots — and
// starts it. A replica on an empty directory joins the group and catches
// up from the others.
func Open(dir string, cfg Config) (*Node, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, peers: map[raft.ServerID]Peer{},
		notify: make(chan bool, 16), done: make(chan struct{})}
	for _, p := range cfg.Peers {
		n.peers[raft.ServerID(p.ID)] = p
	}
	ok := false
	defer func() {
		if !ok {
			n.closeStores()
		}
	}()
	var err error
	if n.db, err = kv.Open(filepath.Join(dir, "kv"), nil); err != nil {
		return nil, err
	}
	if n.logs, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")}); err != nil {
		return nil, fmt.Errorf("replica: raft log: %w", err)
	}
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: slogWriter{n.log}})
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hlog)
	if err != nil {
		return nil, fmt.Errorf("replica: snapshot store: %w", err)
	}
	if err := n.catchUpFromSnapshot(snaps); err != nil {
		return nil, err
	}
	has, err := raft.HasExistingState(n.logs, n.logs, snaps)
	if err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	if err := n.adoptStore(has); err != nil {
		return nil, err
	}
	n.fsm = &fsm{db: n.db}
	n.fsm.applied.Store(n.db.AppliedIndex())
	stream, err := newStreamLayer(cfg.Raft, cfg.Cluster, n.log, func() { n.refused.Add(1) })
	if err != nil {
		return nil, err
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: stream, MaxPool: 3, Timeout: 10 * time.Second, Logger: hlog,
	})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	// A leader steps down after this long without a majority's answers;
	// as long as raft allows, so a loaded machine does not flap.
	rc.LeaderLeaseTimeout = cfg.HeartbeatTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.NoSnapshotRestoreOnStart = true // the DB is at least as new (see catchUpFromSnapshot)
	rc.NotifyCh = n.notify
	rc.Logger = hlog

	if n.raft, err = raft.NewRaft(rc, n.fsm, n.logs, n.logs, snaps, n.trans); err != nil {
		n.trans.Close()
		return nil, fmt.Errorf("replica: %w", err)
	}
	statusFn := n.status
	stream.status.Store(&statusFn)
	n.observed = make(chan raft.Observation, 16)
	n.observer = raft.NewObserver(n.observed, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(n.observer)
	go n.observe()
	if !has && cfg.Join {
		n.log.Info("empty replica waiting to be added to the group (join)", "id", cfg.ID, "raft", cfg.Raft)
	}
	if !has && !cfg.Join {
		var conf raft.Configuration
		for _, p := range cfg.Peers {
			conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Raft)})
		}
		if err := n.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			n.raft.Shutdown().Error()
			n.trans.Close()
			return nil, fmt.Errorf("replica: bootstrap: %w", err)
		}
	}
	go n.watchLeadership()
	ok = true
	return n, nil
}

func (c *Config) fill() error {
	if c.ID == "" || c.Cluster == "" || len(c.Peers) == 0 {
		return errors.New("replica: config needs id, cluster and peers")
	}
	seen := map[string]bool{}
	self := false
	for _, p := range c.Peers {
		if p.ID == "" || p.RPC == "" || p.Raft == "" {
			return fmt.Errorf("replica: peer %q needs id, rpc and raft addresses", p.ID)
		}
		if seen[p.ID] {
			return fmt.Errorf("replica: peer id %q twice", p.ID)
		}
		seen[p.ID] = true
		if p.ID == c.ID {
			self = true
			if c.Raft == "" {
				c.Raft = p.Raft
			}
		}
	}
	if !self {
		return fmt.Errorf("replica: id %q is not one of the peers", c.ID)
	}
	if c.HeartbeatTimeout <= 0 {
		c.HeartbeatTimeout = time.Second
	}
	if c.ElectionTimeout <= 0 {
		c.ElectionTimeout = time.Second
	}
	if c.LeaderWait <= 0 {
		c.LeaderWait = 2*c.ElectionTimeout + time.Second
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.SnapshotInterval <= 0 {
		c.SnapshotInterval = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// catchUpFromSnapshot restores the DB from the newest snapshot when the DB
// is behind it (its directory was lost): raft would otherwise replay only
// the log after the snapshot onto a DB missing what came before.
func (n *Node) catchUpFromSnapshot(snaps *raft.FileSnapshotStore) error {
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		return err
	}
	newest := list[0]
	if n.db.AppliedIndex() >= newest.Index {
		return nil
	}
	_, rc, err := snaps.Open(newest.ID)
	if err != nil {
		return fmt.Errorf("replica: open snapshot %s: %w", newest.ID, err)
	}
	defer rc.Close()
	if _, err := n.db.Restore(rc); err != nil {
		return fmt.Errorf("replica: restore snapshot %s: %w", newest.ID, err)
	}
	n.log.Info("restored the store from the newest snapshot", "snapshot", newest.ID, "index", newest.Index)
	return nil
}

// adoptStore checks that the store follows this group's log (the cluster
// id recorded in it), and records it in a store that names none. A store
// copied from another group's replica is refused, unless this replica
// bootstraps a new group on it (no raft state, not Join): that seeds the
// new group, whose log starts at 1, so the store forgets its old applied
// index (see "Splitting a shard" in the package doc).
func (n *Node) adoptStore(hasRaftState bool) error {
	prev, err := n.db.Cluster()
	if err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	switch {
	case prev == n.cfg.Cluster:
		return nil
	case prev == "":
		return n.db.SetCluster(n.cfg.Cluster, false)
	case hasRaftState:
		return fmt.Errorf("replica: the store holds cluster %q's data, but its raft log is cluster %q's: a store copied over another group's replica? refusing to start", prev, n.cfg.Cluster)
	case n.cfg.Join:
		return fmt.Errorf("replica: the store holds cluster %q's data; a replica joining cluster %q starts on an empty directory", prev, n.cfg.Cluster)
	}
	n.log.Warn("seeding a new group with another group's store: its log starts again at 1",
		"cluster", n.cfg.Cluster, "seeded_from", prev, "their_applied_index", n.db.AppliedIndex())
	return n.db.SetCluster(n.cfg.Cluster, true)
}

// watchLeadership follows raft's leadership changes. On becoming the
// leader it commits the marker entry and, once applied, serves.
func (n *Node) watchLeadership() {
	defer close(n.done)
	for isLeader := range n.notify {
		n.lead.Store(nil)
		if !isLeader {
			continue
		}
		f := n.raft.Apply(markerCommand, n.cfg.LeaderWait)
		if err := f.Error(); err != nil {
			n.log.Warn("new leader could not commit its marker entry", "err", err)
			continue
		}
		if n.raft.State() != raft.Leader {
			continue
		}
		if n.cfg.OnLead != nil {
			n.cfg.OnLead()
		}
		n.lead.Store(&leadership{marker: f.Index()})
		n.log.Info("leading the group", "id", n.cfg.ID, "term", n.raft.CurrentTerm())
	}
}

// observe keeps lastLeader up to date.
func (n *Node) observe() {
	for o := range n.observed {
		if lo, ok := o.Data.(raft.LeaderObservation); ok && lo.LeaderID != "" {
			id := string(lo.LeaderID)
			n.lastLeader.Store(&id)
		}
	}
}

// status is what this replica answers a status probe.
func (n *Node) status() status {
	st := status{ID: n.cfg.ID, Applied: n.fsm.applied.Load()}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		st.Member = len(f.Configuration().Servers) > 0
	}
	return st
}

// removed reports whether raft stopped on its own: this replica was
// removed from the group (raft shuts a removed server down).
func (n *Node) removed() bool {
	return !n.closing.Load() && n.raft.State() == raft.Shutdown
}

// Close stops the replica: raft, its transport and the stores.
func (n *Node) Close() error {
	if n.raft == nil {
		return n.closeStores()
	}
	n.closing.Store(true)
	n.raft.DeregisterObserver(n.observer)
	close(n.observed)
	err := n.raft.Shutdown().Error()
	n.trans.Close()
	close(n.notify)
	<-n.done
	n.raft = nil
	return errors.Join(err, n.closeStores())
}

func (n *Node) closeStores() error {
	var errs []error
	if n.logs != nil {
		errs = append(errs, n.logs.Close())
	}
	if n.db != nil {
		errs = append(errs, n.db.Close())
	}
	return errors.Join(errs...)
}

// IsLeader reports whether this replica leads the group and serves.
func (n *Node) IsLeader() bool { return n.lead.Load() != nil && n.raft.State() == raft.Leader }

// Leader returns the id of the group's leader as this replica knows it
// ("" while none is known).
func (n *Node) Leader() string {
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// Refused returns how many raft connections from another cluster this
// replica has refused.
func (n *Node) Refused() uint64 { return n.refused.Load() }

// AppliedIndex returns the raft index of the last entry applied here.
func (n *Node) AppliedIndex() uint64 { return n.fsm.applied.Load() }

// Snapshot makes raft take a snapshot now (and cut its log behind it).
func (n *Node) Snapshot() error { return n.raft.Snapshot().Error() }

// slogWriter turns hclog's lines into slog records.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Warn(string(trimNewline(p)))
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

var _ io.Writer = slogWriter{}
