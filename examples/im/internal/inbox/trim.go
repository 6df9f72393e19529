package inbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/svrkit/svrkit/examples/im/internal/kv"
)

// ackAttempts bounds the read-modify-write retries on a user's ACK record;
// its writers are one user's devices, so conflicts are rare and brief.
const ackAttempts = 16

// trimChunk is how many entries one trim batch deletes at most, keeping each
// atomic batch (entries' range deletion plus their dedup records) small.
const trimChunk = 500

// loadAcks reads user's ACK record and its kv version (0: none yet).
func (ib *Inbox) loadAcks(ctx context.Context, user uint64) ([]deviceAck, uint64, error) {
	val, ver, err := ib.db.Get(ctx, ackKey(user))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	acks, why := decodeAcks(val)
	if why != "" {
		return nil, 0, corruptf("ack record of user %d: %s", user, why)
	}
	return acks, ver, nil
}

// updateAcks applies change to user's ACK record with compare-and-set,
// retrying on conflict. change returns whether to write and whether the
// write must be fsync'd.
func (ib *Inbox) updateAcks(ctx context.Context, user uint64, change func([]deviceAck) (acks []deviceAck, write, durable bool)) error {
	for range ackAttempts {
		acks, ver, err := ib.loadAcks(ctx, user)
		if err != nil {
			return err
		}
		acks, write, durable := change(acks)
		if !write {
			return nil
		}
		var b kv.Batch
		b.Put(ackKey(user), encodeAcks(nil, acks), ver)
		b.NoSync = !durable
		_, err = ib.db.Apply(ctx, &b)
		if !errors.Is(err, kv.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("inbox: ACK record of user %d keeps changing: %w", user, kv.ErrConflict)
}

// recordAck records that device has everything up to k. The first ACK of a
// device registers it and is fsync'd; a lost later one only delays trimming.
// moved reports whether the device's ACK advanced (or the device is new).
func (ib *Inbox) recordAck(ctx context.Context, user uint64, device string, k SyncKey) (moved bool, err error) {
	now := ib.now()
	nowSec := uint64(max(now.Unix(), 0))
	// lastSeen is refreshed at this granularity even when the key has not
	// moved, so an idle but present device is not dropped.
	refresh := uint64(ib.deviceTTL / time.Second / 64)
	err = ib.updateAcks(ctx, user, func(acks []deviceAck) ([]deviceAck, bool, bool) {
		i, found := findDevice(acks, device)
		moved = !found
		if found {
			a := &acks[i]
			merged := a.key
			for t := range merged.v {
				merged.v[t] = max(merged.v[t], k.v[t])
			}
			moved = merged != a.key
			if merged == a.key && nowSec < a.seenUnix+refresh {
				return nil, false, false
			}
			a.key, a.seenUnix = merged, max(a.seenUnix, nowSec)
			return acks, true, false
		}
		if len(acks) >= MaxDevices {
			oldest := 0
			for j := range acks {
				if acks[j].seenUnix < acks[oldest].seenUnix {
					oldest = j
				}
			}
			acks = slices.Delete(acks, oldest, oldest+1)
			i, _ = findDevice(acks, device)
		}
		acks = slices.Insert(acks, i, deviceAck{device: device, key: k, seenUnix: nowSec})
		return acks, true, true
	})
	return moved && err == nil, err
}

// RemoveDevice forgets device (a logout), so trimming no longer waits for
// it. Removing an unknown device is not an error.
func (ib *Inbox) RemoveDevice(ctx context.Context, user uint64, device string) error {
	if err := checkDevice(device); err != nil {
		return err
	}
	return ib.updateAcks(ctx, user, func(acks []deviceAck) ([]deviceAck, bool, bool) {
		i, found := findDevice(acks, device)
		if !found {
			return nil, false, false
		}
		return slices.Delete(acks, i, i+1), true, true
	})
}

// Trim deletes user's entries that every device has acknowledged and that
// are older than the retention window, with their dedup records, and drops
// devices unseen for DeviceTTL. It returns how many entries it deleted. A
// user with no devices keeps everything. Trim is safe to run concurrently
// with Deliver and Sync; the trim worker calls it per user, e.g. after a
// Sync moved a device's ACK.
func (ib *Inbox) Trim(ctx context.Context, user uint64) (int, error) {
	now := ib.now()
	expiry := uint64(max(now.Add(-ib.deviceTTL).Unix(), 0))
	var live []deviceAck
	err := ib.updateAcks(ctx, user, func(acks []deviceAck) ([]deviceAck, bool, bool) {
		live = slices.DeleteFunc(slices.Clone(acks), func(a deviceAck) bool { return a.seenUnix < expiry })
		return live, len(live) != len(acks), true
	})
	if err != nil || len(live) == 0 {
		return 0, err
	}
	cutoff := uint64(max(now.Add(-ib.retention).UnixMilli(), 0))
	total := 0
	for _, t := range servedTypes {
		upto := live[0].key.v[t]
		for _, a := range live[1:] {
			upto = min(upto, a.key.v[t])
		}
		for upto > 0 {
			n, done, err := ib.trimChunk(ctx, user, t, upto, cutoff)
			total += n
			if err != nil {
				return total, err
			}
			if done {
				break
			}
		}
	}
	return total, nil
}

// trimChunk deletes up to trimChunk of the oldest entries of one inbox that
// are at or below upto and delivered at or before cutoff. It reports done
// when nothing more can be trimmed now.
func (ib *Inbox) trimChunk(ctx context.Context, user uint64, t DataType, upto, cutoffMillis uint64) (int, bool, error) {
	for attempt := 1; ; attempt++ {
		n, done, err := ib.trimChunkOnce(ctx, user, t, upto, cutoffMillis)
		if !isPayloadConflict(err) {
			return n, done, err
		}
		if attempt == sharedAttempts {
			return 0, false, errPayloadBusy
		}
		// Another writer moved a shared payload's count: read it again.
	}
}

func (ib *Inbox) trimChunkOnce(ctx context.Context, user uint64, t DataType, upto, cutoffMillis uint64) (int, bool, error) {
	row := inboxRow(user, t)
	// Trim runs after most Syncs, and mostly finds the oldest entry still
	// inside the retention window: look at that entry alone before reading
	// a chunk (under load, full-chunk scans were a quarter of the storage
	// service's CPU, all for nothing).
	head, err := ib.db.Scan(ctx, row, 0, 1)
	if err != nil {
		return 0, false, err
	}
	if len(head.Entries) == 0 || head.Entries[0].Version > upto {
		return 0, true, nil
	}
	if se, why := decodeEntry(head.Entries[0].Value); why == "" && se.atMillis > cutoffMillis {
		return 0, true, nil
	}
	page, err := ib.db.Scan(ctx, row, 0, trimChunk)
	if err != nil {
		return 0, false, err
	}
	var b kv.Batch
	var last uint64
	var drops map[string]int64 // shared payload → entries deleted
	n, stopped := 0, false
	for _, e := range page.Entries {
		if e.Version > upto {
			stopped = true
			break
		}
		se, why := decodeEntry(e.Value)
		if why != "" {
			return 0, false, corruptf("user %d %s entry %d: %s", user, t, e.Version, why)
		}
		// Entries are in delivery order, so the first young one ends
		// the run (a clock step back only makes Trim keep more).
		if se.atMillis > cutoffMillis {
			stopped = true
			break
		}
		if len(se.dedupID) != 0 {
			b.Delete(dedupKey(user, t, se.dedupID), kv.AnyVersion)
		}
		if se.shared != nil {
			if drops == nil {
				drops = make(map[string]int64)
			}
			drops[string(se.shared)]++
		}
		last = e.Version
		n++
	}
	if n == 0 {
		return 0, true, nil
	}
	if err := ib.dropRefs(ctx, &b, drops); err != nil {
		return 0, false, err
	}
	// Trim at an entry's version, so TrimmedUpTo always names a deleted
	// entry: Sync's Gap relies on it.
	b.Trim(row, last)
	if _, err := ib.db.Apply(ctx, &b); err != nil {
		return 0, false, err
	}
	return n, stopped || !page.More, nil
}
