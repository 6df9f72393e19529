// Package delivery is the write path every message takes, whichever
// Logicsvr sends it (send for text and voice, sendmedia for images and
// video): check the receiver exists, write the message into the receiver's
// inbox, then into the sender's own (for the sender's other devices), and
// answer once both are durable.
//
// # Exactly once
//
// MessageData.Deliver is idempotent on the dedup id, "<sender>:<client_msg_id>"
// for the receiver's copy and the same with ":self" for the sender's: a
// repeated one writes nothing and answers the first write's version and
// time. So a client that got no reply retries with the same client_msg_id,
// and whatever happened before — nothing stored, only the receiver's copy
// (the sending Logicsvr or the sender's messagedata died between the
// writes), or both — the retry leaves exactly one copy in each inbox. One
// namespace of client_msg_ids per sender covers every message type. The
// reply's sent_unix_ms is the receiver copy's storage time, the same on
// every retry, and duplicate says the receiver's copy was already there.
// The sender's copy carries that same time in its Message.sent_unix_ms, so
// both copies of a retried message are identical. A message to oneself is
// written once.
//
// # One call for both copies
//
// When the sending Logicsvr's client routes both users to one messagedata
// instance (always with one messagedata), the two copies are one
// MessageData.DeliverPair, and messagedata makes them one
// Storage.DeliverPair when both inboxes are on one storage instance:
// one hop and one fsync'd write per message where two Delivers cost two
// of each down the whole path, which was most of a message's CPU (issue
// #13). DeliverPair keeps the contract above to the letter: each copy is
// idempotent on the same dedup id, and the receiver's copy decides the
// time, its first one if a retry finds it. A sender's copy written in the
// same batch as the receiver's is stored with the same time and no
// sent_unix_ms of its own, as the receiver's copy always is; the sync
// Logicsvr gives each message without one its stored time, so the two
// read identical. A sender's copy written later (a retry after a first
// attempt that stored only the receiver's) carries the receiver's time
// in its sent_unix_ms, as every sender's copy did before DeliverPair.
// Users whose inboxes are on different storage shards
// (topology-sharded.json) cost messagedata two storage calls, as before.
// Users the sending Logicsvr routes to different messagedata instances,
// and a messagedata that predates DeliverPair (it answers unimplemented,
// having written nothing), get the two Delivers.
package delivery

import (
	"context"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/lru"
	"github.com/svrkit/svrkit/examples/im/internal/shard"
	"github.com/svrkit/svrkit/svrkit"
)

// MaxClientMsgIDBytes bounds a client_msg_id (message.proto).
const MaxClientMsgIDBytes = 64

// CheckAddress checks what every send request has: a receiver, and a
// client_msg_id of 1 to MaxClientMsgIDBytes bytes.
func CheckAddress(to uint64, clientMsgID string) error {
	if to == 0 {
		return svrkit.NewError(svrkit.InvalidArgument, "to_user_id is required")
	}
	if n := len(clientMsgID); n < 1 || n > MaxClientMsgIDBytes {
		return svrkit.Errorf(svrkit.InvalidArgument, "client_msg_id must be 1 to %d bytes", MaxClientMsgIDBytes)
	}
	return nil
}

// ReceiverExists answers not_found when there is no user to.
func ReceiverExists(ctx context.Context, accounts im.AccountDataClient, to uint64) error {
	if _, err := accounts.GetAccount(ctx, &im.GetAccountRequest{UserId: to}); err != nil {
		if svrkit.CodeOf(err) == svrkit.NotFound {
			return svrkit.Errorf(svrkit.NotFound, "no user %d", to)
		}
		return err
	}
	return nil
}

// Receivers answers ReceiverExists from memory for receivers already seen
// to exist. It is safe for concurrent use.
//
// Why a cache is right here: an account exists once AccountData answers
// it (its record and its name index both written), and nothing ever
// removes an account or reassigns its id, so a yes never goes stale. Only
// yeses are kept: a no (not yet registered, or a creation that did not
// finish) is asked again each time. Measured under imload (issue #13), the
// GetAccount per send was a whole RPC — accountdata's share of the CPU per
// delivered message and part of send's — for an answer that cannot change.
type Receivers struct {
	accounts im.AccountDataClient
	known    *lru.Cache[uint64, struct{}]
}

// receiversCached bounds the receivers a Receivers remembers (16 bytes
// and a list node each).
const receiversCached = 100_000

// NewReceivers returns a Receivers asking accounts.
func NewReceivers(accounts im.AccountDataClient) *Receivers {
	return &Receivers{accounts: accounts, known: lru.New[uint64, struct{}](receiversCached, 0)}
}

// Exists is ReceiverExists, from memory when to is known to exist.
func (r *Receivers) Exists(ctx context.Context, to uint64) error {
	if _, ok := r.known.Get(to); ok {
		return nil
	}
	if err := ReceiverExists(ctx, r.accounts, to); err != nil {
		return err
	}
	r.known.Put(to, struct{}{})
	return nil
}

// Deliver writes m, from its FromUserId to its ToUserId, into the
// receiver's inbox and then the sender's (see the package doc). The
// receiver must exist (ReceiverExists). route is the messages client's
// routing (shard.Router of its invoker; nil: one instance): when it sends
// both users to one messagedata, the two copies are one DeliverPair.
func Deliver(ctx context.Context, messages im.MessageDataClient, route svrkit.KeyRouter, m *im.Message) (*im.SendReply, error) {
	from, to := m.GetFromUserId(), m.GetToUserId()
	dedup := strconv.FormatUint(from, 10) + ":" + m.GetClientMsgId()
	item := &im.SyncItem{Type: im.SyncType_SYNC_TYPE_MESSAGES, Item: &im.SyncItem_Message{Message: m}}
	if to != from && m.GetSentUnixMs() == 0 && shard.Together(route, to, from) {
		r, err := messages.DeliverPair(ctx, &im.DeliverPairRequest{
			UserId: to, Item: item, DedupId: dedup,
			SenderUserId: from, SenderDedupId: dedup + selfSuffix,
		})
		if err == nil {
			theirs := r.GetReceiver()
			return &im.SendReply{SentUnixMs: theirs.GetAtUnixMs(), Duplicate: theirs.GetDuplicate()}, nil
		}
		if svrkit.CodeOf(err) != svrkit.Unimplemented {
			return nil, err
		}
		// A messagedata that predates DeliverPair wrote nothing: the two
		// Delivers below.
	}
	theirs, err := messages.Deliver(ctx, &im.DeliverRequest{UserId: to, Item: item, DedupId: dedup})
	if err != nil {
		return nil, err
	}
	if to != from {
		if _, err := messages.Deliver(ctx, &im.DeliverRequest{
			UserId: from, Item: SenderCopy(m, theirs.GetAtUnixMs()), DedupId: dedup + selfSuffix,
		}); err != nil {
			return nil, err
		}
	}
	return &im.SendReply{SentUnixMs: theirs.GetAtUnixMs(), Duplicate: theirs.GetDuplicate()}, nil
}

// SenderCopy is the sender's own copy of m written after the receiver's,
// on its own: m with the receiver copy's storage time at (unix ms) as its
// sent_unix_ms, so that both copies read identical (see the package doc).
func SenderCopy(m *im.Message, at int64) *im.SyncItem {
	own := proto.CloneOf(m)
	own.SentUnixMs = at
	return &im.SyncItem{Type: im.SyncType_SYNC_TYPE_MESSAGES, Item: &im.SyncItem_Message{Message: own}}
}

// selfSuffix ends the dedup id of the sender's own copy.
const selfSuffix = ":self"
