// Package handlers implements the storage Logicsvr, the IM backend's
// data-storage service (idl/im/storage.proto): the one process that opens
// the on-disk store, serving its KV and Key-Table models (package kv) and
// the users' sync inboxes (package inbox) over svrkit RPC to the data-access
// services.
//
// # Data flow
//
// Each RPC maps to one call of kv or inbox. Nothing is cached here: the
// data-access services in front keep the caches, and the store is the truth.
// Every write reaches the fsync'd WAL before it is answered (kv commits
// with pebble.Sync), so an answered write survives a crash.
//
// # One store or a replica group
//
// By default (topology.json) the instance opens one pebble store in "dir":
// the simplest thing, and a single point of failure. With a "replica"
// object in its app config (topology-replicated.json) the instance is one
// replica of a Raft group (package examples/im/internal/replica): the same
// kv.Store under kv, seq and inbox, so every semantic is the same, but a
// write is answered only once a majority of the group has it, and only the
// leader serves. The other replicas answer a redirect naming the leader's
// RPC address, which the data-access services' svrkit clients follow and
// remember; during an election a replica waits (bounded) for the new
// leader before it answers. Every replica is in the callers' routing
// table, so nothing else changes for them. The group's membership is
// changed through the StorageAdmin service (admin.go), an operator's.
//
// Several groups may each own a range of user-id hashes
// (topology-sharded.json): that is the callers' business (their "shards"
// config, svrkit.ShardedInvoker); an instance serves whatever user ids it
// is sent and knows nothing of the other groups.
//
// # Key scoping
//
// Clients' KV keys and Key-Table rows are stored under
//
//	"d/" user_id (8 bytes big-endian) key
//
// so a key is scoped by its request's user_id — the shard key the service is
// routed by — and clients cannot reach the inbox's own records ("ib/",
// "dd/", "ak/", "seq/"), which only the inbox methods touch.
// Client keys are at most MaxKeyLen (1000) bytes, which with the 10-byte
// prefix stays within kv.MaxKeyLen.
//
// # Trimming
//
// A Sync whose key advances a device's ACK is the moment some of the user's
// entries may have become trimmable. The handler then queues the user for
// the trim worker, one goroutine running inbox.Trim per user in the
// background, so Sync never waits for deletions. The queue is bounded; when
// it is full the user is dropped and counted (the next Sync queues it
// again; nothing is lost, trimming only waits). A user already queued is
// not queued twice. The worker stops on shutdown, before the store closes.
//
// # Errors
//
// kv, inbox, seq and replica return plain Go errors, which get their svrkit
// codes in one place, toStatus, run by one interceptor on every call:
// NotFound, Aborted for a failed version condition, InvalidArgument,
// OutOfRange for a SyncKey from the future, DataLoss, Unavailable once
// closed or with no leader, ResourceExhausted, and a redirect to the leader
// from a replica that is not it. Limits are checked here first so the
// message names the client's sizes, not the stored ones.
package handlers

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/inbox"
	"github.com/svrkit/svrkit/examples/im/internal/kv"
	"github.com/svrkit/svrkit/examples/im/internal/replica"
	"github.com/svrkit/svrkit/examples/im/internal/secrets"
	"github.com/svrkit/svrkit/examples/im/internal/seq"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor"
)

// Limits of the service, on top of package kv's and inbox's.
const (
	// MaxKeyLen is the longest client key or row (within kv.MaxKeyLen
	// with the scoping prefix).
	MaxKeyLen = 1000
	// MaxValueLen is the largest KV value or Key-Table entry.
	MaxValueLen = kv.MaxValueLen
	// MaxBatchOps bounds one Batch.
	MaxBatchOps = 64
	// MaxScanLimit bounds one Scan.
	MaxScanLimit = kv.MaxScanLimit
	// MaxPutManyUsers bounds the users of one PutMany, as
	// inbox.MaxManyUsers the users of a DeliverMany: every member of the
	// largest group fits in one call.
	MaxPutManyUsers = inbox.MaxManyUsers
	// MaxPutManyBytes bounds the bytes of a PutMany's keys and values
	// together: what its one batch writes to the WAL (and, replicated, to
	// one Raft log entry), and unlike DeliverMany's one payload, bytes the
	// request carries, so below svrkit's 4 MiB frame with room for the
	// rest of the request.
	MaxPutManyBytes = 3 << 20
)

