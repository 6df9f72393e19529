// Package handlers implements the contactdata Logicsvr (im.ContactData in
// idl/im/data.proto): the data-access service of contact lists, in front of
// the storage Logicsvr's KV model.
//
// # Stored record
//
// One KV record per user: user_id N, key "contacts", a ContactListRecord —
// the list (contacts ordered by user id, and the list version, which grows
// by one with every change) and the pending change (below). Every write is
// a compare-and-set on the record's storage version.
//
// # A change, and crashes
//
// A change must reach two places: the list record, and the user's CONTACTS
// sync inbox (a ContactChange item, published through MessageData.Deliver
// with dedup id "contact:<list version>"). They are on different services,
// so they cannot be one atomic write. The change is written first, into the
// record together with the new list, as its pending change; then it is
// published. A crash between the two leaves the change in the record, and
// the next call about the user — any of PutContact, DeleteContact,
// GetContacts — publishes the pending change again before doing anything
// else. The dedup id makes that idempotent: if the first publish did land,
// the second is a duplicate and writes nothing. So no change is lost and
// none is synced twice, and changes reach the inbox in list version order.
//
// The other order (publish first, then write the list conditionally) would
// put items in the inbox for changes whose list write then fails, which
// devices would apply although the list never changed.
//
// The pending change is not cleared after a successful publish (that would
// be a second fsync'd write per change); the next change replaces it. The
// cache remembers, in memory, that it was published, so only the first
// call after a restart publishes it again (one duplicate Deliver).
//
// Each user's calls are serialised in this process (a striped lock held
// across read, write and publish), so a change's publish happens before
// the next change of the same user is written: the pending change being
// replaced has always been published. svrkit's routing by user_id sends all
// of a user's calls to one instance; if two instances ever wrote one list,
// the compare-and-set would still keep the record consistent (the loser
// re-reads and retries), though publishes of the two could interleave.
//
// # Cache
//
// An LRU of records by user with their storage version, written through
// after storage acknowledges and never replaced by an older version: never
// stale for the instance's own writes. A TTL ("cache_ttl", default 30s)
// bounds staleness should routing move a user to another instance.
package handlers

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/lru"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

// Limits of a contact list.
const (
	MaxContacts    = 2000
	MaxNameLen     = 64
	MaxNicknameLen = 64
)

// casAttempts bounds the read-modify-write retries of one change.
const casAttempts = 8

var keyContacts = []byte("contacts")

// Config is the contactdata Logicsvr's "app" settings.
type Config struct {
	// CacheSize is how many users' lists the cache keeps (default 100000).
	CacheSize int `json:"cache_size,omitempty"`
	// CacheTTL bounds the age of a cached list (default 30s).
	CacheTTL logicsvr.Duration `json:"cache_ttl,omitempty"`
}

// NewContactData returns the ContactData handler. It needs im.Storage and
// im.MessageData in the routing table.
func NewContactData(h *logicsvr.Host) (im.ContactDataServer, error) {
	cfg := Config{CacheSize: 100000, CacheTTL: logicsvr.Duration(30 * time.Second)}
	if err := h.AppConfig(&cfg); err != nil {
		return nil, err
	}
	st, err := h.Client(im.Storage_ServiceName)
	if err != nil {
		return nil, err
	}
	md, err := h.Client(im.MessageData_ServiceName)
	if err != nil {
		return nil, err
	}
	return New(im.NewStorageClient(st), im.NewMessageDataClient(md), cfg), nil
}

// New returns a ContactData handler over its clients.
func New(storage im.StorageClient, messages im.MessageDataClient, cfg Config) *Server {
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 100000
	}
	return &Server{
		storage:  storage,
		messages: messages,
		cache:    lru.New[uint64, *cached](cfg.CacheSize, time.Duration(cfg.CacheTTL)),
	}
}

// Server is the ContactData handler.
type Server struct {
	im.UnimplementedContactDataServer
	storage  im.StorageClient
	messages im.MessageDataClient

	cacheMu sync.Mutex
	cache   *lru.Cache[uint64, *cached]

	users [256]sync.Mutex
}

