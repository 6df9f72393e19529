// Package inbox is the store-and-forward core of the IM backend: per user,
// an inbox for each synced data type (account, contacts, groups, messages), the
// SyncKey protocol devices pull it with, per-device ACKs, and trimming of
// what every device has received. It is a library over package kv (the
// storage engine) and package seq (version allocation); the message, sync
// and fan-out services wrap it.
//
// # Data flow
//
// A sender's message is stored once by the message service; its index (an
// opaque payload to this package) is written into each receiver's inbox with
// Deliver. Deliver takes a version from seq for (user, Messages) and writes,
// in one atomic kv batch, the inbox entry at that version and the dedup
// record clientMsgID → version. The service then pushes a "you have new
// data" notification if the user is online; the device calls Sync with its
// SyncKey and gets everything newer, in version order, with a new SyncKey
// and a more flag; it stores entries and key together, and sends the new key
// on its next Sync, which is its ACK. Account, contact and group changes are
// published into their own inboxes the same way (Publish), so one Sync
// returns all four, in type order (account, contacts, groups, messages: a
// device hears of a group before its messages).
//
// # Invariants
//
// Nothing lost: Deliver returns only after the entry is fsync'd (kv's
// synced batch). Trim deletes an entry only when every device of the user
// has acknowledged it (its SyncKey sent back covers the entry) and it is
// older than the retention window. A device that shows up again after it
// was dropped (unseen for DeviceTTL, removed, or evicted as the
// MaxDevices+1st device) or restores an old key may find entries newer than
// its key already trimmed: Sync then sets Gap, so it reloads its state from
// the data services instead of silently missing data.
//
// Nothing delivered twice: a retried Deliver with the same clientMsgID
// finds the dedup record and returns the original version without writing
// (the lookup and the write happen under the user's lock, and the dedup
// record is created with a kv "must not exist" condition in the same batch
// as the entry, so even two writers racing can't both succeed). Sync
// returns only entries above the device's key, and each entry has one
// version, so a device that stores entries with their key never receives an
// entry twice. If a response is lost the device syncs again with the old key
// and gets the same entries again with the same versions — at least once on
// the wire, exactly once in the device's store. A dedup record is deleted
// with its trimmed entry, so a retry arriving after the retention window
// would deliver again: clients give up retrying long before that.
//
// Order kept per user: each inbox is a kv row whose versions only grow, and
// kv refuses an entry at or below the row's max. The user's writers
// (Deliver, Publish, PutMany, which writes one entry to many users in
// one batch for a group's fan-out, and PutPair, which writes a one-to-one
// message's receiver's and sender's copies in one batch) allocate the
// version and commit the entry under one per-user lock, so entries become
// visible in version order; a reader that has seen version v will never
// later find an entry below v appear. Two
// messages from one sender to one user, the second sent after the first was
// acknowledged, get increasing versions and arrive in that order. Sync
// readers take the same lock shared, which also keeps them from reading an
// entry that pebble has made visible but not yet fsync'd — a key must never
// name a version a crash could take back.
//
// Devices: each device syncs on its own key. The user's ACK record holds,
// per device, the highest key it has sent and when it was last seen. The
// first sync of a device registers it durably (fsync); later ACK advances
// are written without fsync — losing one in a crash only makes trimming
// wait longer.
//
// # SyncKey
//
// A SyncKey is a set of (data type → version) pairs, encoded by
// SyncKeyCodec as a small versioned binary string, encrypted and
// authenticated with a server secret and bound to the user id and the
// device (see the format in synckey.go). Sync rejects a damaged, edited,
// another user's or another device's key (ErrMalformedSyncKey) and a
// key naming versions above what the inbox holds (ErrFutureSyncKey — the
// store was restored from an older copy); versions are sparse, so nothing
// else about a key can be checked or needs to be.
//
// # Storage layout (kv keys and rows)
//
//	row "ib/" user type        inbox: version → entry (see storedEntry)
//	key "dd/" user type id     dedup: id → version (8 bytes big-endian)
//	key "ak/" user             the user's devices and their ACKs
//	key "pl/" sha256           a payload PutMany stored once for many
//	                           entries, with their count (shared.go)
//	key "seq/" type segment    seq's bounds (package seq)
//
// user is 8 bytes big-endian, type one byte.
//
// # Ownership
//
// One Inbox (one process) must own a user: the per-user lock is in memory.
// The services route storage calls by user id, as svrkit's key-hash routing
// does. Even under a routing mistake, kv's conditions keep the invariants of
// the store (no duplicate dedup record, no entry below a row's max); the
// losing writer gets an error and its client retries.
package inbox

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/svrkit/svrkit/examples/im/internal/kv"
	"github.com/svrkit/svrkit/examples/im/internal/seq"
)