// DefaultTrimQueue is the trim worker's queue length.
const DefaultTrimQueue = 4096

const keyPrefix = "d/"

// Config is the storage Logicsvr's "app" settings.
type Config struct {
	// Dir is the store's directory (required).
	Dir string `json:"dir"`
	// SyncKeySecret keys the SyncKeys' encryption and SIV; the same on
	// every instance. Outside development mode ("dev": true) it must be
	// at least 32 bytes and not the one topology.json publishes (package
	// examples/im/internal/secrets).
	SyncKeySecret string `json:"sync_key_secret"`
	// Retention keeps even acknowledged inbox entries at least this long
	// (default 7 days).
	Retention logicsvr.Duration `json:"retention,omitempty"`
	// TrimQueue is how many users may wait for the trim worker (default
	// 4096).
	TrimQueue int `json:"trim_queue,omitempty"`
	// Replica, when set, makes this instance one replica of a Raft group
	// (package examples/im/internal/replica) instead of the only copy of
	// the data. Without it (the default) the store is a single pebble.
	Replica *ReplicaConfig `json:"replica,omitempty"`
}

// ReplicaConfig is the "replica" object of the app config: this replica's
// place in its group (see replica.Config for each field's meaning).
type ReplicaConfig struct {
	ID      string         `json:"id"`
	Cluster string         `json:"cluster"`
	Raft    string         `json:"raft,omitempty"`
	Peers   []replica.Peer `json:"peers"`
	// Join: on an empty directory, wait to be added (StorageAdmin.AddReplica)
	// instead of bootstrapping peers as a new group.
	Join bool `json:"join,omitempty"`

	HeartbeatTimeout  logicsvr.Duration `json:"heartbeat_timeout,omitempty"`
	ElectionTimeout   logicsvr.Duration `json:"election_timeout,omitempty"`
	LeaderWait        logicsvr.Duration `json:"leader_wait,omitempty"`
	SnapshotThreshold uint64            `json:"snapshot_threshold,omitempty"`
	TrailingLogs      uint64            `json:"trailing_logs,omitempty"`
	SnapshotInterval  logicsvr.Duration `json:"snapshot_interval,omitempty"`
}

// NewStorage returns the Storage handler: it opens the store in the app
// config's "dir" and starts the trim worker; both stop in the host's
// shutdown, after the last call has drained.
func NewStorage(h *logicsvr.Host) (im.StorageServer, error) {
	var cfg Config
	if err := h.AppConfig(&cfg); err != nil {
		return nil, err
	}
	if h.InfoOnly() {
		return &Server{}, nil
	}
	if cfg.Dir == "" {
		return nil, fmt.Errorf("storage: app config needs \"dir\"")
	}
	if err := secrets.Check(h, "sync_key_secret", cfg.SyncKeySecret); err != nil {
		return nil, err
	}
	s, err := open(cfg, h.Logger())
	if err != nil {
		return nil, err
	}
	h.Use(statusInterceptor)
	h.OnShutdown(func(context.Context) error { return s.Close() })
	opened.Store(h, s)
	return s, nil
}

// Server is the Storage handler over one open store.
type Server struct {
	im.UnimplementedStorageServer
	db    kv.Store
	node  *replica.Node // nil for a single store
	close func() error
	inbox *inbox.Inbox
	trim  *trimWorker
	log   *slog.Logger
}

// Open opens the store cfg names and starts the trim worker. Close stops
// both.
func Open(cfg Config) (*Server, error) { return open(cfg, nil) }

