package handlers

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/groups"
	"github.com/svrkit/svrkit/examples/im/internal/lru"
	"github.com/svrkit/svrkit/examples/im/internal/shard"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

// MaxLeftGroups bounds the groups a user's index remembers having left
// (with the seq they left at, so that a late write of an older join cannot
// put the group back); beyond it the oldest are forgotten. The group
// Logicsvr checks membership against the group's record before it shows
// a group, so a forgotten one could at worst cost a lookup, never show a
// group the user left.
const MaxLeftGroups = 1000

var keyUserGroups = []byte("groups")

// NewUserGroups returns the UserGroups handler. It needs im.Storage in the
// routing table.
func NewUserGroups(h *logicsvr.Host) (im.UserGroupsServer, error) {
	cfg := Config{CacheSize: 100000, CacheTTL: logicsvr.Duration(30 * time.Second)}
	if err := h.AppConfig(&cfg); err != nil {
		return nil, err
	}
	if h.InfoOnly() {
		return &UserGroupsServer{}, nil
	}
	inv, err := h.Client(im.Storage_ServiceName)
	if err != nil {
		return nil, err
	}
	s := NewUserGroupsServer(im.NewStorageClient(inv), cfg)
	s.route = shard.Router(inv)
	return s, nil
}

// NewUserGroupsServer returns a UserGroups handler over a storage client.
func NewUserGroupsServer(storage im.StorageClient, cfg Config) *UserGroupsServer {
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 100000
	}
	return &UserGroupsServer{storage: storage, cache: lru.New[uint64, *userGroups](cfg.CacheSize, time.Duration(cfg.CacheTTL))}
}

// UserGroupsServer is the UserGroups handler: one KV record per user,
// compare-and-set on its version, cached like GroupData's records.
type UserGroupsServer struct {
	im.UnimplementedUserGroupsServer
	storage im.StorageClient
	cache   *lru.Cache[uint64, *userGroups]
	// route is the storage client's routing, by which ApplyMembershipMany
	// groups its users (nil: one group).
	route svrkit.KeyRouter
	// locks serialise each user's read-modify-write (striped by stripe).
	locks [256]sync.Mutex
}

// userGroups is a user's index as of a storage version; never mutated.
type userGroups struct {
	rec     *im.UserGroupsRecord
	version uint64
}

func (s *UserGroupsServer) load(ctx context.Context, user uint64, fromStore bool) (*userGroups, error) {
	if !fromStore {
		if c, ok := s.cache.Get(user); ok {
			return c, nil
		}
	}
	r, err := s.storage.Get(ctx, &im.KVGetRequest{UserId: user, Key: keyUserGroups})
	if svrkit.CodeOf(err) == svrkit.NotFound {
		return &userGroups{rec: &im.UserGroupsRecord{}}, nil
	}
	if err != nil {
		return nil, err
	}
	rec := new(im.UserGroupsRecord)
	if err := proto.Unmarshal(r.GetValue(), rec); err != nil {
		return nil, svrkit.Errorf(svrkit.DataLoss, "user %d's group index does not decode: %v", user, err)
	}
	c := &userGroups{rec: rec, version: r.GetVersion()}
	s.cache.Put(user, c)
	return c, nil
}

// stripe is the index of user's lock.
func stripe(user uint64) int { return int((user * 0x9e3779b97f4a7c15) >> 56) }

// applied returns rec with the change of group at seq applied (member or
// not), or nil when a change of seq or a later one is recorded already.
func applied(rec *im.UserGroupsRecord, group, seq uint64, member bool) *im.UserGroupsRecord {
	entries := rec.GetGroups()
	i, found := slices.BinarySearchFunc(entries, group, func(e *im.UserGroupEntry, g uint64) int {
		return cmp.Compare(e.GetGroupId(), g)
	})
	if found && entries[i].GetSeq() >= seq {
		return nil
	}
	next := slices.Clone(entries)
	e := &im.UserGroupEntry{GroupId: group, Seq: seq, Member: member}
	if found {
		next[i] = e
	} else {
		next = slices.Insert(next, i, e)
	}
	return &im.UserGroupsRecord{Groups: forgetOldLeft(next)}
}

// ApplyMembership implements im.UserGroupsServer.
func (s *UserGroupsServer) ApplyMembership(ctx context.Context, req *im.ApplyMembershipRequest) (*im.ApplyMembershipReply, error) {
	user, group, seq := req.GetUserId(), req.GetGroupId(), req.GetSeq()
	if !groups.IsUserID(user) || !groups.IsID(group) || seq == 0 {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "need a user id, a group id and a seq")
	}
	l := &s.locks[stripe(user)]
	l.Lock()
	defer l.Unlock()
	fromStore := false
	for attempt := 0; ; attempt++ {
		c, err := s.load(ctx, user, fromStore)
		if err != nil {
			return nil, err
		}
		rec := applied(c.rec, group, seq, req.GetMember())
		if rec == nil {
			return &im.ApplyMembershipReply{}, nil // a newer change is recorded
		}
		val, err := proto.Marshal(rec)
		if err != nil {
			return nil, svrkit.Errorf(svrkit.Internal, "encode group index: %v", err)
		}
		put, err := s.storage.Put(ctx, &im.KVPutRequest{UserId: user, Key: keyUserGroups, Value: val, ExpectVersion: c.version})
		if svrkit.CodeOf(err) == svrkit.Aborted && attempt+1 < casAttempts {
			fromStore = true
			continue
		}
		if err != nil {
			return nil, err
		}
		s.cache.Put(user, &userGroups{rec: rec, version: put.GetVersion()})
		return &im.ApplyMembershipReply{Changed: true}, nil
	}
}

// forgetOldLeft drops left groups beyond MaxLeftGroups, those of the
// lowest seqs first (a rough age: seqs of two groups do not compare).
func forgetOldLeft(es []*im.UserGroupEntry) []*im.UserGroupEntry {
	var left []*im.UserGroupEntry
	for _, e := range es {
		if !e.GetMember() {
			left = append(left, e)
		}
	}
	if len(left) <= MaxLeftGroups {
		return es
	}
	slices.SortFunc(left, func(a, b *im.UserGroupEntry) int { return cmp.Compare(a.GetSeq(), b.GetSeq()) })
	drop := map[*im.UserGroupEntry]bool{}
	for _, e := range left[:len(left)-MaxLeftGroups] {
		drop[e] = true
	}
	return slices.DeleteFunc(es, func(e *im.UserGroupEntry) bool { return drop[e] })
}

// ListUserGroups implements im.UserGroupsServer.
func (s *UserGroupsServer) ListUserGroups(ctx context.Context, req *im.ListUserGroupsRequest) (*im.UserGroupList, error) {
	user := req.GetUserId()
	if !groups.IsUserID(user) {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "need a user id")
	}
	l := &s.locks[stripe(user)]
	l.Lock()
	defer l.Unlock()
	c, err := s.load(ctx, user, false)
	if err != nil {
		return nil, err
	}
	out := &im.UserGroupList{}
	for _, e := range c.rec.GetGroups() {
		if e.GetMember() {
			out.GroupIds = append(out.GroupIds, e.GetGroupId())
		}
	}
	return out, nil
}