// cached is a user's record as of a storage version. It is never mutated:
// a change makes a new one.
type cached struct {
	rec     *im.ContactListRecord
	version uint64 // storage version; 0: no record yet
	// published: rec's pending change is known to be in the inbox.
	published bool
}

func (s *Server) userLock(user uint64) *sync.Mutex {
	return &s.users[(user*0x9e3779b97f4a7c15)>>56]
}

func (s *Server) cachePut(user uint64, c *cached) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if old, ok := s.cache.Get(user); ok && old.version > c.version {
		return
	}
	s.cache.Put(user, c)
}

// load returns user's record from the cache, or from storage.
func (s *Server) load(ctx context.Context, user uint64, fromStore bool) (*cached, error) {
	if !fromStore {
		if c, ok := s.cache.Get(user); ok {
			return c, nil
		}
	}
	r, err := s.storage.Get(ctx, &im.KVGetRequest{UserId: user, Key: keyContacts})
	if svrkit.CodeOf(err) == svrkit.NotFound {
		c := &cached{rec: &im.ContactListRecord{List: &im.ContactList{}}}
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	rec := new(im.ContactListRecord)
	if err := proto.Unmarshal(r.GetValue(), rec); err != nil {
		return nil, svrkit.Errorf(svrkit.DataLoss, "contact list of user %d does not decode: %v", user, err)
	}
	if rec.List == nil {
		rec.List = &im.ContactList{}
	}
	c := &cached{rec: rec, version: r.GetVersion()}
	s.cachePut(user, c)
	return c, nil
}

// publish delivers change to user's CONTACTS inbox, idempotently.
func (s *Server) publish(ctx context.Context, user uint64, change *im.ContactChange) error {
	_, err := s.messages.Deliver(ctx, &im.DeliverRequest{
		UserId:  user,
		Item:    &im.SyncItem{Type: im.SyncType_SYNC_TYPE_CONTACTS, Item: &im.SyncItem_Contact{Contact: change}},
		DedupId: fmt.Sprintf("contact:%d", change.GetListVersion()),
	})
	return err
}

// settle loads user's record and makes sure its pending change is in the
// inbox. The caller holds the user's lock.
func (s *Server) settle(ctx context.Context, user uint64, fromStore bool) (*cached, error) {
	c, err := s.load(ctx, user, fromStore)
	if err != nil {
		return nil, err
	}
	if c.rec.GetPending() == nil || c.published {
		return c, nil
	}
	if err := s.publish(ctx, user, c.rec.GetPending()); err != nil {
		return nil, err
	}
	c = &cached{rec: c.rec, version: c.version, published: true}
	s.cachePut(user, c)
	return c, nil
}

// change applies edit to user's list: edit returns the new contacts and
// the change, or nil when the list is already as asked.
func (s *Server) change(ctx context.Context, user uint64, edit func([]*im.ContactEntry) ([]*im.ContactEntry, *im.ContactChange)) (*im.ContactReply, error) {
	l := s.userLock(user)
	l.Lock()
	defer l.Unlock()
	fromStore := false
	for attempt := 0; ; attempt++ {
		c, err := s.settle(ctx, user, fromStore)
		if err != nil {
			return nil, err
		}
		list := c.rec.GetList()
		contacts, ch := edit(list.GetContacts())
		if ch == nil {
			return &im.ContactReply{Version: list.GetVersion()}, nil
		}
		if len(contacts) > MaxContacts {
			return nil, svrkit.Errorf(svrkit.ResourceExhausted, "contact list is full (%d contacts)", MaxContacts)
		}
		ch.ListVersion = list.GetVersion() + 1
		rec := &im.ContactListRecord{List: &im.ContactList{Contacts: contacts, Version: ch.ListVersion}, Pending: ch}
		val, err := proto.Marshal(rec)
		if err != nil {
			return nil, svrkit.Errorf(svrkit.Internal, "encode contact list: %v", err)
		}
		put, err := s.storage.Put(ctx, &im.KVPutRequest{UserId: user, Key: keyContacts, Value: val, ExpectVersion: c.version})
		if svrkit.CodeOf(err) == svrkit.Aborted && attempt+1 < casAttempts {
			fromStore = true // written elsewhere: re-read
			continue
		}
		if err != nil {
			return nil, err
		}
		next := &cached{rec: rec, version: put.GetVersion()}
		s.cachePut(user, next)
		// If this fails the change stays pending in the record and the
		// next call publishes it; the caller's retry will be that call.
		if err := s.publish(ctx, user, ch); err != nil {
			return nil, err
		}
		s.cachePut(user, &cached{rec: rec, version: next.version, published: true})
		return &im.ContactReply{Contact: ch.GetContact(), Version: ch.ListVersion, Changed: true}, nil
	}
}

func checkEntry(user uint64, e *im.ContactEntry) error {
	switch {
	case e == nil || e.GetUserId() == 0:
		return svrkit.NewError(svrkit.InvalidArgument, "contact needs a user id")
	case e.GetUserId() == user:
		return svrkit.NewError(svrkit.InvalidArgument, "a user cannot be their own contact")
	case len(e.GetName()) > MaxNameLen || !utf8.ValidString(e.GetName()):
		return svrkit.Errorf(svrkit.InvalidArgument, "contact name must be at most %d bytes of UTF-8", MaxNameLen)
	case len(e.GetNickname()) > MaxNicknameLen || !utf8.ValidString(e.GetNickname()):
		return svrkit.Errorf(svrkit.InvalidArgument, "contact nickname must be at most %d bytes of UTF-8", MaxNicknameLen)
	}
	return nil
}

func find(contacts []*im.ContactEntry, id uint64) (int, bool) {
	return slices.BinarySearchFunc(contacts, id, func(e *im.ContactEntry, id uint64) int {
		switch {
		case e.GetUserId() < id:
			return -1
		case e.GetUserId() > id:
			return 1
		}
		return 0
	})
}

// PutContact implements im.ContactDataServer.
func (s *Server) PutContact(ctx context.Context, req *im.PutContactRequest) (*im.ContactReply, error) {
	user, in := req.GetUserId(), req.GetContact()
	if user == 0 {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "user id is required")
	}
	if err := checkEntry(user, in); err != nil {
		return nil, err
	}
	return s.change(ctx, user, func(cur []*im.ContactEntry) ([]*im.ContactEntry, *im.ContactChange) {
		e := proto.CloneOf(in)
		i, found := find(cur, e.GetUserId())
		if found {
			old := cur[i]
			if old.GetName() == e.GetName() && old.GetNickname() == e.GetNickname() {
				return nil, nil
			}
			e.AddedUnix = old.GetAddedUnix() // an update keeps when it was added
		} else if e.GetAddedUnix() == 0 {
			e.AddedUnix = time.Now().Unix()
		}
		next := slices.Clone(cur)
		if found {
			next[i] = e
		} else {
			next = slices.Insert(next, i, e)
		}
		return next, &im.ContactChange{Contact: e}
	})
}

// DeleteContact implements im.ContactDataServer.
func (s *Server) DeleteContact(ctx context.Context, req *im.DeleteContactRequest) (*im.ContactReply, error) {
	user, id := req.GetUserId(), req.GetContactUserId()
	if user == 0 || id == 0 {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "user id and contact user id are required")
	}
	return s.change(ctx, user, func(cur []*im.ContactEntry) ([]*im.ContactEntry, *im.ContactChange) {
		i, found := find(cur, id)
		if !found {
			return nil, nil
		}
		return slices.Delete(slices.Clone(cur), i, i+1), &im.ContactChange{Removed: true, Contact: cur[i]}
	})
}

// GetContacts implements im.ContactDataServer.
func (s *Server) GetContacts(ctx context.Context, req *im.GetContactsRequest) (*im.ContactList, error) {
	user := req.GetUserId()
	if user == 0 {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "user id is required")
	}
	l := s.userLock(user)
	l.Lock()
	defer l.Unlock()
	c, err := s.settle(ctx, user, false)
	if err != nil {
		return nil, err
	}
	return proto.CloneOf(c.rec.GetList()), nil
}
