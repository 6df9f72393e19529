package inbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/svrkit/svrkit/examples/im/internal/kv"
)

// Shared payloads: a PutMany of a large payload stores it once, not once
// per user.
//
// Why: a group's CREATED or MEMBERS_ADDED change lists every member it
// names, so a creation's payload grows with the group and went into every
// member's inbox: the group's size squared through the WAL and the
// memtable in one burst. That burst forced memtable flushes and
// compactions whose aftermath (slow fsyncs, cold sstables) held up the
// group's next messages, the slowest of its fan-outs. Stored once, the
// creation writes its payload once plus a 33-byte reference per member.
//
// A shared payload is the kv key "pl/" + its SHA-256, with a count of the
// inbox entries that refer to it. The count and the entries change in one
// atomic batch: PutMany adds the users it writes, Trim subtracts the
// entries it deletes and deletes the record at zero. Both update the
// record with a version check (the record is not one user's, so the user
// locks do not cover it) and try again when a concurrent writer moved it.
// Content addressing makes two PutManys of one payload (a redelivered
// fan-out, a batch split over calls) share one record and never disagree
// on its bytes.
//
// A count may only ever be too high, never too low: a record copied whole
// (a shard split keeps every record on both sides, and each side then
// trims only its own entries) keeps its payload longer than needed, and
// no entry outlives the payload it refers to.
//
// Sync reads the payload of each distinct shared entry once per call. An
// entry whose payload is gone was trimmed between Sync's scan and the read
// (only a device not yet registered can see an entry that every device has
// acknowledged): Sync answers as if the trim had come first, with Gap.
//
// Small payloads (a message's index) stay inline: a reference would save
// little and cost every Sync a read per entry.

// sharedPayloadMin is the smallest payload PutMany stores shared.
const sharedPayloadMin = 1 << 10

// sharedAttempts bounds the retries of a batch whose payload record
// changed under it.
const sharedAttempts = 16

// payloadHashLen is the length of a shared payload's reference.
const payloadHashLen = sha256.Size

// payloadPrefix starts every shared payload's kv key.
const payloadPrefix = "pl/"

func payloadKey(hash []byte) []byte {
	return append(append(make([]byte, 0, len(payloadPrefix)+len(hash)), payloadPrefix...), hash...)
}

// The shared payload record (kv key payloadKey):
//
//	byte     recordFormat
//	uvarint  entries referring to it (> 0)
//	rest     the payload
func encodePayload(refs uint64, payload []byte) []byte {
	dst := make([]byte, 0, 1+binary.MaxVarintLen64+len(payload))
	dst = append(dst, recordFormat)
	dst = binary.AppendUvarint(dst, refs)
	return append(dst, payload...)
}

func decodePayload(raw []byte) (refs uint64, payload []byte, why string) {
	if len(raw) == 0 || raw[0] != recordFormat {
		return 0, nil, "unknown shared payload format"
	}
	refs, n := binary.Uvarint(raw[1:])
	if n <= 0 || n != uvarintLen(refs) || refs == 0 {
		return 0, nil, "bad shared payload count"
	}
	return refs, raw[1+n:], ""
}

// loadPayload reads the shared payload record under key: its count, its
// payload and its kv version (0, nil, 0 when there is none).
func (ib *Inbox) loadPayload(ctx context.Context, key []byte) (refs uint64, payload []byte, version uint64, err error) {
	raw, ver, err := ib.db.Get(ctx, key)
	if errors.Is(err, kv.ErrNotFound) {
		return 0, nil, 0, nil
	}
	if err != nil {
		return 0, nil, 0, err
	}
	refs, payload, why := decodePayload(raw)
	if why != "" {
		return 0, nil, 0, corruptf("shared payload %x: %s", key[len(payloadPrefix):], why)
	}
	return refs, payload, ver, nil
}

// addRefs adds to b the change of key's record, holding payload and
// counting refs entries at version (0: there is none yet), by delta
// entries (which may be negative).
func addRefs(b *kv.Batch, key []byte, refs, version uint64, payload []byte, delta int64) {
	if n := int64(refs) + delta; n > 0 {
		b.Put(key, encodePayload(uint64(n), payload), version)
	} else {
		b.Delete(key, version)
	}
}

// isPayloadConflict reports whether err is a version conflict on a shared
// payload record: another writer changed its count first.
func isPayloadConflict(err error) bool {
	var ce *kv.ConflictError
	return errors.As(err, &ce) && !ce.Row && bytes.HasPrefix(ce.Key, []byte(payloadPrefix))
}

// payloadReader resolves shared entries for one Sync, reading each
// payload once.
type payloadReader struct {
	ib   *Inbox
	seen map[string][]byte // hash → payload; nil: gone
}

// payload returns the payload of se, reading a shared one; ok is false
// when the shared payload is gone (see the file's doc).
func (r *payloadReader) payload(ctx context.Context, se storedEntry) ([]byte, bool, error) {
	if se.shared == nil {
		return se.payload, true, nil
	}
	if p, hit := r.seen[string(se.shared)]; hit {
		return p, p != nil, nil
	}
	_, p, ver, err := r.ib.loadPayload(ctx, payloadKey(se.shared))
	if err != nil {
		return nil, false, err
	}
	if ver == 0 {
		p = nil
	} else if p == nil {
		p = []byte{}
	}
	if r.seen == nil {
		r.seen = make(map[string][]byte)
	}
	r.seen[string(se.shared)] = p
	return p, p != nil, nil
}

// dropRefs adds to b the count changes for the shared entries a trim
// deletes (hash → entries), reading each record's current state.
func (ib *Inbox) dropRefs(ctx context.Context, b *kv.Batch, drops map[string]int64) error {
	hashes := make([]string, 0, len(drops))
	for h := range drops {
		hashes = append(hashes, h)
	}
	slices.Sort(hashes) // a deterministic batch
	for _, h := range hashes {
		key := payloadKey([]byte(h))
		refs, stored, ver, err := ib.loadPayload(ctx, key)
		if err != nil {
			return err
		}
		if ver == 0 {
			// Nothing counts these entries: a record already gone cannot be
			// dropped twice. Deleting the entries is still right.
			continue
		}
		addRefs(b, key, refs, ver, stored, -drops[h])
	}
	return nil
}

// errPayloadBusy is returned when a shared payload's record kept changing
// under a writer for sharedAttempts tries.
var errPayloadBusy = fmt.Errorf("inbox: a shared payload's count keeps changing: %w", kv.ErrConflict)
