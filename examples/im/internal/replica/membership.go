package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/svrkit/svrkit/examples/im/internal/kv"
)

// Membership changes: replace a dead replica, add one, remove one.
//
// Raft's configuration (who votes) lives in the group's log, so a change is
// a log entry the leader commits, and only the leader makes one: on any
// other replica AddReplica and RemoveReplica answer a *NotLeaderError,
// which the storage service turns into a redirect the caller follows.
//
// # Adding a replica
//
// The new replica is started first, on an empty directory, with Join set:
// it bootstraps nothing and waits. AddReplica on the leader then
//
//  1. confirms it still has a majority (a heartbeat round), so a change
//     asked of a group without quorum fails at once with ErrUnavailable;
//  2. probes the new replica's raft port (a status probe, transport.go):
//     an address that does not answer, a replica of another cluster or one
//     with another id is refused before anything is written;
//  3. writes the replica's addresses into the peer directory (below);
//  4. adds it as a non-voter, so the group's majority does not yet count a
//     replica that has nothing; raft sends it the latest snapshot and the
//     log after it;
//  5. waits, probing, until it has applied what the leader had committed
//     when it was added, and only then makes it a voter.
//
// A call that runs out of time in step 5 leaves a non-voter that goes on
// catching up and answers an error saying so; calling AddReplica again
// resumes at step 5. Adding a replica that is already a voter at the same
// address changes nothing.
//
// # Removing a replica
//
// RemoveReplica commits a configuration without it. Raft shuts the removed
// replica's node down when it learns of it; from then on the replica sends
// callers to the last leader it knew (or answers ErrUnavailable), until its
// process is stopped and its address dropped from the callers' routes.
// Removing the leader itself first hands the leadership to the most
// up-to-date voter (raft's leadership transfer) and answers a redirect to
// it, where the caller's retry does the removal: the group is never
// without a leader for longer than the transfer.
//
// # The peer directory
//
// Raft knows each member's id and raft address only; callers need the RPC
// address of whichever replica leads. The group keeps a directory of the
// members' addresses in its own store, under peerKeyPrefix (outside every
// key the storage service lets clients name), written through the log
// like any batch, so every replica — including one restored from a
// snapshot — knows the addresses of replicas added after its own config
// file was written. Lookups read the local copy (a redirect may name a
// slightly stale address, which the next redirect corrects) and fall back
// to Config.Peers.

// peerKeyPrefix prefixes the peer directory's keys (replica id after it).
const peerKeyPrefix = "replica/peer/"

// Member is one replica in the group's current configuration.
type Member struct {
	Peer
	// Voter is false while an added replica is still catching up.
	Voter bool `json:"voter"`
	// Leader marks the replica that leads the group.
	Leader bool `json:"leader"`
}

// MembershipError is a membership change refused for its input: an
// unknown replica (it then matches ErrNoSuchReplica), an address already
// taken, a replica that does not answer. Nothing was changed.
type MembershipError struct {
	Msg string
	Err error // ErrNoSuchReplica, or nil
}

func (e *MembershipError) Error() string { return "replica: " + e.Msg }
func (e *MembershipError) Unwrap() error { return e.Err }

// ErrNoSuchReplica: the replica named is not a member of the group.
var ErrNoSuchReplica = errors.New("replica: no such replica")

func membershipErrorf(format string, args ...any) error {
	return &MembershipError{Msg: fmt.Sprintf(format, args...)}
}

// ErrCatchingUp matches the error of an AddReplica whose new replica was
// added as a non-voter but had not caught up when the call ran out of
// time; it goes on catching up, and calling AddReplica again promotes it.
var ErrCatchingUp = errors.New("replica: the new replica is still catching up")

// peer returns the addresses of replica id: from the peer directory, else
// from the configuration.
func (n *Node) peer(id string) (Peer, bool) {
	if raw, _, err := n.db.Get(context.Background(), []byte(peerKeyPrefix+id)); err == nil {
		var p Peer
		if json.Unmarshal(raw, &p) == nil && p.RPC != "" {
			return p, true
		}
	}
	p, ok := n.peers[raft.ServerID(id)]
	return p, ok
}

