// Package handlers implements the messagedata Logicsvr (im.MessageData in
// idl/im/data.proto): the data-access service of the users' sync inboxes,
// in front of the storage Logicsvr's inbox methods. The send Logicsvr
// delivers messages through it, accountdata and contactdata publish profile
// and contact changes through it, the fan-out worker writes group messages
// and changes through it, and the sync Logicsvr reads with it.
//
// # Write path
//
// Deliver strips the item's version and time (the store assigns both),
// marshals it as the inbox entry's payload and calls Storage.Deliver (for
// MESSAGES) or Storage.Publish (ACCOUNT, CONTACTS, GROUPS) with the caller's dedup
// id, so a retry of the same change is answered as a duplicate with the
// first delivery's version and time and writes nothing. After a delivery
// that wrote (not a duplicate) it tells the Pusher: in a deployment with
// the access layer, the PushQueue (push.go), which has the push service
// send the user's online devices a sync notify through their gateways,
// the notifies that wait together in one Push.NotifyMany per presence
// instance.
//
// DeliverMany (many.go) is Deliver of one item to many users, for the
// fan-out worker: it groups the users by the storage instance they route
// to and makes one Storage.DeliverMany per instance, one fsync for all of
// an instance's users, and does for every user what Deliver does (the
// cache invalidation below, the push of a first delivery).
//
// DeliverPair (pair.go) is the two Delivers of a one-to-one message, the
// receiver's copy and the sender's own, in one Storage.DeliverPair when
// both users' inboxes are on one storage instance: one storage call and
// one fsync per message instead of two of each.
//
// # Read path and cache
//
// SyncInbox calls Storage.Sync and decodes each payload back into a
// SyncItem, filling in version and at_unix_ms from the entry. The cache
// saves the storage round trip of the most frequent sync: a device that is
// up to date asking again. Per user it keeps the last key known to cover
// the whole inbox (a storage answer without continue_flag) and the devices
// that have already sent exactly that key to storage (so their ACK of it is
// recorded there). A sync from one of those devices with that key is
// answered empty, with the same key, from memory.
//
// Never stale for its own writes: every inbox write goes through
// messagedata, and svrkit routes every call about a user to one instance,
// so that instance sees all the user's writes. When a Deliver has been
// stored, before it is answered, the user's cached key is dropped and the
// user's generation bumped; a sync that read storage before a concurrent
// deliver stored its entry sees the generation moved and does not cache
// its key. So once a Deliver is acknowledged no sync is answered from a key
// older than it. Entries expire after a short TTL (app config "cache_ttl",
// default 2s) which bounds staleness when routing moves users between
// instances, and refreshes a busy device's last-seen time in storage.
package handlers

