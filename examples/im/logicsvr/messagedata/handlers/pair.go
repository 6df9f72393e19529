package handlers

import (
	"context"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/delivery"
	"github.com/svrkit/svrkit/examples/im/internal/shard"
	"github.com/svrkit/svrkit/svrkit"
)

// DeliverPair implements im.MessageDataServer: a one-to-one message's two
// copies, the receiver's and the sender's own, in one call.
//
// Why: the two Delivers it replaces each cost the sending Logicsvr an RPC
// here, messagedata an RPC to storage, and storage a dedup lookup, a
// version allocation and an fsync'd batch (a Raft round on a replica
// group). When both users' inboxes are on one storage instance — always
// with one storage group, and for half the pairs with two shards — it is
// one Storage.DeliverPair instead: both lookups and allocations under one
// lock pass, both entries in one batch, one fsync. Both users' cached
// keys are dropped and each new copy is told to the Pusher, as Deliver
// does for each.
//
// The receiver's copy decides the time. When storage finds it already
// there (a retry after a first attempt that wrote only it) and the
// sender's missing, it does not write the sender's, whose payload must
// carry that earlier time: this Deliver writes it, its message's
// sent_unix_ms set to the receiver copy's time. When the two users are on
// different storage instances, or storage predates DeliverPair
// (unimplemented), it is the two Delivers, in order. A new pair written
// in one batch stores the same payload twice (sent_unix_ms 0) under one
// stored time, which is the message's: readers take a message's time from
// its item when the message has none (the sync Logicsvr), as for every
// receiver's copy, so both copies read the same either way.
func (s *Server) DeliverPair(ctx context.Context, req *im.DeliverPairRequest) (*im.DeliverPairReply, error) {
	item := req.GetItem()
	if why := checkItem(item); why != "" {
		return nil, svrkit.NewError(svrkit.InvalidArgument, why)
	}
	if item.GetType() != im.SyncType_SYNC_TYPE_MESSAGES {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "a pair of copies is a message's, not %s", item.GetType())
	}
	if item.GetMessage().GetSentUnixMs() != 0 {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "the receiver's copy has no sent_unix_ms: the store's time is the message's")
	}
	for _, id := range []string{req.GetDedupId(), req.GetSenderDedupId()} {
		if n := len(id); n == 0 || n > MaxDedupIDLen {
			return nil, svrkit.Errorf(svrkit.InvalidArgument, "dedup id of %d bytes outside [1, %d]", n, MaxDedupIDLen)
		}
	}
	to, from := req.GetUserId(), req.GetSenderUserId()
	if to == from {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "a message from user %d to itself has one copy: Deliver it", to)
	}
	payload, err := encodeItem(item)
	if err != nil {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "item does not encode: %v", err)
	}
	if len(payload) > MaxItemLen {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "item of %d bytes exceeds the limit of %d", len(payload), MaxItemLen)
	}

	var theirs *im.DeliverReply
	if shard.Together(s.route, to, from) {
		r, err := s.storage.DeliverPair(ctx, &im.InboxDeliverPairRequest{
			UserId: to, Payload: payload, DedupId: req.GetDedupId(),
			SenderUserId: from, SenderDedupId: req.GetSenderDedupId(),
		})
		// Whatever the outcome, the writes may have landed: no cached key
		// may claim to cover these inboxes any more.
		s.invalidateMany([]uint64{to, from})
		switch {
		case err == nil:
			theirs = s.stored(ctx, to, item, r.GetReceiver())
			if w := r.GetSender(); w != nil {
				return &im.DeliverPairReply{Receiver: theirs, Sender: s.stored(ctx, from, item, w)}, nil
			}
		case svrkit.CodeOf(err) != svrkit.Unimplemented:
			return nil, err
		}
	}
	if theirs == nil {
		if theirs, err = s.Deliver(ctx, &im.DeliverRequest{UserId: to, Item: item, DedupId: req.GetDedupId()}); err != nil {
			return nil, err
		}
	}
	mine, err := s.Deliver(ctx, &im.DeliverRequest{
		UserId: from, Item: delivery.SenderCopy(item.GetMessage(), theirs.GetAtUnixMs()), DedupId: req.GetSenderDedupId(),
	})
	if err != nil {
		return nil, err
	}
	return &im.DeliverPairReply{Receiver: theirs, Sender: mine}, nil
}