// Limits; larger input is ErrInvalid.
const (
	MaxPayloadLen  = 64 << 10 // an entry's payload: an index, not the content
	MaxDedupIDLen  = 128
	MaxDeviceIDLen = 128
	MaxSyncLimit   = 1000 // entries one Sync returns
	// MaxDevices is how many devices a user's ACK record keeps; a new device
	// beyond it evicts the one seen least recently.
	MaxDevices = 16
)

// Defaults for Options.
const (
	DefaultRetention = 7 * 24 * time.Hour
	DefaultDeviceTTL = 30 * 24 * time.Hour
)

// Options configure an Inbox.
type Options struct {
	// Retention is how long an entry is kept at least, even when every
	// device has acknowledged it (a grace period for devices not yet
	// registered and for late retries of a Deliver).
	Retention time.Duration
	// DeviceTTL drops a device that has not synced for this long, so a
	// lost phone does not keep its user's inbox from being trimmed forever.
	DeviceTTL time.Duration
	// SyncKeySecret keys the SyncKey MAC. Set it (the same on every
	// instance) so clients cannot forge keys.
	SyncKeySecret []byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Inbox is the store-and-forward core. It is safe for concurrent use.
type Inbox struct {
	db        kv.Store
	seq       *seq.Allocator
	codec     *SyncKeyCodec
	retention time.Duration
	deviceTTL time.Duration
	now       func() time.Time
	// users serialises each user's writers and holds them off readers
	// (see the package doc); striped, as a lock per user would grow without
	// bound. PutMany holds the stripes of up to MaxManyUsers users at once,
	// so there are enough that a batch leaves most of them free for the
	// other users' writers and readers (about 6% taken by 250 users).
	users [userStripes]sync.RWMutex
}

// userStripes is the number of user locks, a power of two (userLock takes
// the top bits of a multiplicative hash).
const userStripes = 4096

// New returns an Inbox over db, taking versions from alloc.
func New(db kv.Store, alloc *seq.Allocator, opts Options) *Inbox {
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.DeviceTTL <= 0 {
		opts.DeviceTTL = DefaultDeviceTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Inbox{
		db:        db,
		seq:       alloc,
		codec:     NewSyncKeyCodec(opts.SyncKeySecret),
		retention: opts.Retention,
		deviceTTL: opts.DeviceTTL,
		now:       opts.Now,
	}
}

// Codec returns the codec Sync uses for keys, for tools and tests.
func (ib *Inbox) Codec() *SyncKeyCodec { return ib.codec }

func (ib *Inbox) userLock(user uint64) *sync.RWMutex {
	return &ib.users[userStripe(user)]
}

func userStripe(user uint64) int {
	return int((user * 0x9e3779b97f4a7c15) >> 52) // 64 - log2(userStripes)
}

// Deliver appends a message index to user's message inbox and returns its
// version. It is idempotent on clientMsgID: a retry returns the original
// version with duplicate set and writes nothing. clientMsgID must be unique
// per receiving user — the message service makes it so by prefixing the
// sender's id to the client's own message id.
func (ib *Inbox) Deliver(ctx context.Context, user uint64, msg []byte, clientMsgID string) (version uint64, duplicate bool, err error) {
	if clientMsgID == "" {
		return 0, false, invalidf("empty client message id")
	}
	return ib.Publish(ctx, user, Messages, msg, clientMsgID)
}

// Publish appends payload to user's inbox of type t and returns its version.
// With a dedupID it is idempotent like Deliver; without one every call
// appends.
func (ib *Inbox) Publish(ctx context.Context, user uint64, t DataType, payload []byte, dedupID string) (version uint64, duplicate bool, err error) {
	r, err := ib.Put(ctx, user, t, payload, dedupID)
	return r.Version, r.Duplicate, err
}

// Receipt is what Put reports about one delivery.
type Receipt struct {
	Version uint64
	// At is when the entry was stored (the first delivery's time for a
	// duplicate; zero if that entry has been trimmed since).
	At time.Time
	// Duplicate: the dedup id was stored before, nothing was written.
	Duplicate bool
}

// Put is Publish that also reports when the entry was stored, which a
// service answering a retried delivery needs (the first delivery's time).
func (ib *Inbox) Put(ctx context.Context, user uint64, t DataType, payload []byte, dedupID string) (Receipt, error) {
	if err := checkPut(t, payload, dedupID); err != nil {
		return Receipt{}, err
	}
	if err := ctx.Err(); err != nil {
		return Receipt{}, err
	}
	l := ib.userLock(user)
	l.Lock()
	defer l.Unlock()
	return ib.putLocked(ctx, user, t, payload, dedupID)
}

func checkPut(t DataType, payload []byte, dedupID string) error {
	switch {
	case !t.served():
		return invalidf("unknown data type %d", t)
	case len(payload) > MaxPayloadLen:
		return invalidf("payload of %d bytes exceeds %d", len(payload), MaxPayloadLen)
	case len(dedupID) > MaxDedupIDLen:
		return invalidf("dedup id of %d bytes exceeds %d", len(dedupID), MaxDedupIDLen)
	}
	return nil
}

// putLocked is Put with user's lock held by the caller.
func (ib *Inbox) putLocked(ctx context.Context, user uint64, t DataType, payload []byte, dedupID string) (Receipt, error) {
	var dk []byte
	if dedupID != "" {
		dk = dedupKey(user, t, dedupID)
		v, ok, err := ib.lookupDedup(ctx, dk)
		if err != nil {
			return Receipt{}, err
		}
		if ok {
			return ib.duplicate(ctx, user, t, v)
		}
	}
	v, err := ib.seq.Next(ctx, user, uint8(t))
	if err != nil {
		return Receipt{}, err
	}
	var b kv.Batch
	if dk != nil {
		b.Put(dk, binary.BigEndian.AppendUint64(nil, v), 0)
	}
	at := uint64(max(ib.now().UnixMilli(), 0))
	b.PutEntry(inboxRow(user, t), v, encodeEntry(nil, storedEntry{atMillis: at, dedupID: []byte(dedupID), payload: payload}))
	if _, err := ib.db.Apply(ctx, &b); err != nil {
		var ce *kv.ConflictError
		if dk != nil && errors.As(err, &ce) && !ce.Row {
			// Another writer stored the same id first (a second owner of
			// this user): theirs is the delivery.
			if v, ok, lerr := ib.lookupDedup(ctx, dk); lerr == nil && ok {
				return ib.duplicate(ctx, user, t, v)
			}
		}
		return Receipt{}, err
	}
	return Receipt{Version: v, At: time.UnixMilli(int64(at))}, nil
}

// duplicate reports an earlier delivery at version v, with its time read
// from its entry.
func (ib *Inbox) duplicate(ctx context.Context, user uint64, t DataType, v uint64) (Receipt, error) {
	r := Receipt{Version: v, Duplicate: true}
	page, err := ib.db.Scan(ctx, inboxRow(user, t), v-1, 1)
	if err != nil {
		return Receipt{}, err
	}
	if len(page.Entries) == 1 && page.Entries[0].Version == v {
		se, why := decodeEntry(page.Entries[0].Value)
		if why != "" {
			return Receipt{}, corruptf("user %d %s entry %d: %s", user, t, v, why)
		}
		r.At = time.UnixMilli(int64(se.atMillis))
	}
	return r, nil
}

func (ib *Inbox) lookupDedup(ctx context.Context, key []byte) (uint64, bool, error) {
	val, _, err := ib.db.Get(ctx, key)
	if errors.Is(err, kv.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if len(val) != 8 {
		return 0, false, corruptf("dedup record of %d bytes", len(val))
	}
	return binary.BigEndian.Uint64(val), true, nil
}

// Entry is one synced item.
type Entry struct {
	Type        DataType
	Version     uint64
	DeliveredAt time.Time // millisecond precision
	Payload     []byte
}

// SyncResult is one Sync's answer.
type SyncResult struct {
	// Entries newer than the key: by type (Account, Contacts, Messages),
	// each type in version order.
	Entries []Entry
	// Key is the device's new SyncKey, covering Entries. The device stores
	// it with the entries and sends it on its next Sync.
	Key []byte
	// More is set when the limit cut the answer short: sync again at once.
	More bool
	// Gap is set when entries newer than the key had already been trimmed
	// (a new device, or one dropped or restored from an old backup): the
	// device should reload its state from the data services.
	Gap bool
	// AckMoved is set when the key the device sent advanced its recorded
	// ACK (or registered the device): a moment to schedule Trim.
	AckMoved bool
}

// Sync returns up to limit entries of user newer than key, the new key, and
// records key as device's ACK. An empty key is a new device's. A key from
// another user, damaged or edited is ErrMalformedSyncKey; one with versions
// the inbox never reached is ErrFutureSyncKey.
func (ib *Inbox) Sync(ctx context.Context, user uint64, device string, key []byte, limit int) (SyncResult, error) {
	var res SyncResult
	if err := checkDevice(device); err != nil {
		return res, err
	}
	if limit < 1 || limit > MaxSyncLimit {
		return res, invalidf("sync limit %d outside [1, %d]", limit, MaxSyncLimit)
	}
	k, err := ib.codec.Decode(user, device, key)
	if err != nil {
		return res, err
	}
	for t := DataType(1); t <= MaxDataType; t++ {
		if k.v[t] != 0 && !t.served() {
			return res, malformedKey("unknown data type %d", t)
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}

	newKey := k
	res.Entries = make([]Entry, 0, min(limit, 128))
	payloads := payloadReader{ib: ib}
	l := ib.userLock(user)
	l.RLock()
	for _, t := range servedTypes {
		after := k.v[t]
		page, err := ib.db.Scan(ctx, inboxRow(user, t), after, limit-len(res.Entries))
		if err != nil {
			l.RUnlock()
			return SyncResult{}, err
		}
		if after > page.Meta.MaxVersion {
			l.RUnlock()
			return SyncResult{}, newError(ErrFutureSyncKey,
				"%s version %d, but the inbox has only reached %d", t, after, page.Meta.MaxVersion)
		}
		if after < page.Meta.TrimmedUpTo {
			// Trim stops at an entry's version, so the entry at
			// TrimmedUpTo existed, was newer than the key, and is gone.
			res.Gap = true
			newKey.v[t] = page.Meta.TrimmedUpTo
		}
		for _, e := range page.Entries {
			se, why := decodeEntry(e.Value)
			if why != "" {
				l.RUnlock()
				return SyncResult{}, corruptf("user %d %s entry %d: %s", user, t, e.Version, why)
			}
			payload, ok, err := payloads.payload(ctx, se)
			if err != nil {
				l.RUnlock()
				return SyncResult{}, err
			}
			newKey.v[t] = e.Version
			if !ok {
				res.Gap = true // trimmed while we read (shared.go)
				continue
			}
			res.Entries = append(res.Entries, Entry{
				Type:        t,
				Version:     e.Version,
				DeliveredAt: time.UnixMilli(int64(se.atMillis)),
				Payload:     payload,
			})
		}
		res.More = res.More || page.More
	}
	l.RUnlock()

	moved, err := ib.recordAck(ctx, user, device, k)
	if err != nil {
		return SyncResult{}, err
	}
	res.AckMoved = moved
	res.Key = ib.codec.Encode(user, device, newKey)
	return res, nil
}

// CurrentKey returns device's key covering everything in user's inboxes
// now: for a device that has just loaded its full state from the data
// services and wants only what comes after.
func (ib *Inbox) CurrentKey(ctx context.Context, user uint64, device string) ([]byte, error) {
	if err := checkDevice(device); err != nil {
		return nil, err
	}
	var k SyncKey
	l := ib.userLock(user)
	l.RLock()
	defer l.RUnlock()
	for _, t := range servedTypes {
		m, err := ib.db.RowMeta(ctx, inboxRow(user, t))
		if err != nil {
			return nil, err
		}
		k.v[t] = m.MaxVersion
	}
	return ib.codec.Encode(user, device, k), nil
}

func checkDevice(device string) error {
	if device == "" || len(device) > MaxDeviceIDLen {
		return invalidf("device id of %d bytes outside [1, %d]", len(device), MaxDeviceIDLen)
	}
	return nil
}