// lead returns nil when this replica leads and serves, or the error to
// answer (a *NotLeaderError naming the leader, ErrUnavailable).
func (n *Node) mustLead(ctx context.Context) error {
	for n.lead.Load() == nil {
		if err := n.awaitLeader(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Members returns the group's current configuration, as this replica
// knows it (a follower may lag the leader by a change in flight).
func (n *Node) Members(ctx context.Context) ([]Member, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, unavailablef("configuration: %v", err)
	}
	_, leader := n.raft.LeaderWithID()
	var out []Member
	for _, s := range f.Configuration().Servers {
		p, ok := n.peer(string(s.ID))
		if !ok {
			p = Peer{ID: string(s.ID)}
		}
		p.Raft = string(s.Address)
		out = append(out, Member{Peer: p, Voter: s.Suffrage == raft.Voter, Leader: s.ID == leader})
	}
	return out, nil
}

// AddReplica adds p to the group as a voter once it has caught up (see
// above). The new replica must be running, started with Join on an empty
// directory (or be a former member on its old one). Call it on the leader;
// ctx bounds the whole change, catching up included.
func (n *Node) AddReplica(ctx context.Context, p Peer) error {
	if p.ID == "" || p.RPC == "" || p.Raft == "" {
		return membershipErrorf("a replica to add needs an id, an rpc and a raft address")
	}
	if err := n.mustLead(ctx); err != nil {
		return err
	}
	conf, err := n.configuration()
	if err != nil {
		return err
	}
	voter := false
	for _, s := range conf.Servers {
		switch {
		case s.ID == raft.ServerID(p.ID) && string(s.Address) != p.Raft:
			return membershipErrorf("replica %s is already a member, at raft address %s (remove it first to move it)", p.ID, s.Address)
		case s.ID == raft.ServerID(p.ID):
			voter = s.Suffrage == raft.Voter
		case string(s.Address) == p.Raft:
			return membershipErrorf("raft address %s is already replica %s's", p.Raft, s.ID)
		}
	}
	if voter {
		return n.putPeer(ctx, p) // already there: refresh its addresses only
	}

	if err := n.verifyQuorum(ctx); err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, helloTimeout)
	st, err := probeStatus(pctx, p.Raft, n.cfg.Cluster)
	cancel()
	switch {
	case err != nil:
		return membershipErrorf("replica %s does not answer at raft address %s: %v (start it first, with \"join\": true)", p.ID, p.Raft, err)
	case st.ID != p.ID:
		return membershipErrorf("the replica at raft address %s is %q, not %q", p.Raft, st.ID, p.ID)
	}
	if err := n.putPeer(ctx, p); err != nil {
		return err
	}
	if err := n.raft.AddNonvoter(raft.ServerID(p.ID), raft.ServerAddress(p.Raft), 0, timeoutOf(ctx)).Error(); err != nil {
		return n.changeError(ctx, "add "+p.ID+" as a non-voter", err)
	}
	n.log.Info("added a replica as a non-voter; it catches up", "id", p.ID, "raft", p.Raft, "rpc", p.RPC)

	// Caught up: it has applied everything committed when it was added.
	target := n.raft.CommitIndex()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, helloTimeout)
		st, err := probeStatus(pctx, p.Raft, n.cfg.Cluster)
		cancel()
		if err == nil && st.Applied >= target {
			break
		}
		if !n.IsLeader() {
			return unavailablef("lost the leadership while %s caught up (it stays a non-voter); call again", p.ID)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("%w: %s has applied %d of %d entries (call again to promote it once it has): %v",
				ErrCatchingUp, p.ID, st.Applied, target, ctx.Err())
		}
	}
	if err := n.raft.AddVoter(raft.ServerID(p.ID), raft.ServerAddress(p.Raft), 0, timeoutOf(ctx)).Error(); err != nil {
		return n.changeError(ctx, "make "+p.ID+" a voter", err)
	}
	n.log.Info("the added replica caught up and votes", "id", p.ID, "index", target)
	return nil
}

