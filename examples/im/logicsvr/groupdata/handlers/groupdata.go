// Package handlers implements the groupdata Logicsvr (idl/im/groupdata.proto):
// the data-access service of groups, in front of the storage Logicsvr's KV
// and Key-Table models, and the publisher of the group fan-out queue.
// NewGroupData and NewUserGroups are the constructors its generated main
// calls.
//
// # Stored records
//
// Under the group's id as storage user_id (group ids never collide with
// user ids; package examples/im/internal/groups):
//
//	key "group"                    the GroupRecord: info, members with the seq they joined at,
//	                               former members with the seqs they joined and left at
//	row "log", version seq         the GroupLogEntry at seq: a change or a message
//	key "m/" sender client_msg_id  dedup of a message: its seq (8 bytes)
//	key "fanned"                   the seq up to which the fan-out is done (8 bytes)
//
// Under a user's id: key "groups", the UserGroupsRecord (usergroups.go).
//
// # The write path
//
// A change or a message takes the group's lock (a striped lock in this
// process; svrkit routes every call about a group here), reads the record
// (from the cache, else storage) and the log's last seq, checks the rules
// (membership, owner, 500 members), and writes one storage Batch: the
// entry at seq = last+1 with PutEntry (which fails if the seq is taken),
// and either the new record (a change, compare-and-set on its version) or
// a check of the record's version and the message's dedup key (a message,
// which must not exist). All or nothing: the record never disagrees with
// the log about who was a member at a seq. A failed condition means the
// cache was stale (another writer, after a routing change) or the message
// is a repeat: the dedup key says which; otherwise the record is re-read
// and the write tried again.
//
// Then, with the lock released, the entry is published to the fan-out
// queue (groups.Item), and only then does the call answer: an answered
// change or message is durable and on its way to the inboxes. A publish
// that fails fails the call; the caller retries, the retry finds the entry
// written (a repeat) and publishes again. A repeat always publishes, since
// the first attempt's publish may have been lost.
//
// # Membership at a seq
//
// Members carry the seq of the change that added them (joined_seq); a
// removal moves the member to former with the seq of the removal
// (left_seq). The members at seq S are the members with joined_seq <= S
// and the former members with joined_seq <= S <= left_seq: the worker
// reading entry S with the record (ReadLog returns both, read under the
// lock) knows exactly whom it goes to, however late it runs. Former
// members are dropped from the record at its next change once the fanned
// seq has passed their left_seq: no entry left to fan out concerns them.
//
// # Cache
//
// An LRU of group states (record, its storage version, the log's last seq,
// the fanned seq once read), changed only under the group's lock after
// storage acknowledged, so never stale for this instance's own writes; a
// TTL ("cache_ttl", default 30s) bounds staleness should routing move a
// group, and the conditions of every write catch it meanwhile.
//
// # What it does not do
//
// Logs and dedup keys are never trimmed: a group's storage grows with its
// messages. Trimming what every member has synced is the inbox's job for
// inboxes; for logs it is future work (the fanned seq says what is safe).
package handlers

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/groups"
	"github.com/svrkit/svrkit/examples/im/internal/lru"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

// casAttempts bounds the write retries of one call.
const casAttempts = 8

// MaxReadLog bounds one ReadLog.
const MaxReadLog = 256

var (
	keyGroup  = []byte("group")
	rowLog    = []byte("log")
	keyFanned = []byte("fanned")
)

// dedupKey is the key of a message's dedup record.
func dedupKey(sender uint64, clientMsgID string) []byte {
	b := append([]byte("m/"), binary.BigEndian.AppendUint64(nil, sender)...)
	return append(b, clientMsgID...)
}

// Config is the groupdata Logicsvr's "app" settings.
type Config struct {
	// CacheSize is how many groups the cache keeps (default 100000).
	CacheSize int `json:"cache_size,omitempty"`
	// CacheTTL bounds the age of a cached group (default 30s).
	CacheTTL logicsvr.Duration `json:"cache_ttl,omitempty"`
	// Queue is the fan-out queue (required).
	Queue groups.QueueConfig `json:"queue"`
}

// Publisher publishes an appended log entry for fan-out.
type Publisher interface {
	Publish(ctx context.Context, it groups.Item) error
}

// NewGroupData returns the GroupData handler. It needs im.Storage in the
// routing table and the queue in the app config.
func NewGroupData(h *logicsvr.Host) (im.GroupDataServer, error) {
	cfg := Config{CacheSize: 100000, CacheTTL: logicsvr.Duration(30 * time.Second)}
	if err := h.AppConfig(&cfg); err != nil {
		return nil, err
	}
	if h.InfoOnly() {
		return &Server{}, nil
	}
	if err := cfg.Queue.Check(h.Config().Dev); err != nil {
		return nil, err
	}
	inv, err := h.Client(im.Storage_ServiceName)
	if err != nil {
		return nil, err
	}
	q := groups.DialQueue(cfg.Queue, "groupdata", h.Logger())
	h.OnShutdown(func(context.Context) error { return q.Close() })
	return New(im.NewStorageClient(inv), q, cfg), nil
}

