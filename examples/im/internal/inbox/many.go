package inbox

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"github.com/svrkit/svrkit/examples/im/internal/kv"
)

// Limits of PutMany; larger input is ErrInvalid.
const (
	// MaxManyUsers bounds the users of one PutMany: every member of the
	// largest group (500) fits in one call.
	MaxManyUsers = 500
	// MaxManyBytes bounds users × payload bytes of one PutMany: the entry
	// bytes its one batch writes to the WAL (and, replicated, to one Raft
	// log entry). Group entries are indexes of a few hundred bytes, so a
	// 500-member entry is far below it; a 64 KiB payload fits 64 users.
	MaxManyBytes = 4 << 20
)

// PutMany is Put of one payload for each of users (distinct), under one
// dedup id (required: it is unique per user, so the same id serves every
// member), with one kv batch and so one fsync for all of them instead of
// one each: the write path of a group entry's fan-out. The receipts are
// in users' order. A payload of sharedPayloadMin bytes or more is stored
// once for all of them, and each entry refers to it (see shared.go).
//
// Each user gets exactly what its own Put would give it. PutMany takes
// the locks of every user (in ascending stripe order; Put, Sync and
// CurrentKey take one stripe each, so no two lockers can wait on each
// other) and holds them across the dedup lookups, the version allocations
// and the commit, as Put does for one: a user whose dedup id is stored
// already gets its duplicate receipt (the first delivery's version and
// time) and nothing written; the others get a version from seq above
// every version they had, their entry and their dedup record ("must not
// exist") in the batch. So a user's versions stay unique and increasing
// whether its writes come through Put, PutMany or both at once, and a
// reader holding the user's lock never sees an entry that is not yet
// fsync'd.
//
// The batch commits whole or not at all. If it fails on a dedup record
// that exists after all (a second owner of one of the users stored the id
// first; see Ownership), the users are written one at a time as Put does,
// so one user's conflict costs no other its write; their versions from the
// failed batch are left unused (versions are sparse). Any other error is
// returned, and a retry of the same call gets the users written before it
// as duplicates.
func (ib *Inbox) PutMany(ctx context.Context, users []uint64, t DataType, payload []byte, dedupID string) ([]Receipt, error) {
	if err := checkPut(t, payload, dedupID); err != nil {
		return nil, err
	}
	if err := checkMany(users, len(payload), dedupID); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, s := range stripesOf(users) {
		l := &ib.users[s]
		l.Lock()
		defer l.Unlock()
	}

	out := make([]Receipt, len(users))
	fresh := make([]int, 0, len(users)) // users[i] the batch writes
	freshUsers := make([]uint64, 0, len(users))
	for i, u := range users {
		v, ok, err := ib.lookupDedup(ctx, dedupKey(u, t, dedupID))
		if err != nil {
			return nil, err
		}
		if ok {
			if out[i], err = ib.duplicate(ctx, u, t, v); err != nil {
				return nil, err
			}
			continue
		}
		fresh = append(fresh, i)
		freshUsers = append(freshUsers, u)
	}
	if len(fresh) == 0 {
		return out, nil
	}
	// One fsync for the version bounds the users need raised, not one per
	// user (package seq's NextMany).
	vs, err := ib.seq.NextMany(ctx, freshUsers, uint8(t))
	if err != nil {
		return nil, err
	}
	at := uint64(max(ib.now().UnixMilli(), 0))
	// Every member's entry is the same bytes: encode once, share. A large
	// payload is stored once, and the entries refer to it (shared.go).
	se := storedEntry{atMillis: at, dedupID: []byte(dedupID), payload: payload}
	var pkey []byte
	if len(payload) >= sharedPayloadMin && len(fresh) > 1 {
		h := sha256.Sum256(payload)
		se.payload, se.shared = nil, h[:]
		pkey = payloadKey(se.shared)
	}
	entry := encodeEntry(nil, se)
	for attempt := 1; ; attempt++ {
		var b kv.Batch
		if pkey != nil {
			refs, _, ver, err := ib.loadPayload(ctx, pkey)
			if err != nil {
				return nil, err
			}
			addRefs(&b, pkey, refs, ver, payload, int64(len(fresh)))
		}
		for j, i := range fresh {
			u, v := users[i], vs[j]
			b.Put(dedupKey(u, t, dedupID), binary.BigEndian.AppendUint64(nil, v), 0)
			b.PutEntry(inboxRow(u, t), v, entry)
			out[i] = Receipt{Version: v, At: time.UnixMilli(int64(at))}
		}
		_, err := ib.db.Apply(ctx, &b)
		if err == nil {
			break
		}
		if isPayloadConflict(err) {
			if attempt < sharedAttempts {
				continue // another writer moved the count: read it again
			}
			return nil, errPayloadBusy
		}
		var ce *kv.ConflictError
		if !errors.As(err, &ce) || ce.Row {
			return nil, err
		}
		for _, i := range fresh {
			if out[i], err = ib.putLocked(ctx, users[i], t, payload, dedupID); err != nil {
				return nil, err
			}
		}
		break
	}
	return out, nil
}

// checkMany reports why PutMany cannot take users with a payload of
// payloadLen bytes under dedupID.
func checkMany(users []uint64, payloadLen int, dedupID string) error {
	switch n := len(users); {
	case dedupID == "":
		return invalidf("a delivery to many users needs a dedup id")
	case n == 0 || n > MaxManyUsers:
		return invalidf("delivery to %d users outside [1, %d]", n, MaxManyUsers)
	case n*payloadLen > MaxManyBytes:
		return invalidf("delivery of %d bytes to %d users writes %d bytes, over the limit of %d",
			payloadLen, n, n*payloadLen, MaxManyBytes)
	}
	sorted := slices.Clone(users)
	slices.Sort(sorted)
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return invalidf("user %d named twice in one delivery", sorted[i])
		}
	}
	return nil
}

// stripesOf returns the distinct lock stripes of users, ascending: the
// order every multi-user locker must take them in.
func stripesOf(users []uint64) []int {
	out := make([]int, len(users))
	for i, u := range users {
		out[i] = userStripe(u)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
