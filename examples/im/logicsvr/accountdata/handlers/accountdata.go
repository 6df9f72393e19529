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
// # User ids: random, so profiles cannot be listed
//
// Ids are drawn at random from [2^32, 2^63), not counted: GetProfile
// serves any user's public profile to any logged-in user (account.proto
// documents it, and a client must show who wrote a message from a
// stranger), so with sequential ids, asking for 1, 2, 3, ... listed every
// account. The other cure, profiles visible only to contacts, would break
// that documented call and the stranger's message; random ids keep it and
// make the walk useless: with a billion accounts, a guess finds one with
// probability 1 in 9·10^9, and each guess is a rate-limited call with a
// session. An id is learned from the user instead (a message, a contact
// added by name). Ids below 2^32 are those handed out in sequence before,
// so old and new never meet. Names remain enumerable through AddContact by
// name, as a name is the handle users give each other.
//
// # Creating an account, and crashes
//
// CreateAccount (routed with user_id 0, so every creation reaches one
// instance):
//
//  1. refuses a name the index already has (already_exists);
//  2. draws a random user id and writes the account record under it,
//     "must not exist": an id that has a record (an account, or a
//     creation that never finished) is never handed out again, and a
//     collision (at 2^-31 per draw with a billion accounts) draws again;
//  3. writes the name index entry, "must not exist". This is what makes the
//     name taken: of two creations racing for one name exactly one wins
//     here, and the loser answers already_exists (and deletes its record).
//
// The record and the index are on different shards, so they cannot be one
// atomic batch. Instead a record counts only while the index names it:
// GetAccount and UpdateProfile check, when they read a record from storage,
// that "name/<its name>" holds its id, and answer not_found otherwise. A
// crash between steps 2 and 3 therefore leaves an unreachable record, never
// a half-made account: its id is not handed out again and its name is still
// free.
//
// # Sessions
//
// A record carries its user's im.SessionState: a counter that every
// revocation increments, and the floors below which a token's counter is
// revoked, for every device or for one (package
// examples/im/internal/session has the protocol). RevokeSessions changes
// them with the same compare-and-set loop as UpdateProfile, and with a new
// password hash when a password changes, so the hash and the revocation of
// every older session land in one write. A device's floor is dropped once
// every token below it has expired (the caller says when that is); beyond
// maxDeviceFloors devices, the oldest floor is folded into the account's,
// which revokes more than asked, never less.
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
// Correctness needs the name index on one shard (user_id 0 does that) and
// each record on its user's; the index check on read makes the two-shard
// creation safe. What one shard gives for free and several would not: a
// scan of all accounts (there is none here).
package handlers

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
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

// Limits of stored accounts.
const (
	MaxNameLen         = 64
	MaxNicknameLen     = 64
	MaxPasswordHashLen = 512
)

// User ids are drawn from [minRandomID, 2^63).
const minRandomID = 1 << 32

// casAttempts bounds the read-modify-write retries of one update, and the
// draws of one new user id.
const casAttempts = 8

// maxDeviceFloors bounds the per-device revocations a record keeps.
const maxDeviceFloors = 64

// maxDeviceIDLen is session.MaxDeviceIDBytes (account.proto's limit).
const maxDeviceIDLen = 64

var keyAccount = []byte("account")

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

