package inbox

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"math/bits"
	"strings"
	"sync"

	"strconv"
)

// DataType names one of a user's synced data sets; each has its own inbox
// row and its own version in the SyncKey.
type DataType uint8

// The data types the IM backend syncs (servedTypes gives the order Sync
// returns them in).
const (
	Account  DataType = 1 // profile and settings changes
	Contacts DataType = 2 // contact list changes
	Messages DataType = 3 // message indexes
	Groups   DataType = 4 // changes of the groups the user is in
)

// MaxDataType is the highest type a SyncKey's format can carry.
const MaxDataType DataType = 15

// servedTypes are the types this package stores and syncs, in Sync order:
// a device learns of a group (Groups) before the group's messages.
var servedTypes = [...]DataType{Account, Contacts, Groups, Messages}

func (t DataType) served() bool { return t >= Account && t <= Groups }

func (t DataType) String() string {
	switch t {
	case Account:
		return "account"
	case Contacts:
		return "contacts"
	case Messages:
		return "messages"
	case Groups:
		return "groups"
	}
	return "type" + strconv.Itoa(int(t))
}

// SyncKey is what a device has received: per data type, the highest version
// it has stored (0: nothing). The server hands it out encoded and opaque;
// the device sends it back on every sync, and that is also its ACK. The zero
// value is a new device's key.
type SyncKey struct {
	v [MaxDataType + 1]uint64 // indexed by DataType; v[0] unused
}

// Version returns the key's version of t (0 for types out of range).
func (k SyncKey) Version(t DataType) uint64 {
	if t == 0 || t > MaxDataType {
		return 0
	}
	return k.v[t]
}

// With returns a copy of k with t's version set to v. Types outside
// [1, MaxDataType] are ignored.
func (k SyncKey) With(t DataType, v uint64) SyncKey {
	if t != 0 && t <= MaxDataType {
		k.v[t] = v
	}
	return k
}

// IsZero reports whether k is a new device's key.
func (k SyncKey) IsZero() bool { return k == SyncKey{} }

// String lists the key's nonzero versions, for logs.
func (k SyncKey) String() string {
	var sb strings.Builder
	sb.WriteByte('{')
	for t := DataType(1); t <= MaxDataType; t++ {
		if k.v[t] == 0 {
			continue
		}
		if sb.Len() > 1 {
			sb.WriteByte(' ')
		}
		sb.WriteString(t.String())
		sb.WriteByte(':')
		sb.WriteString(strconv.FormatUint(k.v[t], 10))
	}
	sb.WriteByte('}')
	return sb.String()
}

// appendVersions writes the versions of k: a 2-byte big-endian bitmap of the
// types with nonzero versions (bit t for type t), then each of those
// versions as a uvarint, in type order. Zero versions are left out, so every
// key has exactly one encoding.
func appendVersions(dst []byte, k SyncKey) []byte {
	var mask uint16
	for t := DataType(1); t <= MaxDataType; t++ {
		if k.v[t] != 0 {
			mask |= 1 << t
		}
	}
	dst = binary.BigEndian.AppendUint16(dst, mask)
	for t := DataType(1); t <= MaxDataType; t++ {
		if k.v[t] != 0 {
			dst = binary.AppendUvarint(dst, k.v[t])
		}
	}
	return dst
}

// readVersions decodes what appendVersions wrote at the start of b and
// returns the rest. It accepts only the canonical encoding: no bit 0, no
// zero versions, no over-long uvarints.
func readVersions(b []byte) (SyncKey, []byte, string) {
	var k SyncKey
	if len(b) < 2 {
		return k, nil, "truncated type bitmap"
	}
	mask := binary.BigEndian.Uint16(b)
	b = b[2:]
	if mask&1 != 0 {
		return k, nil, "type 0 in bitmap"
	}
	for mask != 0 {
		t := DataType(bits.TrailingZeros16(mask))
		mask &^= 1 << t
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return k, nil, "bad version of " + t.String()
		}
		if v == 0 || n != uvarintLen(v) {
			return k, nil, "non-canonical version of " + t.String()
		}
		k.v[t] = v
		b = b[n:]
	}
	return k, b, ""
}

