package handlers

import (
	"context"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/shard"
	"github.com/svrkit/svrkit/svrkit"
)

// Limits of DeliverMany, the storage's (package shard): a 500-member
// group's entry fits in one call.
const (
	MaxDeliverManyUsers = shard.MaxBatchUsers
	// MaxDeliverManyBytes bounds members × the stored item's bytes.
	MaxDeliverManyBytes = shard.MaxBatchBytes
)

// DeliverMany implements im.MessageDataServer: Deliver of one item to
// many members, in one Storage.DeliverMany per storage instance the
// members route to (several run at once), so one fsync covers the members
// of a shard.
//
// For each member it does what Deliver does: once that member's storage
// call has returned, whatever the outcome, the member's cached key is
// dropped and its generation bumped (so once DeliverMany is acknowledged
// no sync is answered from a key older than it, as for Deliver), and each
// member whose item was stored for the first time is told to the Pusher.
// A member whose shard failed is not notified, but the members of the
// shards that succeeded are, even when the call then fails, because the
// retry will answer them as duplicates and a duplicate is never pushed.
func (s *Server) DeliverMany(ctx context.Context, req *im.DeliverManyRequest) (*im.DeliverManyReply, error) {
	users := req.GetUserIds()
	if why := checkItem(req.GetItem()); why != "" {
		return nil, svrkit.NewError(svrkit.InvalidArgument, why)
	}
	if n := len(req.GetDedupId()); n == 0 || n > MaxDedupIDLen {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "dedup id of %d bytes outside [1, %d]", n, MaxDedupIDLen)
	}
	if n := len(users); n == 0 || n > MaxDeliverManyUsers {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "delivery to %d users outside [1, %d]", n, MaxDeliverManyUsers)
	}
	payload, err := encodeItem(req.GetItem())
	if err != nil {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "item does not encode: %v", err)
	}
	if len(payload) > MaxItemLen {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "item of %d bytes exceeds the limit of %d", len(payload), MaxItemLen)
	}
	if n := len(users) * len(payload); n > MaxDeliverManyBytes {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "item of %d bytes to %d users is %d bytes, over the limit of %d",
			len(payload), len(users), n, MaxDeliverManyBytes)
	}
	if err := shard.CheckBatch(users, req.GetUserId()); err != nil {
		return nil, err
	}
	t, _ := inboxType(req.GetItem().GetType())

	out := &im.DeliverManyReply{Results: make([]*im.DeliverReply, len(users))}
	shards := shard.Group(users, s.route)
	err = shard.ForEach(ctx, len(shards), len(shards), func(ctx context.Context, k int) error {
		return s.deliverShard(ctx, req.GetItem(), t, payload, req.GetDedupId(), users, shards[k], out.Results)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// deliverShard writes the members users[idx...], which route to one
// storage instance, with one Storage.DeliverMany, and fills their results.
func (s *Server) deliverShard(ctx context.Context, item *im.SyncItem, t im.InboxType, payload []byte, dedup string,
	users []uint64, idx []int, results []*im.DeliverReply) error {
	ids := shard.Pick(users, idx)
	r, err := s.storage.DeliverMany(ctx, &im.InboxDeliverManyRequest{UserId: ids[0], UserIds: ids, Type: t, Payload: payload, DedupId: dedup})
	// Whatever the outcome, the writes may have landed: no cached key may
	// claim to cover these inboxes any more.
	s.invalidateMany(ids)
	if err != nil {
		return err
	}
	if len(r.GetResults()) != len(ids) {
		return svrkit.Errorf(svrkit.Internal, "storage answered %d results for %d users", len(r.GetResults()), len(ids))
	}
	for j, rep := range s.storedMany(ctx, ids, item, r.GetResults()) {
		results[idx[j]] = rep
	}
	return nil
}

// invalidateMany is invalidate for each of users, under one lock.
func (s *Server) invalidateMany(users []uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range users {
		s.dropLocked(u)
	}
}