import (
	"bytes"
	"context"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/lru"
	"github.com/svrkit/svrkit/examples/im/internal/shard"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

// Limits of the service's requests.
const (
	MaxDedupIDLen = 128
	// MaxItemLen is the largest marshalled item an inbox entry holds.
	MaxItemLen = 64 << 10
	// DefaultSyncLimit and MaxSyncLimit bound one SyncInbox answer.
	DefaultSyncLimit = 100
	MaxSyncLimit     = 1000
)

// Config is the messagedata Logicsvr's "app" settings.
type Config struct {
	// CacheUsers is how many users' sync state the cache keeps (default
	// 100000).
	CacheUsers int `json:"cache_users,omitempty"`
	// CacheTTL bounds how long a cached key is trusted (default 2s).
	CacheTTL logicsvr.Duration `json:"cache_ttl,omitempty"`
}

// Pusher is told about every item Deliver stored for the first time (not
// about duplicates), after it is durable and before Deliver answers, with
// the item's version and time filled in. It is the seam for the access
// layer: PushQueue has the push service look up which gateways hold the
// user's online devices and send them a "sync now" notification. Notify
// must not block for long (hand the work to a queue) and cannot fail the
// delivery: the item is stored, and a device that misses the push gets it
// on its next sync.
type Pusher interface {
	Notify(ctx context.Context, user uint64, item *im.SyncItem)
}

// NopPusher pushes nothing: devices find new items when they sync.
type NopPusher struct{}

// Notify implements Pusher.
func (NopPusher) Notify(context.Context, uint64, *im.SyncItem) {}

// NewMessageData returns the MessageData handler. It needs im.Storage in
// the routing table, and pushes through im.Push when the table has it (a
// deployment without the access layer has none: devices then find new
// items when they poll with sync).
func NewMessageData(h *logicsvr.Host) (im.MessageDataServer, error) {
	cfg := Config{CacheUsers: 100000, CacheTTL: logicsvr.Duration(2 * time.Second)}
	if err := h.AppConfig(&cfg); err != nil {
		return nil, err
	}
	inv, err := h.Client(im.Storage_ServiceName)
	if err != nil {
		return nil, err
	}
	var push Pusher = NopPusher{}
	if pinv, err := h.Client(im.Push_ServiceName); err != nil {
		h.Logger().Warn("messagedata: no push service in the routing table; devices will not be notified", "err", err)
	} else if !h.InfoOnly() {
		q := NewPushQueue(pinv, h.Logger())
		h.OnShutdown(func(context.Context) error { q.Close(); return nil })
		push = q
	}
	s := New(im.NewStorageClient(inv), cfg, push)
	s.route = shard.Router(inv)
	return s, nil
}

// New returns a MessageData handler over a storage client.
func New(storage im.StorageClient, cfg Config, push Pusher) *Server {
	if cfg.CacheUsers <= 0 {
		cfg.CacheUsers = 100000
	}
	if push == nil {
		push = NopPusher{}
	}
	return &Server{
		storage: storage,
		push:    push,
		cache:   lru.New[uint64, *syncState](cfg.CacheUsers, time.Duration(cfg.CacheTTL)),
	}
}

// Server is the MessageData handler.
type Server struct {
	im.UnimplementedMessageDataServer
	storage im.StorageClient
	push    Pusher
	// route is the storage client's routing, by which DeliverMany groups
	// its members (nil: one group).
	route svrkit.KeyRouter

	// mu guards cache and every syncState's fields.
	mu    sync.Mutex
	cache *lru.Cache[uint64, *syncState]
}

// syncState is what the cache knows about one user's inboxes.
type syncState struct {
	// gen moves on every stored Deliver; a sync caches its key only if gen
	// did not move while it read storage.
	gen uint64
	// key covers the whole inbox, when valid.
	key   []byte
	valid bool
	// acked are the devices whose storage ACK is key.
	acked map[string]bool
}

func inboxType(t im.SyncType) (im.InboxType, bool) {
	switch t {
	case im.SyncType_SYNC_TYPE_ACCOUNT:
		return im.InboxType_INBOX_TYPE_ACCOUNT, true
	case im.SyncType_SYNC_TYPE_CONTACTS:
		return im.InboxType_INBOX_TYPE_CONTACTS, true
	case im.SyncType_SYNC_TYPE_MESSAGES:
		return im.InboxType_INBOX_TYPE_MESSAGES, true
	case im.SyncType_SYNC_TYPE_GROUPS:
		return im.InboxType_INBOX_TYPE_GROUPS, true
	}
	return 0, false
}

// checkItem reports why item cannot be stored, or "".
func checkItem(item *im.SyncItem) string {
	if item == nil {
		return "item is required"
	}
	ok := false
	switch item.GetType() {
	case im.SyncType_SYNC_TYPE_ACCOUNT:
		ok = item.GetProfile() != nil
	case im.SyncType_SYNC_TYPE_CONTACTS:
		ok = item.GetContact() != nil
	case im.SyncType_SYNC_TYPE_MESSAGES:
		ok = item.GetMessage() != nil
	case im.SyncType_SYNC_TYPE_GROUPS:
		ok = item.GetGroup() != nil
	default:
		return "item has no valid type"
	}
	if !ok {
		return "item's content does not match its type " + item.GetType().String()
	}
	return ""
}

// encodeItem is the inbox payload of item: the item without the version
// and time the store assigns.
func encodeItem(item *im.SyncItem) ([]byte, error) {
	stripped := &im.SyncItem{Type: item.GetType()}
	switch c := item.GetItem().(type) {
	case *im.SyncItem_Profile:
		stripped.Item = c
	case *im.SyncItem_Contact:
		stripped.Item = c
	case *im.SyncItem_Message:
		stripped.Item = c
	case *im.SyncItem_Group:
		stripped.Item = c
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(stripped)
}

// decodeItem is encodeItem's inverse, with the entry's version and time:
// it decodes e into item.
func decodeItem(item *im.SyncItem, e *im.InboxEntry) error {
	if err := proto.Unmarshal(e.GetPayload(), item); err != nil {
		return svrkit.Errorf(svrkit.DataLoss, "inbox entry %d of type %s does not decode: %v", e.GetVersion(), e.GetType(), err)
	}
	if t, ok := inboxType(item.GetType()); !ok || t != e.GetType() {
		return svrkit.Errorf(svrkit.DataLoss, "inbox entry %d of type %s holds an item of type %s", e.GetVersion(), e.GetType(), item.GetType())
	}
	item.Version = e.GetVersion()
	item.AtUnixMs = e.GetAtUnixMs()
	return nil
}

// Deliver implements im.MessageDataServer.
func (s *Server) Deliver(ctx context.Context, req *im.DeliverRequest) (*im.DeliverReply, error) {
	if why := checkItem(req.GetItem()); why != "" {
		return nil, svrkit.NewError(svrkit.InvalidArgument, why)
	}
	if n := len(req.GetDedupId()); n == 0 || n > MaxDedupIDLen {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "dedup id of %d bytes outside [1, %d]", n, MaxDedupIDLen)
	}
	payload, err := encodeItem(req.GetItem())
	if err != nil {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "item does not encode: %v", err)
	}
	if len(payload) > MaxItemLen {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "item of %d bytes exceeds the limit of %d", len(payload), MaxItemLen)
	}
	user := req.GetUserId()
	var r *im.InboxWriteReply
	if t, _ := inboxType(req.GetItem().GetType()); t == im.InboxType_INBOX_TYPE_MESSAGES {
		r, err = s.storage.Deliver(ctx, &im.InboxDeliverRequest{UserId: user, Payload: payload, DedupId: req.GetDedupId()})
	} else {
		r, err = s.storage.Publish(ctx, &im.InboxPublishRequest{UserId: user, Type: t, Payload: payload, DedupId: req.GetDedupId()})
	}
	// Whatever the outcome, the write may have landed: no cached key may
	// claim to cover the inbox any more.
	s.invalidate(user)
	if err != nil {
		return nil, err
	}
	return s.stored(ctx, user, req.GetItem(), r), nil
}

