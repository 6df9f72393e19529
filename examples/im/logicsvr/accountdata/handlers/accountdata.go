// Package handlers implements the accountdata Logicsvr (im.AccountData in
// idl/im/data.proto): the data-access service of accounts, in front of the
// storage Logicsvr's KV model.
//
// # Stored records
//
//	user_id 0, key "uid"            the user id allocator's bound (8 bytes BE)
//	user_id 0, key "name/" name     the name index: the user id (8 bytes BE)
//	user_id N, key "account"        N's AccountRecord (version left 0: the
//	                                storage version is the record's version)
//
// Records of a user live on the user's storage shard; the allocator and the
// name index are global and live under user_id 0, on one shard.
//
// # Creating an account, and crashes
//
// CreateAccount (routed with user_id 0, so every creation reaches one
// instance):
//
//  1. refuses a name the index already has (already_exists);
//  2. takes a user id from the allocator: ids are handed out from a block
//     reserved with a compare-and-set on "uid" (blocks of idBlock), so no id
//     is ever handed out twice, even across crashes and restarts — a crash
//     skips the rest of the block, and ids are sparse;
//  3. writes the account record under the new id, "must not exist";
//  4. writes the name index entry, "must not exist". This is what makes the
//     name taken: of two creations racing for one name exactly one wins
//     here, and the loser answers already_exists (and deletes its record).
//
// The record and the index are on different shards, so they cannot be one
// atomic batch. Instead a record counts only while the index names it:
// GetAccount and UpdateProfile check, when they read a record from storage,
// that "name/<its name>" holds its id, and answer not_found otherwise. A
// crash between steps 3 and 4 therefore leaves an unreachable record, never
// a half-made account: its id is not handed out again and its name is still
// free.
//
// # Cache
//
// Two LRU caches: by id (the record with its version) and by name (the id,
// which never changes, since accounts are neither deleted nor renamed).
// Writes go through: the cache is updated after storage acknowledges, and
// only ever to a newer version, so the instance never answers older than
// its own writes. Routing by user_id sends every UpdateProfile of a user to
// the instance owning the user, but LookupAccount (user_id 0) to the one
// owning user 0, whose by-id cache can miss another instance's update: the
// "cache_ttl" bound (default 30s) limits that staleness when accountdata
// runs as several instances. With one instance nothing is stale.
//
// # Profile changes
//
// UpdateProfile writes the record with a compare-and-set on its version
// (re-reading and retrying on a conflict), then publishes the new Profile as
// an ACCOUNT item through MessageData.Deliver with dedup id
// "account:<record version>". A retry of an update whose publish was lost
// (a crash, a timeout) finds the nickname already set, changes nothing, and
// publishes the current profile again under the same dedup id: delivered
// once if it was lost, a duplicate if not.
//
// # Several storage shards
//
// Correctness needs the allocator and the name index on one shard (user_id
// 0 does that) and each record on its user's; the index check on read makes
// the two-shard creation safe. What one shard gives for free and several
// would not: a scan of all accounts (there is none here).
package handlers

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/lru"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

// Limits of stored accounts.
const (
	MaxNameLen         = 64
	MaxNicknameLen     = 64
	MaxPasswordHashLen = 512
)

// idBlock is how many user ids one allocator write reserves.
const idBlock = 64

// casAttempts bounds the read-modify-write retries of one update.
const casAttempts = 8

var (
	keyUIDBound = []byte("uid")
	keyAccount  = []byte("account")
)

func nameKey(name string) []byte { return append([]byte("name/"), name...) }

// Config is the accountdata Logicsvr's "app" settings.
type Config struct {
	// CacheSize is how many accounts each cache keeps (default 100000).
	CacheSize int `json:"cache_size,omitempty"`
	// CacheTTL bounds the age of a cached record (default 30s); see the
	// package doc for why one is needed at all.
	CacheTTL logicsvr.Duration `json:"cache_ttl,omitempty"`
}