// New returns a GroupData handler over a storage client, publishing to pub.
func New(storage im.StorageClient, pub Publisher, cfg Config) *Server {
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 100000
	}
	return &Server{
		storage: storage,
		pub:     pub,
		now:     time.Now,
		cache:   lru.New[uint64, *groupState](cfg.CacheSize, time.Duration(cfg.CacheTTL)),
	}
}

// Server is the GroupData handler.
type Server struct {
	im.UnimplementedGroupDataServer
	storage im.StorageClient
	pub     Publisher
	now     func() time.Time

	cache *lru.Cache[uint64, *groupState]
	locks [256]sync.Mutex
}

// groupState is what the service knows of one group. It is never mutated
// once cached: a change caches a new one.
type groupState struct {
	rec     *im.GroupRecord // nil: no such group
	version uint64          // the record's storage version; 0: none
	lastSeq uint64          // the log's last seq
	fanned  uint64
	// fannedKnown: fanned was read from storage (or written since).
	fannedKnown bool
}

func (s *Server) lock(group uint64) func() {
	l := &s.locks[(group*0x9e3779b97f4a7c15)>>56]
	l.Lock()
	return l.Unlock
}

// load returns the group's state, from the cache unless fromStore. The
// caller holds the group's lock.
func (s *Server) load(ctx context.Context, group uint64, fromStore bool) (*groupState, error) {
	if !fromStore {
		if st, ok := s.cache.Get(group); ok {
			return st, nil
		}
	}
	st := &groupState{}
	r, err := s.storage.Get(ctx, &im.KVGetRequest{UserId: group, Key: keyGroup})
	switch {
	case svrkit.CodeOf(err) == svrkit.NotFound:
	case err != nil:
		return nil, err
	default:
		rec := new(im.GroupRecord)
		if err := proto.Unmarshal(r.GetValue(), rec); err != nil {
			return nil, svrkit.Errorf(svrkit.DataLoss, "group %d's record does not decode: %v", group, err)
		}
		st.rec, st.version = rec, r.GetVersion()
	}
	meta, err := s.storage.Scan(ctx, &im.TableScanRequest{UserId: group, Row: rowLog})
	if err != nil {
		return nil, err
	}
	st.lastSeq = meta.GetMaxVersion()
	s.cache.Put(group, st)
	return st, nil
}

// loadGroup is load for a group that must exist: not_found otherwise.
func (s *Server) loadGroup(ctx context.Context, group uint64, fromStore bool) (*groupState, error) {
	if err := groups.CheckGroupID(group); err != nil {
		return nil, err
	}
	st, err := s.load(ctx, group, fromStore)
	if err != nil {
		return nil, err
	}
	if st.rec == nil {
		return nil, svrkit.Errorf(svrkit.NotFound, "no group %d", group)
	}
	return st, nil
}

// withFanned returns st with its fanned seq read, if it was not.
func (s *Server) withFanned(ctx context.Context, group uint64, st *groupState) (*groupState, error) {
	if st.fannedKnown {
		return st, nil
	}
	r, err := s.storage.Get(ctx, &im.KVGetRequest{UserId: group, Key: keyFanned})
	var fanned uint64
	switch {
	case svrkit.CodeOf(err) == svrkit.NotFound:
	case err != nil:
		return nil, err
	case len(r.GetValue()) != 8:
		return nil, svrkit.Errorf(svrkit.DataLoss, "group %d's fanned seq has %d bytes", group, len(r.GetValue()))
	default:
		fanned = binary.BigEndian.Uint64(r.GetValue())
	}
	next := *st
	next.fanned, next.fannedKnown = fanned, true
	s.cache.Put(group, &next)
	return &next, nil
}

// member returns the member record of user, if a member.
func member(rec *im.GroupRecord, user uint64) (*im.MemberRecord, bool) {
	for _, m := range rec.GetMembers() {
		if m.GetMember().GetUserId() == user {
			return m, true
		}
	}
	return nil, false
}

// publish publishes the entry at seq of group for fan-out.
func (s *Server) publish(ctx context.Context, group, seq uint64) error {
	return s.pub.Publish(ctx, groups.Item{Group: group, Seq: seq})
}

// GetGroup implements im.GroupDataServer.
func (s *Server) GetGroup(ctx context.Context, req *im.GetGroupRequest) (*im.GroupRecord, error) {
	group := req.GetGroupId()
	if err := groups.CheckGroupID(group); err != nil {
		return nil, err
	}
	defer s.lock(group)()
	st, err := s.loadGroup(ctx, group, false)
	if err != nil {
		return nil, err
	}
	out := proto.CloneOf(st.rec)
	out.LastSeq = st.lastSeq
	return out, nil
}