// stored answers one write storage made or found, telling the Pusher of
// it if it is new: Deliver's, and each of DeliverMany's and DeliverPair's.
func (s *Server) stored(ctx context.Context, user uint64, item *im.SyncItem, w *im.InboxWriteReply) *im.DeliverReply {
	if !w.GetDuplicate() {
		s.push.Notify(ctx, user, storedItem(item, w))
	}
	return deliverReply(w)
}

// storedMany is stored for the writes of one batch (users[j]'s is
// writes[j]). A PushQueue is told of the new ones together, so that their
// notifies leave in one batch rather than the first alone.
func (s *Server) storedMany(ctx context.Context, users []uint64, item *im.SyncItem, writes []*im.InboxWriteReply) []*im.DeliverReply {
	out := make([]*im.DeliverReply, len(users))
	var fresh []uint64
	var items []*im.SyncItem
	for j, w := range writes {
		if !w.GetDuplicate() {
			fresh = append(fresh, users[j])
			items = append(items, storedItem(item, w))
		}
		out[j] = deliverReply(w)
	}
	if b, ok := s.push.(batchPusher); ok {
		b.notifyMany(fresh, items)
	} else {
		for i, user := range fresh {
			s.push.Notify(ctx, user, items[i])
		}
	}
	return out
}