// randomID returns a user id for a new account; that it is free is
// checked by the record's "must not exist" write.
func randomID() uint64 {
	return minRandomID + rand.Uint64N(1<<63-minRandomID)
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
	nick := req.GetNickname()
	if nick == "" {
		nick = name
	}
	var rec *im.AccountRecord
	for attempt := 1; ; attempt++ {
		id := randomID()
		rec = &im.AccountRecord{
			UserId:       id,
			Profile:      &im.Profile{UserId: id, Name: name, Nickname: nick, RegisteredUnix: time.Now().Unix()},
			PasswordHash: req.GetPasswordHash(),
		}
		val, err := proto.Marshal(rec)
		if err != nil {
			return nil, svrkit.Errorf(svrkit.Internal, "encode account: %v", err)
		}
		put, err := s.storage.Put(ctx, &im.KVPutRequest{UserId: id, Key: keyAccount, Value: val})
		if svrkit.CodeOf(err) == svrkit.Aborted && attempt < casAttempts {
			continue // the id has a record: draw another
		}
		if err != nil {
			return nil, err
		}
		rec.Version = put.GetVersion()
		break
	}
	id := rec.GetUserId()
	_, err := s.storage.Put(ctx, &im.KVPutRequest{UserId: 0, Key: nameKey(name), Value: binary.BigEndian.AppendUint64(nil, id)})
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

	// A nickname already as asked writes nothing; the profile is published
	// again below in case its first publish was lost.
	rec, err := s.update(ctx, user, func(next *im.AccountRecord) (bool, error) {
		if next.GetProfile().GetNickname() == req.GetNickname() {
			return false, nil
		}
		next.Profile.Nickname = req.GetNickname()
		return true, nil
	})
	if err != nil {
		return nil, err
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

// RevokeSessions implements im.AccountDataServer.
func (s *Server) RevokeSessions(ctx context.Context, req *im.RevokeSessionsRequest) (*im.AccountRecord, error) {
	user, device := req.GetUserId(), req.GetDeviceId()
	if len(device) > maxDeviceIDLen {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "device id of %d bytes: must be at most %d", len(device), maxDeviceIDLen)
	}
	if h := req.GetNewPasswordHash(); len(h) > MaxPasswordHashLen {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "password hash of %d bytes: must be at most %d", len(h), MaxPasswordHashLen)
	}
	l := s.userLock(user)
	l.Lock()
	defer l.Unlock()
	rec, err := s.update(ctx, user, func(next *im.AccountRecord) (bool, error) {
		if req.GetNewPasswordHash() != "" && next.GetPasswordHash() != req.GetExpectPasswordHash() {
			return false, svrkit.NewError(svrkit.Aborted, "the password changed meanwhile")
		}
		if next.Sessions == nil {
			next.Sessions = &im.SessionState{}
		}
		revoke(next.Sessions, device, req.GetExpiredBeforeUnix(), time.Now().Unix())
		if h := req.GetNewPasswordHash(); h != "" {
			next.PasswordHash = h
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	logicsvr.Logger(ctx).Info("sessions revoked", "user_id", user, "device", device,
		"password_changed", req.GetNewPasswordHash() != "", "counter", rec.GetSessions().GetCounter())
	return proto.CloneOf(rec), nil
}

// update writes the record change makes of a copy of user's current one,
// with a compare-and-set on its version, and returns the record stored
// (not a copy). change answers false when the record needs no write, or an
// error to give up. When another writer got there first (a second
// instance), it re-reads the record and applies change again. The caller
// holds user's lock.
func (s *Server) update(ctx context.Context, user uint64, change func(next *im.AccountRecord) (bool, error)) (*im.AccountRecord, error) {
	rec, err := s.get(ctx, user)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		next := proto.CloneOf(rec)
		next.Version = 0
		write, err := change(next)
		if err != nil || !write {
			return rec, err
		}
		val, err := proto.Marshal(next)
		if err != nil {
			return nil, svrkit.Errorf(svrkit.Internal, "encode account: %v", err)
		}
		put, err := s.storage.Put(ctx, &im.KVPutRequest{UserId: user, Key: keyAccount, Value: val, ExpectVersion: rec.GetVersion()})
		if err == nil {
			next.Version = put.GetVersion()
			s.cachePut(next)
			return next, nil
		}
		if svrkit.CodeOf(err) != svrkit.Aborted || attempt >= casAttempts {
			return nil, err
		}
		if rec, err = s.load(ctx, user); err != nil {
			return nil, err
		}
	}
}

// revoke ends, in st, the sessions of device (every device's when it is
// ""): every token issued before now has a counter below the new floor.
// Device floors set before expiredBefore, or not above the account's
// floor, revoke nothing more and are dropped.
func revoke(st *im.SessionState, device string, expiredBefore, now int64) {
	st.Counter++
	if device == "" {
		st.Floor, st.Devices = st.Counter, nil
		return
	}
	st.Devices = slices.DeleteFunc(st.Devices, func(d *im.DeviceFloor) bool {
		return d.GetDeviceId() == device || d.GetSetUnix() < expiredBefore || d.GetFloor() <= st.GetFloor()
	})
	st.Devices = append(st.Devices, &im.DeviceFloor{DeviceId: device, Floor: st.Counter, SetUnix: now})
	// Over the bound: fold the oldest floors into the account's. Every
	// device's tokens below them end too, which is more than asked, never
	// less.
	for len(st.Devices) > maxDeviceFloors {
		oldest := slices.MinFunc(st.Devices, func(a, b *im.DeviceFloor) int { return cmp.Compare(a.GetFloor(), b.GetFloor()) })
		st.Floor = oldest.GetFloor()
		st.Devices = slices.DeleteFunc(st.Devices, func(d *im.DeviceFloor) bool { return d.GetFloor() <= st.Floor })
	}
}

// GetSessionState implements im.AccountDataServer.
func (s *Server) GetSessionState(ctx context.Context, req *im.GetAccountRequest) (*im.SessionState, error) {
	rec, err := s.get(ctx, req.GetUserId())
	if err != nil {
		return nil, err
	}
	if rec.GetSessions() == nil {
		return &im.SessionState{}, nil
	}
	return proto.CloneOf(rec.GetSessions()), nil
}