// NewAccountData returns the AccountData handler. It needs im.Storage and
// im.MessageData in the routing table.
func NewAccountData(h *logicsvr.Host) (im.AccountDataServer, error) {
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

// New returns an AccountData handler over its clients.
func New(storage im.StorageClient, messages im.MessageDataClient, cfg Config) *Server {
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 100000
	}
	return &Server{
		storage:  storage,
		messages: messages,
		byID:     lru.New[uint64, *im.AccountRecord](cfg.CacheSize, time.Duration(cfg.CacheTTL)),
		byName:   lru.New[string, uint64](cfg.CacheSize, 0),
	}
}

// Server is the AccountData handler.
type Server struct {
	im.UnimplementedAccountDataServer
	storage  im.StorageClient
	messages im.MessageDataClient

	// cacheMu orders cache updates so only newer versions go in.
	cacheMu sync.Mutex
	byID    *lru.Cache[uint64, *im.AccountRecord]
	byName  *lru.Cache[string, uint64]

	// ids is the allocator's reserved block [next, limit).
	idMu        sync.Mutex
	next, limit uint64

	// users serialises each user's updates, so publishes go out in record
	// version order (striped: a lock per user would grow without bound).
	users [256]sync.Mutex
}

func (s *Server) userLock(user uint64) *sync.Mutex {
	return &s.users[(user*0x9e3779b97f4a7c15)>>56]
}

func checkName(name string) error {
	if name == "" || len(name) > MaxNameLen || !utf8.ValidString(name) {
		return svrkit.Errorf(svrkit.InvalidArgument, "name must be 1 to %d bytes of UTF-8", MaxNameLen)
	}
	return nil
}

func checkNickname(nick string, required bool) error {
	if required && nick == "" {
		return svrkit.NewError(svrkit.InvalidArgument, "nickname is required")
	}
	if len(nick) > MaxNicknameLen || !utf8.ValidString(nick) {
		return svrkit.Errorf(svrkit.InvalidArgument, "nickname of %d bytes: must be at most %d bytes of UTF-8", len(nick), MaxNicknameLen)
	}
	return nil
}

// cachePut stores rec unless the cache has a newer version.
func (s *Server) cachePut(rec *im.AccountRecord) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if old, ok := s.byID.Get(rec.GetUserId()); ok && old.GetVersion() > rec.GetVersion() {
		return
	}
	s.byID.Put(rec.GetUserId(), rec)
	s.byName.Put(rec.GetProfile().GetName(), rec.GetUserId())
}

// allocID returns a user id never handed out before.
func (s *Server) allocID(ctx context.Context) (uint64, error) {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	if s.next < s.limit {
		s.next++
		return s.next - 1, nil
	}
	for range casAttempts {
		var bound, ver uint64
		r, err := s.storage.Get(ctx, &im.KVGetRequest{UserId: 0, Key: keyUIDBound})
		switch {
		case err == nil:
			if len(r.GetValue()) != 8 {
				return 0, svrkit.Errorf(svrkit.DataLoss, "user id bound of %d bytes", len(r.GetValue()))
			}
			bound, ver = binary.BigEndian.Uint64(r.GetValue()), r.GetVersion()
		case svrkit.CodeOf(err) != svrkit.NotFound:
			return 0, err
		}
		// Ids start at 1; the block is (bound, bound+idBlock].
		newBound := bound + idBlock
		_, err = s.storage.Put(ctx, &im.KVPutRequest{UserId: 0, Key: keyUIDBound,
			Value: binary.BigEndian.AppendUint64(nil, newBound), ExpectVersion: ver})
		if svrkit.CodeOf(err) == svrkit.Aborted {
			continue // another allocator moved the bound: take the next block
		}
		if err != nil {
			return 0, err
		}
		s.next, s.limit = bound+2, newBound+1
		return bound + 1, nil
	}
	return 0, svrkit.NewError(svrkit.Aborted, "user id allocator keeps changing")
}