// batchPusher is a Pusher that also takes the new items of one batch
// write at once (PushQueue): their notifies then leave together.
type batchPusher interface {
	notifyMany(users []uint64, items []*im.SyncItem)
}

// storedItem is item as storage stored it with w: its version and time.
func storedItem(item *im.SyncItem, w *im.InboxWriteReply) *im.SyncItem {
	return &im.SyncItem{Type: item.GetType(), Version: w.GetVersion(), AtUnixMs: w.GetAtUnixMs(), Item: item.GetItem()}
}

func deliverReply(w *im.InboxWriteReply) *im.DeliverReply {
	return &im.DeliverReply{Version: w.GetVersion(), AtUnixMs: w.GetAtUnixMs(), Duplicate: w.GetDuplicate()}
}

// SyncInbox implements im.MessageDataServer.
func (s *Server) SyncInbox(ctx context.Context, req *im.SyncInboxRequest) (*im.SyncReply, error) {
	limit := req.GetLimit()
	if limit == 0 {
		limit = DefaultSyncLimit
	}
	if limit > MaxSyncLimit {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "sync limit %d exceeds %d", limit, MaxSyncLimit)
	}
	user, device, key := req.GetUserId(), req.GetDeviceId(), req.GetSyncKey()
	st, gen, hit := s.lookup(user, device, key)
	if hit {
		return &im.SyncReply{SyncKey: key}, nil
	}
	r, err := s.storage.Sync(ctx, &im.InboxSyncRequest{UserId: user, DeviceId: device, SyncKey: key, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := &im.SyncReply{
		Items:        make([]*im.SyncItem, len(r.GetEntries())),
		SyncKey:      r.GetSyncKey(),
		ContinueFlag: r.GetMore(),
		Gap:          r.GetGap(),
	}
	// One allocation for the page's items, not one per item.
	slab := make([]im.SyncItem, len(r.GetEntries()))
	for i, e := range r.GetEntries() {
		if err := decodeItem(&slab[i], e); err != nil {
			return nil, err
		}
		out.Items[i] = &slab[i]
	}
	if !r.GetMore() {
		s.remember(user, st, gen, device, key, r.GetSyncKey())
	}
	return out, nil
}

// CurrentKey implements im.MessageDataServer.
func (s *Server) CurrentKey(ctx context.Context, req *im.CurrentKeyRequest) (*im.CurrentKeyReply, error) {
	r, err := s.storage.CurrentKey(ctx, &im.InboxCurrentKeyRequest{UserId: req.GetUserId(), DeviceId: req.GetDeviceId()})
	if err != nil {
		return nil, err
	}
	return &im.CurrentKeyReply{SyncKey: r.GetSyncKey()}, nil
}

// lookup returns the user's cache state (created if needed) with its
// generation, and whether a sync by device with key can be answered empty.
func (s *Server) lookup(user uint64, device string, key []byte) (*syncState, uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.cache.Get(user)
	if !ok {
		st = &syncState{}
		s.cache.Put(user, st)
	}
	hit := st.valid && st.acked[device] && bytes.Equal(st.key, key)
	return st, st.gen, hit
}

// remember records that newKey covered the user's whole inbox when storage
// answered a sync by device with sentKey, unless a Deliver was stored since
// the sync began (or the state was evicted).
func (s *Server) remember(user uint64, st *syncState, gen uint64, device string, sentKey, newKey []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.cache.Get(user); !ok || cur != st || st.gen != gen {
		return
	}
	if !st.valid || !bytes.Equal(st.key, newKey) {
		st.key, st.valid, st.acked = bytes.Clone(newKey), true, map[string]bool{}
		s.cache.Put(user, st) // the TTL counts from this storage read
	}
	if bytes.Equal(sentKey, newKey) {
		st.acked[device] = true
	}
}

// invalidate drops the user's cached key after an inbox write.
func (s *Server) invalidate(user uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked(user)
}

// dropLocked drops user's cached key and bumps its generation; s.mu is
// held.
func (s *Server) dropLocked(user uint64) {
	if st, ok := s.cache.Get(user); ok {
		st.gen++
		st.valid, st.key, st.acked = false, nil, nil
	}
}
