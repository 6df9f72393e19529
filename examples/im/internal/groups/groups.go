// Package groups is what the IM backend's group services share
// (idl/im/group.proto, groupdata.proto, fanout.proto): the group id space,
// the limits, and the fan-out queue — its stream, the item groupdata
// publishes for every appended log entry, and the app config through which
// groupdata and the fan-out worker reach it.
//
// # Ids
//
// Group ids have bit 63 set and user ids never do (accountdata draws them
// below 2^63), so one uint64 names either and IsID tells which.
// That is what lets a version 1 client treat a group as one more
// conversation partner (sync.proto). A group's id is derived from its
// creator and the client's id of the creation (ID), so a repeated
// CreateGroup finds the group it created without an index of creations;
// 63 bits of SHA-256 make a collision between two creations improbable
// (a birthday bound near 2^31 groups), and groupdata refuses one rather
// than merge two groups.
//
// # The queue item
//
// For an entry appended at seq S of group G, groupdata publishes to the
// stream GROUP_FANOUT an item keyed by G (so a group's items are handled
// one at a time, in order) with id "g<G>-<S>" (so a repeated publish is
// stored once) and a 16-byte payload: G and S, big-endian. The item is a
// wake-up call rather than the work itself: the worker fans out every
// entry of G above the group's fanned seq, up to S at least, from the
// group's log (package doc of the fanout handlers).
package groups

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/svrkit"
)

// The limits of group.proto.
const (
	MaxMembers   = int(im.GroupLimit_GROUP_LIMIT_MAX_MEMBERS)
	MaxNameBytes = int(im.GroupLimit_GROUP_LIMIT_MAX_NAME_BYTES)
	MaxClientID  = 64
	idBit        = uint64(1) << 63
	idMask       = idBit - 1
)

// IsID reports whether id is a group's (bit 63 set).
func IsID(id uint64) bool { return id&idBit != 0 }

// IsUserID reports whether id can be a user's: not 0, not a group's.
func IsUserID(id uint64) bool { return id != 0 && id&idBit == 0 }

// ID is the id of the group that user creates with clientGroupID.
func ID(user uint64, clientGroupID string) uint64 {
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], user)
	h.Write([]byte("svrkit/im/group\x00"))
	h.Write(b[:])
	h.Write([]byte(clientGroupID))
	sum := h.Sum(nil)
	return idBit | binary.BigEndian.Uint64(sum)&idMask
}

// CheckName checks a group name against group.proto's limits.
func CheckName(name string) error {
	if n := len(name); n < 1 || n > MaxNameBytes {
		return svrkit.Errorf(svrkit.InvalidArgument, "group name must be 1 to %d bytes (got %d)", MaxNameBytes, n)
	}
	if !utf8.ValidString(name) {
		return svrkit.NewError(svrkit.InvalidArgument, "group name must be valid UTF-8")
	}
	return nil
}

// CheckGroupID checks that id names a group (invalid_argument otherwise).
func CheckGroupID(id uint64) error {
	if !IsID(id) {
		return svrkit.Errorf(svrkit.InvalidArgument, "%d is not a group id", id)
	}
	return nil
}

// Full is the error of a change that would take a group of have members
// above MaxMembers by adding.
func Full(group uint64, have, adding int) error {
	return svrkit.Errorf(svrkit.FailedPrecondition, "group %d would have %d members (%d, and %d more): the limit is %d",
		group, have+adding, have, adding, MaxMembers)
}

// Stream is the fan-out queue's stream.
const Stream = "GROUP_FANOUT"

// Item is what groupdata publishes for one appended log entry.
type Item struct {
	Group, Seq uint64
}

// Key is the item's queue key: its group, so a group's items are handled
// in order.
func (it Item) Key() string { return strconv.FormatUint(it.Group, 10) }

// ID is the item's queue id, the same for every publish of one entry.
func (it Item) ID() string {
	return "g" + strconv.FormatUint(it.Group, 10) + "-" + strconv.FormatUint(it.Seq, 10)
}

// Payload encodes the item.
func (it Item) Payload() []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, it.Group)
	binary.BigEndian.PutUint64(b[8:], it.Seq)
	return b
}

// ErrBadItem is the error of a payload that is not an Item.
var ErrBadItem = errors.New("groups: not a fan-out item")

// DecodeItem decodes a payload Payload made.
func DecodeItem(b []byte) (Item, error) {
	if len(b) != 16 {
		return Item{}, fmt.Errorf("%w: %d bytes", ErrBadItem, len(b))
	}
	it := Item{Group: binary.BigEndian.Uint64(b), Seq: binary.BigEndian.Uint64(b[8:])}
	if !IsID(it.Group) || it.Seq == 0 {
		return Item{}, fmt.Errorf("%w: group %d seq %d", ErrBadItem, it.Group, it.Seq)
	}
	return it, nil
}

// MessageDedupID is the dedup id under which the fan-out writes entry seq
// of group into each member's inbox: unique per user, the same on every
// redelivery, so each member has each entry once.
func MessageDedupID(group, seq uint64) string {
	return "g:" + strconv.FormatUint(group, 10) + ":" + strconv.FormatUint(seq, 10)
}

// MembersAt returns the users who are members, at seq, of the group rec
// describes: members who joined at or before it, and former members who
// had joined at or before it and left at or after it. rec must be current
// as of seq or later (groupdata keeps every former member the fan-out may
// still need).
func MembersAt(rec *im.GroupRecord, seq uint64) []uint64 {
	var out []uint64
	for _, m := range rec.GetMembers() {
		if m.GetJoinedSeq() <= seq {
			out = append(out, m.GetMember().GetUserId())
		}
	}
	for _, f := range rec.GetFormer() {
		if f.GetJoinedSeq() <= seq && seq <= f.GetLeftSeq() {
			out = append(out, f.GetUserId())
		}
	}
	return out
}