func open(cfg Config, log *slog.Logger) (*Server, error) {
	s := &Server{log: log}
	var db kv.Store
	var alloc atomic.Pointer[seq.Allocator]
	if rc := cfg.Replica; rc != nil {
		n, err := replica.Open(cfg.Dir, replica.Config{
			ID: rc.ID, Cluster: rc.Cluster, Raft: rc.Raft, Peers: rc.Peers, Join: rc.Join,
			HeartbeatTimeout: time.Duration(rc.HeartbeatTimeout), ElectionTimeout: time.Duration(rc.ElectionTimeout),
			LeaderWait:        time.Duration(rc.LeaderWait),
			SnapshotThreshold: rc.SnapshotThreshold, TrailingLogs: rc.TrailingLogs,
			SnapshotInterval: time.Duration(rc.SnapshotInterval),
			// Another leader may have raised the version bounds meanwhile:
			// the allocator reloads them.
			OnLead: func() {
				if a := alloc.Load(); a != nil {
					a.Reset()
				}
			},
			Logger: log,
		})
		if err != nil {
			return nil, fmt.Errorf("storage: replica %s in %s: %w", rc.ID, cfg.Dir, err)
		}
		db, s.close, s.node = n, n.Close, n
	} else {
		d, err := kv.Open(cfg.Dir, nil)
		if err != nil {
			return nil, fmt.Errorf("storage: open %s: %w", cfg.Dir, err)
		}
		db, s.close = d, d.Close
	}
	a := seq.New(db, seq.Options{})
	alloc.Store(a)
	ib := inbox.New(db, a, inbox.Options{
		Retention:     time.Duration(cfg.Retention),
		SyncKeySecret: []byte(cfg.SyncKeySecret),
	})
	q := cfg.TrimQueue
	if q <= 0 {
		q = DefaultTrimQueue
	}
	s.db, s.inbox = db, ib
	s.trim = startTrimWorker(ib, q, s.warn)
	return s, nil
}

func (s *Server) warn(msg string, args ...any) {
	if s.log != nil {
		s.log.Warn(msg, args...)
	}
}

// Close stops the trim worker and closes the store.
func (s *Server) Close() error {
	if s.db == nil {
		return nil
	}
	s.trim.stop()
	return s.close()
}

// statusInterceptor gives the errors of a replica group their svrkit
// status, in one place: a follower's ErrNotLeader becomes a redirect to
// the leader (which svrkit's client follows), ErrUnavailable Unavailable.
// Every other error of the storage layer gets its code there too.
func statusInterceptor(ctx context.Context, req proto.Message, m *svrkit.MethodDesc, next svrkit.UnaryHandler) (proto.Message, error) {
	resp, err := next(ctx, req)
	return resp, toStatus(err)
}

// toStatus is the one mapping from the storage layer's plain Go errors
// (packages kv, inbox, seq, replica) to svrkit codes. Errors this package
// made itself are *svrkit.Error already and pass as they are; anything
// unknown is Internal.
func toStatus(err error) error {
	var nle *replica.NotLeaderError
	var se *svrkit.Error
	code := svrkit.Internal
	switch {
	case err == nil:
		return nil
	case errors.As(err, &nle):
		return svrkit.Redirect(nle.LeaderRPC, nle.Error())
	case errors.As(err, &se) && se == err:
		return err
	case errors.Is(err, context.Canceled):
		code = svrkit.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = svrkit.DeadlineExceeded
	case errors.Is(err, replica.ErrUnavailable), errors.Is(err, kv.ErrClosed):
		code = svrkit.Unavailable
	case errors.Is(err, replica.ErrNoSuchReplica):
		code = svrkit.NotFound
	case errors.As(err, new(*replica.MembershipError)):
		code = svrkit.InvalidArgument
	case errors.Is(err, replica.ErrCatchingUp):
		code = svrkit.DeadlineExceeded
	case errors.Is(err, kv.ErrNotFound):
		code = svrkit.NotFound
	case errors.Is(err, kv.ErrConflict):
		code = svrkit.Aborted // re-read and retry the read-modify-write
	case errors.Is(err, kv.ErrInvalid), errors.Is(err, inbox.ErrInvalid), errors.Is(err, inbox.ErrMalformedSyncKey):
		code = svrkit.InvalidArgument
	case errors.Is(err, inbox.ErrFutureSyncKey):
		code = svrkit.OutOfRange
	case errors.Is(err, kv.ErrCorrupt), errors.Is(err, inbox.ErrCorrupt):
		code = svrkit.DataLoss
	case errors.Is(err, seq.ErrExhausted):
		code = svrkit.ResourceExhausted
	}
	return svrkit.Errorf(code, "%w", err)
}

// TrimStats reports the trim worker's counters: users trimmed, entries
// deleted, users dropped because the queue was full.
func (s *Server) TrimStats() (users, entries, dropped uint64) {
	return s.trim.users.Load(), s.trim.entries.Load(), s.trim.dropped.Load()
}