// CreateAccount implements im.AccountDataServer.
func (s *Server) CreateAccount(ctx context.Context, req *im.CreateAccountRequest) (*im.AccountRecord, error) {
	name := req.GetName()
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := checkNickname(req.GetNickname(), false); err != nil {
		return nil, err
	}
	if h := req.GetPasswordHash(); h == "" || len(h) > MaxPasswordHashLen {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "password hash of %d bytes outside [1, %d]", len(h), MaxPasswordHashLen)
	}
	if _, ok := s.byName.Get(name); ok {
		return nil, svrkit.Errorf(svrkit.AlreadyExists, "name %q is taken", name)
	}
	if _, err := s.storage.Get(ctx, &im.KVGetRequest{UserId: 0, Key: nameKey(name)}); err == nil {
		return nil, svrkit.Errorf(svrkit.AlreadyExists, "name %q is taken", name)
	} else if svrkit.CodeOf(err) != svrkit.NotFound {
		return nil, err
	}
	id, err := s.allocID(ctx)
	if err != nil {
		return nil, err
	}
	nick := req.GetNickname()
	if nick == "" {
		nick = name
	}
	rec := &im.AccountRecord{
		UserId:       id,
		Profile:      &im.Profile{UserId: id, Name: name, Nickname: nick, RegisteredUnix: time.Now().Unix()},
		PasswordHash: req.GetPasswordHash(),
	}
	val, err := proto.Marshal(rec)
	if err != nil {
		return nil, svrkit.Errorf(svrkit.Internal, "encode account: %v", err)
	}
	put, err := s.storage.Put(ctx, &im.KVPutRequest{UserId: id, Key: keyAccount, Value: val})
	if err != nil {
		return nil, err
	}
	rec.Version = put.GetVersion()
	_, err = s.storage.Put(ctx, &im.KVPutRequest{UserId: 0, Key: nameKey(name), Value: binary.BigEndian.AppendUint64(nil, id)})
	if err != nil {
		if svrkit.CodeOf(err) == svrkit.Aborted {
			// Another creation took the name between our check and now.
			// Our record is unreachable without the index; tidy it up.
			s.storage.Delete(ctx, &im.KVDeleteRequest{UserId: id, Key: keyAccount, ExpectVersion: rec.Version})
			return nil, svrkit.Errorf(svrkit.AlreadyExists, "name %q is taken", name)
		}
		// Unknown outcome: the record stays unreachable unless the index
		// write landed; either way the caller retries and sees which.
		return nil, err
	}
	s.cachePut(rec)
	logicsvr.Logger(ctx).Info("account created", "user_id", id)
	return proto.CloneOf(rec), nil
}

// GetAccount implements im.AccountDataServer.
func (s *Server) GetAccount(ctx context.Context, req *im.GetAccountRequest) (*im.AccountRecord, error) {
	rec, err := s.get(ctx, req.GetUserId())
	if err != nil {
		return nil, err
	}
	return proto.CloneOf(rec), nil
}

// get returns user's record from the cache or storage (not a copy).
func (s *Server) get(ctx context.Context, user uint64) (*im.AccountRecord, error) {
	if rec, ok := s.byID.Get(user); ok {
		return rec, nil
	}
	return s.load(ctx, user)
}