// RemoveReplica removes replica id from the group (see above). Call it on
// the leader; removing the leader itself answers a *NotLeaderError naming
// the replica the leadership went to, where the call is to be repeated.
func (n *Node) RemoveReplica(ctx context.Context, id string) error {
	if id == "" {
		return membershipErrorf("which replica? the id is empty")
	}
	if err := n.mustLead(ctx); err != nil {
		return err
	}
	conf, err := n.configuration()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(conf.Servers, func(s raft.Server) bool { return s.ID == raft.ServerID(id) })
	if i < 0 {
		var ids []string
		for _, s := range conf.Servers {
			ids = append(ids, string(s.ID))
		}
		return &MembershipError{Err: ErrNoSuchReplica,
			Msg: fmt.Sprintf("no replica %q in the group (its members: %s)", id, strings.Join(ids, ", "))}
	}
	voters := 0
	for _, s := range conf.Servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	if voters == 1 && conf.Servers[i].Suffrage == raft.Voter {
		return membershipErrorf("replica %s is the group's only voter", id)
	}
	if id == n.cfg.ID {
		return n.handOver(ctx)
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, timeoutOf(ctx)).Error(); err != nil {
		return n.changeError(ctx, "remove "+id, err)
	}
	n.log.Info("removed a replica from the group", "id", id)
	var b kv.Batch
	b.Delete([]byte(peerKeyPrefix+id), kv.AnyVersion)
	if _, err := n.Apply(ctx, &b); err != nil {
		n.log.Warn("removed replica's directory entry stays", "id", id, "err", err)
	}
	return nil
}

// handOver transfers the leadership away and names the new leader. The
// transfer's target can lose the election back to this replica (on a
// loaded machine its election timer may fire late), so it is tried a few
// times before the caller is told to call again.
func (n *Node) handOver(ctx context.Context) error {
	for range 3 {
		if err := n.raft.LeadershipTransfer().Error(); err != nil {
			return n.changeError(ctx, "hand the leadership over", err)
		}
		n.log.Info("handed the leadership over, to be removed")
		if err := n.awaitStepDown(ctx); err != nil {
			return err
		}
		err := n.awaitLeader(ctx)
		if err != nil {
			return err
		}
		// Leading again: the transfer's target lost the election to us.
	}
	return unavailablef("the leadership came back to %s three times; call again", n.cfg.ID)
}

// awaitStepDown waits until watchLeadership has seen this replica step
// down, or raft made it the leader again. A transfer's future resolves once
// raft left the leader state, but n.lead is cleared by watchLeadership a
// moment later; reading it before then would mistake the old leadership
// for a new one.
func (n *Node) awaitStepDown(parent context.Context) error {
	ctx, cancel := context.WithTimeout(parent, n.cfg.LeaderWait)
	defer cancel()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for n.lead.Load() != nil && n.raft.State() != raft.Leader {
		select {
		case <-tick.C:
		case <-ctx.Done():
			if err := parent.Err(); err != nil {
				return err
			}
			return unavailablef("replica %s did not step down within %s", n.cfg.ID, n.cfg.LeaderWait)
		}
	}
	return nil
}

func (n *Node) configuration() (raft.Configuration, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raft.Configuration{}, unavailablef("configuration: %v", err)
	}
	return f.Configuration(), nil
}

// verifyQuorum returns ErrUnavailable unless a majority answers this
// leader's heartbeat round within ctx.
func (n *Node) verifyQuorum(ctx context.Context) error {
	f := n.raft.VerifyLeader()
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	wait := n.cfg.LeaderWait
	if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
		wait = time.Until(d)
	}
	select {
	case err := <-done:
		if err != nil {
			return unavailablef("no majority answers the leader (%v); membership unchanged", err)
		}
		return nil
	case <-time.After(wait):
		return unavailablef("no majority answered the leader within %s; membership unchanged", wait.Round(time.Millisecond))
	}
}

// putPeer writes p into the peer directory, through the log.
func (n *Node) putPeer(ctx context.Context, p Peer) error {
	raw, _ := json.Marshal(p)
	var b kv.Batch
	b.Put([]byte(peerKeyPrefix+p.ID), raw, kv.AnyVersion)
	if _, err := n.Apply(ctx, &b); err != nil {
		return fmt.Errorf("replica: record %s's addresses: %w", p.ID, err)
	}
	return nil
}

// changeError words a failed configuration change.
func (n *Node) changeError(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("replica: %s: %w", what, ctx.Err())
	}
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return unavailablef("%s: lost the leadership (%v); call again", what, err)
	}
	return unavailablef("%s: %v", what, err)
}

func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return defaultWriteTimeout
}