func scoped(user uint64, key []byte, what string) ([]byte, error) {
	if len(key) == 0 || len(key) > MaxKeyLen {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "%s of %d bytes outside [1, %d]", what, len(key), MaxKeyLen)
	}
	b := make([]byte, 0, len(keyPrefix)+8+len(key))
	b = append(b, keyPrefix...)
	b = binary.BigEndian.AppendUint64(b, user)
	return append(b, key...), nil
}

func checkValue(v []byte) error {
	if len(v) > MaxValueLen {
		return svrkit.Errorf(svrkit.InvalidArgument, "value of %d bytes exceeds the limit of %d", len(v), MaxValueLen)
	}
	return nil
}

func expect(version uint64, any bool) uint64 {
	if any {
		return kv.AnyVersion
	}
	return version
}

// apply1 commits a batch of the one operation add adds and returns its
// result: the single-key methods are batches, as kv's own are.
func (s *Server) apply1(ctx context.Context, add func(*kv.Batch)) (uint64, error) {
	var b kv.Batch
	add(&b)
	vs, err := s.db.Apply(ctx, &b)
	if err != nil {
		return 0, err
	}
	return vs[0], nil
}

// Get implements im.StorageServer.
func (s *Server) Get(ctx context.Context, req *im.KVGetRequest) (*im.KVRecord, error) {
	k, err := scoped(req.GetUserId(), req.GetKey(), "key")
	if err != nil {
		return nil, err
	}
	v, ver, err := s.db.Get(ctx, k)
	if errors.Is(err, kv.ErrNotFound) {
		// kv's message names the stored key; the caller knows its own.
		return nil, svrkit.Errorf(svrkit.NotFound, "key of %d bytes not found for user %d", len(req.GetKey()), req.GetUserId())
	}
	if err != nil {
		return nil, err
	}
	return &im.KVRecord{Value: v, Version: ver}, nil
}

// Put implements im.StorageServer.
func (s *Server) Put(ctx context.Context, req *im.KVPutRequest) (*im.KVPutReply, error) {
	k, err := scoped(req.GetUserId(), req.GetKey(), "key")
	if err != nil {
		return nil, err
	}
	if err := checkValue(req.GetValue()); err != nil {
		return nil, err
	}
	ver, err := s.apply1(ctx, func(b *kv.Batch) { b.Put(k, req.GetValue(), expect(req.GetExpectVersion(), req.GetAnyVersion())) })
	if err != nil {
		return nil, err
	}
	return &im.KVPutReply{Version: ver}, nil
}

// Delete implements im.StorageServer.
func (s *Server) Delete(ctx context.Context, req *im.KVDeleteRequest) (*im.KVDeleteReply, error) {
	k, err := scoped(req.GetUserId(), req.GetKey(), "key")
	if err != nil {
		return nil, err
	}
	if _, err := s.apply1(ctx, func(b *kv.Batch) { b.Delete(k, expect(req.GetExpectVersion(), req.GetAnyVersion())) }); err != nil {
		return nil, err
	}
	return &im.KVDeleteReply{}, nil
}

// Append implements im.StorageServer.
func (s *Server) Append(ctx context.Context, req *im.TableAppendRequest) (*im.TablePutReply, error) {
	row, err := scoped(req.GetUserId(), req.GetRow(), "row")
	if err != nil {
		return nil, err
	}
	if err := checkValue(req.GetValue()); err != nil {
		return nil, err
	}
	ver, err := s.apply1(ctx, func(b *kv.Batch) { b.Append(row, req.GetValue()) })
	if err != nil {
		return nil, err
	}
	return &im.TablePutReply{Version: ver}, nil
}

// PutEntry implements im.StorageServer.
func (s *Server) PutEntry(ctx context.Context, req *im.TablePutEntryRequest) (*im.TablePutReply, error) {
	row, err := scoped(req.GetUserId(), req.GetRow(), "row")
	if err != nil {
		return nil, err
	}
	if err := checkValue(req.GetValue()); err != nil {
		return nil, err
	}
	if _, err := s.apply1(ctx, func(b *kv.Batch) { b.PutEntry(row, req.GetVersion(), req.GetValue()) }); err != nil {
		return nil, err
	}
	return &im.TablePutReply{Version: req.GetVersion()}, nil
}

