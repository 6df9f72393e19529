package replica

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/raft"

	"github.com/svrkit/svrkit/examples/im/internal/kv"
)

// defaultWriteTimeout bounds a write whose context has no deadline.
const defaultWriteTimeout = 10 * time.Second

// Get implements kv.Store, linearizably (see the package doc).
func (n *Node) Get(ctx context.Context, key []byte) ([]byte, uint64, error) {
	if err := n.readIndex(ctx); err != nil {
		return nil, 0, err
	}
	return n.db.Get(ctx, key)
}

// Scan implements kv.Store, linearizably.
func (n *Node) Scan(ctx context.Context, row []byte, afterVersion uint64, limit int) (kv.ScanResult, error) {
	if err := n.readIndex(ctx); err != nil {
		return kv.ScanResult{}, err
	}
	return n.db.Scan(ctx, row, afterVersion, limit)
}

// RowMeta implements kv.Store, linearizably.
func (n *Node) RowMeta(ctx context.Context, row []byte) (kv.RowMeta, error) {
	if err := n.readIndex(ctx); err != nil {
		return kv.RowMeta{}, err
	}
	return n.db.RowMeta(ctx, row)
}

// Apply implements kv.Store: the batch is committed through the group's
// log and its result is the one every replica's apply produced. An error
// matching ErrUnavailable for a write may hide a write that committed
// (the leader was lost between the two): like any RPC that timed out,
// the caller re-reads or retries idempotently.
func (n *Node) Apply(ctx context.Context, b *kv.Batch) ([]uint64, error) {
	cmd := kv.EncodeBatch(nil, b)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if n.lead.Load() == nil {
			if err := n.awaitLeader(ctx); err != nil {
				return nil, err
			}
			continue
		}
		timeout := defaultWriteTimeout
		if d, ok := ctx.Deadline(); ok {
			timeout = time.Until(d)
		}
		f := n.raft.Apply(cmd, timeout)
		if err := f.Error(); err != nil {
			if errors.Is(err, raft.ErrNotLeader) {
				continue // not started: safe to send to the new leader
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, unavailablef("write not committed (%v); it may yet commit", err)
		}
		r, _ := f.Response().(result)
		return r.versions, r.err
	}
}

// readIndex returns once a read of the local DB sees every write
// committed before the call began, or with an error when this replica
// cannot know that (it is not the leader).
func (n *Node) readIndex(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		l := n.lead.Load()
		if l == nil {
			if err := n.awaitLeader(ctx); err != nil {
				return err
			}
			continue
		}
		ci := n.raft.CommitIndex()
		if err := n.raft.VerifyLeader().Error(); err != nil {
			continue // lost the leadership: awaitLeader finds the new one
		}
		if n.lead.Load() != l {
			continue // a new term began meanwhile
		}
		// Entries after this term's marker are this leader's own (batches
		// and configuration changes), all of which the FSM reports; the
		// marker's being applied covers everything before it.
		if ci <= l.marker {
			return nil
		}
		select {
		case <-n.fsm.wait(ci):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// awaitLeader returns nil once this replica leads and serves, a
// *NotLeaderError once another replica is known to lead, and
// ErrUnavailable when neither happens within LeaderWait.
func (n *Node) awaitLeader(parent context.Context) error {
	ctx, cancel := context.WithTimeout(parent, n.cfg.LeaderWait)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if n.lead.Load() != nil {
			return nil
		}
		// A leader this follower has not heard from for a heartbeat
		// timeout is probably gone: sending callers there would only bounce
		// them back, so the wait goes on until the election settles.
		if _, id := n.raft.LeaderWithID(); id != "" && id != raft.ServerID(n.cfg.ID) &&
			time.Since(n.raft.LastContact()) < n.cfg.HeartbeatTimeout {
			if p, ok := n.peer(string(id)); ok {
				return &NotLeaderError{LeaderID: p.ID, LeaderRPC: p.RPC}
			}
		}
		if n.removed() {
			// Removed from the group: send callers to the leader it last
			// knew (which redirects them further if that changed).
			if id := n.lastLeader.Load(); id != nil && *id != n.cfg.ID {
				if p, ok := n.peer(*id); ok {
					return &NotLeaderError{LeaderID: p.ID, LeaderRPC: p.RPC}
				}
			}
			return unavailablef("replica %s was removed from the group", n.cfg.ID)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			if err := parent.Err(); err != nil {
				return err
			}
			return unavailablef("no leader within %s (is a majority of the group down?)", n.cfg.LeaderWait)
		}
	}
}