func uvarintLen(v uint64) int {
	return (bits.Len64(v|1) + 6) / 7
}

// SyncKey wire format (all of it opaque to clients):
//
//	byte 0       format, syncKeyFormat
//	bytes 1..    the versions (see appendVersions)
//	last 8 bytes MAC: HMAC-SHA256(secret, macLabel || user (8 bytes BE) ||
//	             all preceding bytes), truncated to 8 bytes
//
// The empty byte string is the zero key, so a new device needs nothing.
// Binding the user id into the MAC makes one user's key useless to another.
const (
	syncKeyFormat byte = 1
	macLen             = 8
	macLabel           = "svrkit/im/synckey\x00"
	// MaxSyncKeyLen is the longest encoded key: format, bitmap, 15
	// ten-byte uvarints and the MAC.
	MaxSyncKeyLen = 1 + 2 + int(MaxDataType)*10 + macLen
)

// SyncKeyCodec turns SyncKeys into the opaque bytes clients store and back.
// Its secret keys the MAC: with a secret only the server knows, a client can
// neither forge nor edit a key; with an empty secret the MAC is still a
// checksum that catches corruption and casual edits. It is safe for
// concurrent use.
type SyncKeyCodec struct {
	pool sync.Pool // of keyed HMAC states
}

// NewSyncKeyCodec returns a codec whose MACs are keyed by secret.
func NewSyncKeyCodec(secret []byte) *SyncKeyCodec {
	secret = append([]byte(nil), secret...)
	c := &SyncKeyCodec{}
	c.pool.New = func() any { return hmac.New(sha256.New, secret) }
	return c
}

func (c *SyncKeyCodec) mac(dst []byte, user uint64, body []byte) []byte {
	h := c.pool.Get().(hash.Hash)
	h.Reset()
	var hdr [len(macLabel) + 8]byte
	copy(hdr[:], macLabel)
	binary.BigEndian.PutUint64(hdr[len(macLabel):], user)
	h.Write(hdr[:])
	h.Write(body)
	var sum [sha256.Size]byte
	out := append(dst, h.Sum(sum[:0])[:macLen]...)
	c.pool.Put(h)
	return out
}

// Encode returns k as opaque bytes for user. The zero key encodes as the
// empty byte string.
func (c *SyncKeyCodec) Encode(user uint64, k SyncKey) []byte {
	if k.IsZero() {
		return []byte{}
	}
	b := make([]byte, 0, MaxSyncKeyLen)
	b = append(b, syncKeyFormat)
	b = appendVersions(b, k)
	return c.mac(b, user, b)
}

// Decode checks and decodes a key Encode returned for user. Any damage —
// wrong length, unknown format, non-canonical encoding, a MAC that does not
// match (an edited key, another user's key, a key from a server with another
// secret) — is an error matching ErrMalformedSyncKey. Decode does not know
// the current versions; Sync rejects keys from the future.
func (c *SyncKeyCodec) Decode(user uint64, b []byte) (SyncKey, error) {
	if len(b) == 0 {
		return SyncKey{}, nil
	}
	if len(b) < 1+2+macLen || len(b) > MaxSyncKeyLen {
		return SyncKey{}, malformedKey("length %d", len(b))
	}
	if b[0] != syncKeyFormat {
		return SyncKey{}, malformedKey("unknown format %d", b[0])
	}
	body, sum := b[:len(b)-macLen], b[len(b)-macLen:]
	var want [macLen]byte
	if !hmac.Equal(c.mac(want[:0], user, body), sum) {
		return SyncKey{}, malformedKey("checksum mismatch (edited, corrupted, or issued to another user)")
	}
	k, rest, why := readVersions(body[1:])
	if why != "" {
		return SyncKey{}, malformedKey("%s", why)
	}
	if len(rest) != 0 {
		return SyncKey{}, malformedKey("%d trailing bytes", len(rest))
	}
	if k.IsZero() {
		// The zero key has one encoding, the empty string.
		return SyncKey{}, malformedKey("non-canonical zero key")
	}
	return k, nil
}