// Scan implements im.StorageServer.
func (s *Server) Scan(ctx context.Context, req *im.TableScanRequest) (*im.TableScanReply, error) {
	row, err := scoped(req.GetUserId(), req.GetRow(), "row")
	if err != nil {
		return nil, err
	}
	if req.GetLimit() > MaxScanLimit {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "scan limit %d exceeds %d", req.GetLimit(), MaxScanLimit)
	}
	page, err := s.db.Scan(ctx, row, req.GetAfterVersion(), int(req.GetLimit()))
	if err != nil {
		return nil, err
	}
	out := &im.TableScanReply{
		Entries:     make([]*im.TableEntry, len(page.Entries)),
		More:        page.More,
		MaxVersion:  page.Meta.MaxVersion,
		TrimmedUpTo: page.Meta.TrimmedUpTo,
	}
	for i, e := range page.Entries {
		out.Entries[i] = &im.TableEntry{Version: e.Version, Value: e.Value}
	}
	return out, nil
}

// Batch implements im.StorageServer.
func (s *Server) Batch(ctx context.Context, req *im.BatchRequest) (*im.BatchReply, error) {
	ops := req.GetOps()
	if len(ops) == 0 || len(ops) > MaxBatchOps {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "batch of %d operations outside [1, %d]", len(ops), MaxBatchOps)
	}
	var b kv.Batch
	for i, op := range ops {
		k, err := scoped(req.GetUserId(), op.GetKey(), "key")
		if err != nil {
			return nil, svrkit.Errorf(svrkit.InvalidArgument, "op %d: %s", i, svrkit.AsError(err).Message())
		}
		if err := checkValue(op.GetValue()); err != nil {
			return nil, svrkit.Errorf(svrkit.InvalidArgument, "op %d: %s", i, svrkit.AsError(err).Message())
		}
		switch op.GetKind() {
		case im.BatchOp_KIND_PUT:
			b.Put(k, op.GetValue(), expect(op.GetExpectVersion(), op.GetAnyVersion()))
		case im.BatchOp_KIND_DELETE:
			b.Delete(k, expect(op.GetExpectVersion(), op.GetAnyVersion()))
		case im.BatchOp_KIND_CHECK:
			b.Check(k, expect(op.GetExpectVersion(), op.GetAnyVersion()))
		case im.BatchOp_KIND_APPEND:
			b.Append(k, op.GetValue())
		case im.BatchOp_KIND_PUT_ENTRY:
			b.PutEntry(k, op.GetVersion(), op.GetValue())
		default:
			return nil, svrkit.Errorf(svrkit.InvalidArgument, "op %d: unknown kind %d", i, op.GetKind())
		}
	}
	res, err := s.db.Apply(ctx, &b)
	if err != nil {
		return nil, err
	}
	return &im.BatchReply{Results: res}, nil
}

// PutMany implements im.StorageServer: the puts as one kv batch, so the
// users' records routed here cost one fsync, and a failed condition
// writes nothing.
func (s *Server) PutMany(ctx context.Context, req *im.KVPutManyRequest) (*im.KVPutManyReply, error) {
	puts := req.GetPuts()
	if n := len(puts); n == 0 || n > MaxPutManyUsers {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "put of %d users outside [1, %d]", n, MaxPutManyUsers)
	}
	var b kv.Batch
	seen := make(map[uint64]bool, len(puts))
	routed, bytes := false, 0
	for i, p := range puts {
		u := p.GetUserId()
		if seen[u] {
			return nil, svrkit.Errorf(svrkit.InvalidArgument, "put %d: user %d named twice", i, u)
		}
		seen[u] = true
		routed = routed || u == req.GetUserId()
		k, err := scoped(u, p.GetKey(), "key")
		if err != nil {
			return nil, svrkit.Errorf(svrkit.InvalidArgument, "put %d: %s", i, svrkit.AsError(err).Message())
		}
		if err := checkValue(p.GetValue()); err != nil {
			return nil, svrkit.Errorf(svrkit.InvalidArgument, "put %d: %s", i, svrkit.AsError(err).Message())
		}
		bytes += len(p.GetKey()) + len(p.GetValue())
		b.Put(k, p.GetValue(), expect(p.GetExpectVersion(), p.GetAnyVersion()))
	}
	if bytes > MaxPutManyBytes {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "put of %d bytes of keys and values to %d users, over the limit of %d", bytes, len(puts), MaxPutManyBytes)
	}
	if !routed {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "routing user %d is not one of the %d users", req.GetUserId(), len(puts))
	}
	vs, err := s.db.Apply(ctx, &b)
	var conflict *kv.ConflictError
	if errors.As(err, &conflict) {
		// kv's message names the stored key; the caller knows its user.
		p := puts[conflict.Op]
		return nil, svrkit.Errorf(svrkit.Aborted, "put %d: user %d's key of %d bytes has version %d, expected %d",
			conflict.Op, p.GetUserId(), len(p.GetKey()), conflict.Actual, conflict.Expected)
	}
	if err != nil {
		return nil, err
	}
	return &im.KVPutManyReply{Versions: vs}, nil
}

