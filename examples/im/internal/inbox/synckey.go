package inbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"hash"
	"math/bits"
	"strconv"
	"strings"
	"sync"
)

// DataType names one of a user's synced data sets; each has its own inbox
// row and its own version in the SyncKey.
type DataType uint8

// The data types the IM backend syncs, in the order Sync returns them.
const (
	Account  DataType = 1 // profile and settings changes
	Contacts DataType = 2 // contact list changes
	Messages DataType = 3 // message indexes
)

// MaxDataType is the highest type a SyncKey's format can carry.
const MaxDataType DataType = 15

// servedTypes are the types this package stores and syncs, in Sync order.
var servedTypes = [...]DataType{Account, Contacts, Messages}

func (t DataType) served() bool { return t >= Account && t <= Messages }

func (t DataType) String() string {
	switch t {
	case Account:
		return "account"
	case Contacts:
		return "contacts"
	case Messages:
		return "messages"
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
//	byte 0       format, syncKeyFormat (2)
//	bytes 1..16  SIV: HMAC-SHA256(macKey, user (8 bytes BE) || device
//	             length (1 byte) || device || format || versions),
//	             truncated to 16 bytes
//	bytes 17..   the versions (see appendVersions), encrypted with
//	             AES-256-CTR under encKey, the SIV as the counter block
//
// This is the SIV construction (Rogaway and Shrimpton's deterministic
// authenticated encryption; AES-SIV of RFC 5297 with HMAC as its PRF): the
// tag doubles as the IV, so a key is authenticated — bound to its user and
// device, unforgeable and uneditable without the secret — and encrypted,
// so a client cannot read the versions (how many messages a user has) off
// it. It is deterministic: one (user, device, versions) has exactly one
// encoding, so a repeated sync answers the same bytes. encKey and macKey
// are derived from the secret with HMAC under distinct labels.
//
// The empty byte string is the zero key, so a new device needs nothing.
// Keys of the first format (versions in clear, a MAC over the user only)
// are refused as malformed: they were not bound to a device.
const (
	syncKeyFormat byte = 2
	sivLen             = 16
	macLabel           = "svrkit/im/synckey mac\x00"
	encLabel           = "svrkit/im/synckey enc\x00"
	// MaxSyncKeyLen is the longest encoded key: format, SIV, bitmap and 15
	// ten-byte uvarints.
	MaxSyncKeyLen = 1 + sivLen + 2 + int(MaxDataType)*10
)

// SyncKeyCodec turns SyncKeys into the opaque bytes clients store and back.
// Its secret keys the SIV and the encryption: with a secret only the server
// knows, a client can neither read, forge nor edit a key, nor use one on
// another device; with an empty secret the SIV is still a checksum that
// catches corruption and casual edits. It is safe for concurrent use.
type SyncKeyCodec struct {
	block cipher.Block
	pool  sync.Pool // of *sivState, keyed with macKey
}

// NewSyncKeyCodec returns a codec keyed by secret.
func NewSyncKeyCodec(secret []byte) *SyncKeyCodec {
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	macKey := derive(macLabel)
	block, err := aes.NewCipher(derive(encLabel))
	if err != nil {
		panic(err) // a 32-byte key is always valid
	}
	c := &SyncKeyCodec{block: block}
	c.pool.New = func() any { return &sivState{h: hmac.New(sha256.New, macKey)} }
	return c
}

// sivState is a keyed HMAC and the scratch space of one SIV, pooled so
// that encoding and decoding a key allocate nothing but the key.
type sivState struct {
	h   hash.Hash
	buf [8 + 1 + 255 + 1 + MaxSyncKeyLen]byte
	sum [sha256.Size]byte
}

// siv returns the SIV of plaintext versions for user and device (at most
// 255 bytes: Sync checks MaxDeviceIDLen first).
func (c *SyncKeyCodec) siv(user uint64, device string, versions []byte) [sivLen]byte {
	st := c.pool.Get().(*sivState)
	st.h.Reset()
	msg := binary.BigEndian.AppendUint64(st.buf[:0], user)
	msg = append(msg, byte(len(device)))
	msg = append(msg, device...)
	msg = append(msg, syncKeyFormat)
	msg = append(msg, versions...)
	st.h.Write(msg)
	st.h.Sum(st.sum[:0])
	iv := [sivLen]byte(st.sum[:sivLen])
	c.pool.Put(st)
	return iv
}

// Encode returns k as opaque bytes for device of user. The zero key
// encodes as the empty byte string.
func (c *SyncKeyCodec) Encode(user uint64, device string, k SyncKey) []byte {
	if k.IsZero() {
		return []byte{}
	}
	var plain [MaxSyncKeyLen]byte
	versions := appendVersions(plain[:0], k)
	iv := c.siv(user, device, versions)
	b := make([]byte, 1+sivLen+len(versions))
	b[0] = syncKeyFormat
	copy(b[1:], iv[:])
	c.ctr(b[1+sivLen:], versions, iv)
	return b
}

// ctr XORs src into dst with the AES-CTR keystream from counter block iv:
// cipher.NewCTR's, without its allocations, for the few blocks of a key.
func (c *SyncKeyCodec) ctr(dst, src []byte, iv [sivLen]byte) {
	var ks [aes.BlockSize]byte
	for len(src) > 0 {
		c.block.Encrypt(ks[:], iv[:])
		n := subtle.XORBytes(dst, src, ks[:])
		dst, src = dst[n:], src[n:]
		for i := len(iv) - 1; i >= 0; i-- { // the counter, big endian
			iv[i]++
			if iv[i] != 0 {
				break
			}
		}
	}
}

// Decode checks and decodes a key Encode returned for device of user. Any
// damage — wrong length, unknown or old format, non-canonical encoding, a
// SIV that does not match (an edited key, another user's or device's key,
// a key from a server with another secret) — is an error matching
// ErrMalformedSyncKey. Decode does not know the current versions; Sync
// rejects keys from the future.
func (c *SyncKeyCodec) Decode(user uint64, device string, b []byte) (SyncKey, error) {
	if len(b) == 0 {
		return SyncKey{}, nil
	}
	if len(b) < 1+sivLen+2 || len(b) > MaxSyncKeyLen {
		return SyncKey{}, malformedKey("length %d", len(b))
	}
	if b[0] != syncKeyFormat {
		return SyncKey{}, malformedKey("unknown format %d (keys before format %d were not bound to a device)", b[0], syncKeyFormat)
	}
	var plain [MaxSyncKeyLen]byte
	versions := plain[:len(b)-1-sivLen]
	c.ctr(versions, b[1+sivLen:], [sivLen]byte(b[1:1+sivLen]))
	want := c.siv(user, device, versions)
	if !hmac.Equal(want[:], b[1:1+sivLen]) {
		return SyncKey{}, malformedKey("checksum mismatch (edited, corrupted, or issued to another user or device)")
	}
	k, rest, why := readVersions(versions)
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
