package inbox

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/svrkit/svrkit/examples/im/internal/kv"
)

// PutPair is the two Puts of a one-to-one message in one kv batch, and so
// one fsync instead of two: the receiver's copy (to, dedupID) and the
// sender's own (from, fromDedupID), the same payload in both users' inbox
// of type t. Both dedup ids are required and to and from differ (a
// message to oneself is one Put).
//
// The receiver's copy decides the message's time, as the two Puts in
// their order would:
//
//   - receiver's copy new: both copies are written in one batch, with the
//     same stored time, so a reader that takes a copy's time from its
//     entry finds the same time in both; a sender's copy that is there
//     already (its receiver's copy trimmed since) is answered as a
//     duplicate and only the receiver's is written.
//   - receiver's copy there already: its receipt is a duplicate with its
//     first time; the sender's copy, if there too, is a duplicate; if not,
//     it is not written and own is nil. The payload says nothing of that
//     earlier time and a new entry's time would be now, so the caller
//     writes the sender's copy with Put and the time in its payload.
//
// So own is nil exactly when the sender's copy was not written, and then
// the caller writes it, with theirs.At in its payload.
//
// PutPair takes both users' locks (ascending stripe order, as PutMany)
// across the lookups, the version allocations and the commit, so each
// user gets what its own Put would give it, and a reader never sees one
// copy of a new pair without the other being durable too. If the batch
// fails on a dedup record that exists after all (a second owner of one
// of the users; see Ownership) the copies are written one at a time, the
// receiver's first, as the two Puts would.
func (ib *Inbox) PutPair(ctx context.Context, to, from uint64, t DataType, payload []byte, dedupID, fromDedupID string) (theirs Receipt, own *Receipt, err error) {
	if err := checkPut(t, payload, dedupID); err != nil {
		return Receipt{}, nil, err
	}
	if err := checkPut(t, payload, fromDedupID); err != nil {
		return Receipt{}, nil, err
	}
	switch {
	case dedupID == "" || fromDedupID == "":
		return Receipt{}, nil, invalidf("a message's two copies need a dedup id each")
	case to == from:
		return Receipt{}, nil, invalidf("a message from user %d to itself has one copy", to)
	}
	if err := ctx.Err(); err != nil {
		return Receipt{}, nil, err
	}
	for _, s := range stripesOf([]uint64{to, from}) {
		l := &ib.users[s]
		l.Lock()
		defer l.Unlock()
	}

	theirKey, ownKey := dedupKey(to, t, dedupID), dedupKey(from, t, fromDedupID)
	tv, theirsThere, err := ib.lookupDedup(ctx, theirKey)
	if err != nil {
		return Receipt{}, nil, err
	}
	ov, ownThere, err := ib.lookupDedup(ctx, ownKey)
	if err != nil {
		return Receipt{}, nil, err
	}
	if ownThere {
		r, err := ib.duplicate(ctx, from, t, ov)
		if err != nil {
			return Receipt{}, nil, err
		}
		own = &r
	}
	if theirsThere {
		theirs, err = ib.duplicate(ctx, to, t, tv)
		return theirs, own, err
	}
	if ownThere {
		theirs, err = ib.putLocked(ctx, to, t, payload, dedupID)
		return theirs, own, err
	}

	// Both new: one version allocation pass and one batch for the two.
	vs, err := ib.seq.NextMany(ctx, []uint64{to, from}, uint8(t))
	if err != nil {
		return Receipt{}, nil, err
	}
	at := uint64(max(ib.now().UnixMilli(), 0))
	var b kv.Batch
	b.Put(theirKey, binary.BigEndian.AppendUint64(nil, vs[0]), 0)
	b.PutEntry(inboxRow(to, t), vs[0], encodeEntry(nil, storedEntry{atMillis: at, dedupID: []byte(dedupID), payload: payload}))
	b.Put(ownKey, binary.BigEndian.AppendUint64(nil, vs[1]), 0)
	b.PutEntry(inboxRow(from, t), vs[1], encodeEntry(nil, storedEntry{atMillis: at, dedupID: []byte(fromDedupID), payload: payload}))
	if _, err := ib.db.Apply(ctx, &b); err != nil {
		var ce *kv.ConflictError
		if !errors.As(err, &ce) || ce.Row {
			return Receipt{}, nil, err
		}
		// Another owner stored one of the ids first: the receiver's copy as
		// its own Put would, then the sender's only if it is there (its
		// payload would need the receiver's time otherwise).
		if theirs, err = ib.putLocked(ctx, to, t, payload, dedupID); err != nil {
			return Receipt{}, nil, err
		}
		if ov, ok, err := ib.lookupDedup(ctx, ownKey); err != nil {
			return Receipt{}, nil, err
		} else if ok {
			r, err := ib.duplicate(ctx, from, t, ov)
			if err != nil {
				return Receipt{}, nil, err
			}
			own = &r
		}
		return theirs, own, nil
	}
	when := time.UnixMilli(int64(at))
	return Receipt{Version: vs[0], At: when}, &Receipt{Version: vs[1], At: when}, nil
}