// load reads user's record from storage, checks the name index names it,
// and caches it.
func (s *Server) load(ctx context.Context, user uint64) (*im.AccountRecord, error) {
	notFound := svrkit.Errorf(svrkit.NotFound, "no user %d", user)
	if user == 0 {
		return nil, notFound
	}
	r, err := s.storage.Get(ctx, &im.KVGetRequest{UserId: user, Key: keyAccount})
	if svrkit.CodeOf(err) == svrkit.NotFound {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	rec := new(im.AccountRecord)
	if err := proto.Unmarshal(r.GetValue(), rec); err != nil || rec.GetUserId() != user {
		return nil, svrkit.Errorf(svrkit.DataLoss, "account record of user %d does not decode", user)
	}
	rec.Version = r.GetVersion()
	idx, err := s.storage.Get(ctx, &im.KVGetRequest{UserId: 0, Key: nameKey(rec.GetProfile().GetName())})
	if svrkit.CodeOf(err) == svrkit.NotFound || (err == nil && (len(idx.GetValue()) != 8 || binary.BigEndian.Uint64(idx.GetValue()) != user)) {
		return nil, notFound // a creation that did not finish
	}
	if err != nil {
		return nil, err
	}
	s.cachePut(rec)
	return rec, nil
}

// LookupAccount implements im.AccountDataServer.
func (s *Server) LookupAccount(ctx context.Context, req *im.LookupAccountRequest) (*im.AccountRecord, error) {
	name := req.GetName()
	if err := checkName(name); err != nil {
		return nil, err
	}
	id, ok := s.byName.Get(name)
	if !ok {
		r, err := s.storage.Get(ctx, &im.KVGetRequest{UserId: 0, Key: nameKey(name)})
		if svrkit.CodeOf(err) == svrkit.NotFound {
			return nil, svrkit.Errorf(svrkit.NotFound, "no user named %q", name)
		}
		if err != nil {
			return nil, err
		}
		if len(r.GetValue()) != 8 {
			return nil, svrkit.Errorf(svrkit.DataLoss, "name index of %q holds %d bytes", name, len(r.GetValue()))
		}
		id = binary.BigEndian.Uint64(r.GetValue())
	}
	rec, err := s.get(ctx, id)
	if svrkit.CodeOf(err) == svrkit.NotFound {
		// The index names a user without a record: its creation wrote
		// the record first, so this cannot happen short of data loss.
		return nil, svrkit.Errorf(svrkit.DataLoss, "name %q indexes user %d, which has no record", name, id)
	}
	if err != nil {
		return nil, err
	}
	return proto.CloneOf(rec), nil
}

// UpdateProfile implements im.AccountDataServer.
func (s *Server) UpdateProfile(ctx context.Context, req *im.UpdateProfileRequest) (*im.AccountRecord, error) {
	user := req.GetUserId()
	if err := checkNickname(req.GetNickname(), true); err != nil {
		return nil, err
	}
	l := s.userLock(user)
	l.Lock()
	defer l.Unlock()

	rec, err := s.get(ctx, user)
	if err != nil {
		return nil, err
	}
	// A nickname already as asked writes nothing; the profile is published
	// again below in case its first publish was lost.
	for attempt := 1; rec.GetProfile().GetNickname() != req.GetNickname(); attempt++ {
		next := proto.CloneOf(rec)
		next.Profile.Nickname = req.GetNickname()
		next.Version = 0
		val, err := proto.Marshal(next)
		if err != nil {
			return nil, svrkit.Errorf(svrkit.Internal, "encode account: %v", err)
		}
		put, err := s.storage.Put(ctx, &im.KVPutRequest{UserId: user, Key: keyAccount, Value: val, ExpectVersion: rec.GetVersion()})
		if err == nil {
			next.Version = put.GetVersion()
			s.cachePut(next)
			rec = next
			break
		}
		if svrkit.CodeOf(err) != svrkit.Aborted || attempt >= casAttempts {
			return nil, err
		}
		// Someone else wrote the record (a second instance): re-read.
		if rec, err = s.load(ctx, user); err != nil {
			return nil, err
		}
	}
	_, err = s.messages.Deliver(ctx, &im.DeliverRequest{
		UserId:  user,
		Item:    &im.SyncItem{Type: im.SyncType_SYNC_TYPE_ACCOUNT, Item: &im.SyncItem_Profile{Profile: rec.GetProfile()}},
		DedupId: fmt.Sprintf("account:%d", rec.GetVersion()),
	})
	if err != nil {
		return nil, err
	}
	return proto.CloneOf(rec), nil
}