func inboxType(t im.InboxType) (inbox.DataType, error) {
	switch t {
	case im.InboxType_INBOX_TYPE_ACCOUNT:
		return inbox.Account, nil
	case im.InboxType_INBOX_TYPE_CONTACTS:
		return inbox.Contacts, nil
	case im.InboxType_INBOX_TYPE_MESSAGES:
		return inbox.Messages, nil
	case im.InboxType_INBOX_TYPE_GROUPS:
		return inbox.Groups, nil
	}
	return 0, svrkit.Errorf(svrkit.InvalidArgument, "unknown inbox type %d", t)
}

func writeReply(r inbox.Receipt) *im.InboxWriteReply {
	out := &im.InboxWriteReply{Version: r.Version, Duplicate: r.Duplicate}
	if !r.At.IsZero() {
		out.AtUnixMs = r.At.UnixMilli()
	}
	return out
}

// Deliver implements im.StorageServer.
func (s *Server) Deliver(ctx context.Context, req *im.InboxDeliverRequest) (*im.InboxWriteReply, error) {
	if req.GetDedupId() == "" {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "deliver needs a dedup id")
	}
	r, err := s.inbox.Put(ctx, req.GetUserId(), inbox.Messages, req.GetPayload(), req.GetDedupId())
	if err != nil {
		return nil, err
	}
	return writeReply(r), nil
}

// Publish implements im.StorageServer.
func (s *Server) Publish(ctx context.Context, req *im.InboxPublishRequest) (*im.InboxWriteReply, error) {
	t, err := inboxType(req.GetType())
	if err != nil {
		return nil, err
	}
	r, err := s.inbox.Put(ctx, req.GetUserId(), t, req.GetPayload(), req.GetDedupId())
	if err != nil {
		return nil, err
	}
	return writeReply(r), nil
}

// DeliverMany implements im.StorageServer: one inbox.PutMany, so the
// members of a group entry routed here cost one fsync. The limits are
// inbox's (MaxManyUsers, MaxManyBytes), checked there with the users' and
// bytes' counts in the message.
func (s *Server) DeliverMany(ctx context.Context, req *im.InboxDeliverManyRequest) (*im.InboxDeliverManyReply, error) {
	t, err := inboxType(req.GetType())
	if err != nil {
		return nil, err
	}
	if len(req.GetUserIds()) > 0 && !slices.Contains(req.GetUserIds(), req.GetUserId()) {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "routing user %d is not one of the %d users", req.GetUserId(), len(req.GetUserIds()))
	}
	rs, err := s.inbox.PutMany(ctx, req.GetUserIds(), t, req.GetPayload(), req.GetDedupId())
	if err != nil {
		return nil, err
	}
	out := &im.InboxDeliverManyReply{Results: make([]*im.InboxWriteReply, len(rs))}
	for i, r := range rs {
		out.Results[i] = writeReply(r)
	}
	return out, nil
}

// DeliverPair implements im.StorageServer: one inbox.PutPair, so a
// message's two copies cost one fsync (one Raft entry on a replica
// group: PutPair's batch is one kv.Store.Apply, replicated as every
// write is). The caller routed the sender here too.
func (s *Server) DeliverPair(ctx context.Context, req *im.InboxDeliverPairRequest) (*im.InboxDeliverPairReply, error) {
	if req.GetDedupId() == "" || req.GetSenderDedupId() == "" {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "a message's two copies need a dedup id each")
	}
	theirs, own, err := s.inbox.PutPair(ctx, req.GetUserId(), req.GetSenderUserId(), inbox.Messages, req.GetPayload(), req.GetDedupId(), req.GetSenderDedupId())
	if err != nil {
		return nil, err
	}
	out := &im.InboxDeliverPairReply{Receiver: writeReply(theirs)}
	if own != nil {
		out.Sender = writeReply(*own)
	}
	return out, nil
}

// Sync implements im.StorageServer.
func (s *Server) Sync(ctx context.Context, req *im.InboxSyncRequest) (*im.InboxSyncReply, error) {
	res, err := s.inbox.Sync(ctx, req.GetUserId(), req.GetDeviceId(), req.GetSyncKey(), int(req.GetLimit()))
	if err != nil {
		return nil, err
	}
	if res.AckMoved {
		s.trim.schedule(req.GetUserId())
	}
	out := &im.InboxSyncReply{
		Entries: make([]*im.InboxEntry, len(res.Entries)),
		SyncKey: res.Key,
		More:    res.More,
		Gap:     res.Gap,
	}
	// One allocation for the page's entries, not one per entry.
	slab := make([]im.InboxEntry, len(res.Entries))
	for i, e := range res.Entries {
		pe := &slab[i]
		pe.Type = im.InboxType(e.Type)
		pe.Version = e.Version
		pe.AtUnixMs = e.DeliveredAt.UnixMilli()
		pe.Payload = e.Payload
		out.Entries[i] = pe
	}
	return out, nil
}

// CurrentKey implements im.StorageServer.
func (s *Server) CurrentKey(ctx context.Context, req *im.InboxCurrentKeyRequest) (*im.InboxCurrentKeyReply, error) {
	k, err := s.inbox.CurrentKey(ctx, req.GetUserId(), req.GetDeviceId())
	if err != nil {
		return nil, err
	}
	return &im.InboxCurrentKeyReply{SyncKey: k}, nil
}

// RemoveDevice implements im.StorageServer.
func (s *Server) RemoveDevice(ctx context.Context, req *im.InboxRemoveDeviceRequest) (*im.InboxRemoveDeviceReply, error) {
	if err := s.inbox.RemoveDevice(ctx, req.GetUserId(), req.GetDeviceId()); err != nil {
		return nil, err
	}
	s.trim.schedule(req.GetUserId())
	return &im.InboxRemoveDeviceReply{}, nil
}

// trimWorker runs inbox.Trim for queued users, one at a time.
type trimWorker struct {
	ib   *inbox.Inbox
	q    chan uint64
	warn func(string, ...any)

	mu      sync.Mutex
	pending map[uint64]struct{}

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	users, entries, dropped atomic.Uint64
}

func startTrimWorker(ib *inbox.Inbox, queue int, warn func(string, ...any)) *trimWorker {
	ctx, cancel := context.WithCancel(context.Background())
	w := &trimWorker{
		ib: ib, q: make(chan uint64, queue), warn: warn,
		pending: map[uint64]struct{}{},
		ctx:     ctx, cancel: cancel, done: make(chan struct{}),
	}
	go w.run()
	return w
}

// schedule queues user for trimming unless it is queued already or the
// queue is full (then it is dropped and counted).
func (w *trimWorker) schedule(user uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.pending[user]; ok || w.ctx.Err() != nil {
		return
	}
	select {
	case w.q <- user:
		w.pending[user] = struct{}{}
	default:
		monitor.Add(im.Monitor_TRIM_DROPPED_ID, 1)
		if n := w.dropped.Add(1); n&(n-1) == 0 { // log at 1, 2, 4, 8...
			w.warn("trim queue full: users dropped (trimmed on their next sync)", "dropped_total", n)
		}
	}
}

func (w *trimWorker) run() {
	defer close(w.done)
	for {
		select {
		case <-w.ctx.Done():
			return
		case user := <-w.q:
			w.mu.Lock()
			delete(w.pending, user)
			w.mu.Unlock()
			n, err := w.ib.Trim(w.ctx, user)
			if err != nil && w.ctx.Err() == nil {
				w.warn("trim failed", "user", user, "err", err)
			}
			w.users.Add(1)
			w.entries.Add(uint64(n))
			monitor.Add(im.Monitor_TRIMS_ID, 1)
			monitor.Add(im.Monitor_TRIMMED_ENTRIES_ID, int64(n))
		}
	}
}

// stop ends the worker, interrupting a Trim in progress (Trim works in
// atomic chunks, so an interrupted one leaves a consistent store).
func (w *trimWorker) stop() {
	w.cancel()
	<-w.done
}
