package inbox

import (
	"bytes"
	"crypto/cipher"
	"errors"
	"math"
	"testing"

	"github.com/svrkit/svrkit/svrkit"
)

func TestSyncKeyRoundTrip(t *testing.T) {
	c := NewSyncKeyCodec([]byte("secret"))
	keys := []struct {
		name string
		key  SyncKey
	}{
		{"zero", SyncKey{}},
		{"messages only", SyncKey{}.With(Messages, 1)},
		{"all served", SyncKey{}.With(Account, 3).With(Contacts, 1<<20).With(Messages, 17)},
		{"largest", SyncKey{}.With(Account, math.MaxUint64).With(MaxDataType, math.MaxUint64)},
	}
	for _, k := range keys {
		t.Run(k.name, func(t *testing.T) {
			b := c.Encode(42, "phone", k.key)
			if len(b) > MaxSyncKeyLen {
				t.Fatalf("encoded %d bytes, above MaxSyncKeyLen %d", len(b), MaxSyncKeyLen)
			}
			if k.key.IsZero() != (len(b) == 0) {
				t.Fatalf("zero key encodes as %x", b)
			}
			got, err := c.Decode(42, "phone", b)
			if err != nil || got != k.key {
				t.Fatalf("decode = %v, %v; want %v", got, err, k.key)
			}
		})
	}
	if s := (SyncKey{}.With(Account, 3).With(Messages, 17)).String(); s != "{account:3 messages:17}" {
		t.Fatalf("String = %q", s)
	}
}

func TestSyncKeyRejectsDamage(t *testing.T) {
	c := NewSyncKeyCodec([]byte("secret"))
	k := SyncKey{}.With(Account, 3).With(Contacts, 300).With(Messages, 70000)
	good := c.Encode(42, "phone", k)

	wantMalformed := func(t *testing.T, what string, b []byte, user uint64, device string, codec *SyncKeyCodec) {
		t.Helper()
		_, err := codec.Decode(user, device, b)
		if !errors.Is(err, ErrMalformedSyncKey) || svrkit.CodeOf(err) != svrkit.InvalidArgument {
			t.Fatalf("%s: decode error %v; want ErrMalformedSyncKey/InvalidArgument", what, err)
		}
	}
	wantMalformed(t, "another user's key", good, 43, "phone", c)
	wantMalformed(t, "another device's key", good, 42, "tablet", c)
	wantMalformed(t, "another server's key", good, 42, "phone", NewSyncKeyCodec([]byte("other")))
	for i := range len(good) * 8 {
		b := bytes.Clone(good)
		b[i/8] ^= 1 << (i % 8)
		wantMalformed(t, "bit flip", b, 42, "phone", c)
	}
	for n := 1; n < len(good); n++ {
		wantMalformed(t, "truncated", good[:n], 42, "phone", c)
	}
	wantMalformed(t, "too long", append(bytes.Clone(good), make([]byte, MaxSyncKeyLen)...), 42, "phone", c)

	// A key of the first format, versions in clear and a MAC over the
	// user only (testdata/fuzz/FuzzDecodeSyncKey/valid_messages was one):
	// refused, as it was never bound to a device.
	v1 := []byte{1, 0, 1 << Messages, 5, 1, 2, 3, 4, 5, 6, 7, 8}
	wantMalformed(t, "format-1 key", v1, 42, "phone", c)

	// Encodings Encode never produces, encrypted and authenticated as
	// Encode would: the decoder must still refuse them, so every key has
	// exactly one encoding.
	nonCanonical := []struct {
		name     string
		versions []byte
	}{
		{"zero key body", []byte{0, 0}},
		{"type 0", []byte{0, 1, 5}},
		{"zero version", []byte{0, 1 << Messages, 0}},
		{"over-long uvarint", []byte{0, 1 << Messages, 0x85, 0x00}},
		{"missing version", []byte{0, 1 << Messages}},
		{"trailing byte", []byte{0, 1 << Messages, 5, 0}},
		{"uvarint overflow", []byte{0, 1 << Messages, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}},
	}
	for _, nc := range nonCanonical {
		wantMalformed(t, nc.name, seal(c, 42, "phone", nc.versions), 42, "phone", c)
	}
	// And the sealing helper does produce what Encode produces.
	if !bytes.Equal(seal(c, 42, "phone", []byte{0, 1 << Messages, 5}), c.Encode(42, "phone", SyncKey{}.With(Messages, 5))) {
		t.Fatal("test sealer disagrees with Encode")
	}
}

// seal encodes raw version bytes as Encode would encode a key's.
func seal(c *SyncKeyCodec, user uint64, device string, versions []byte) []byte {
	iv := c.siv(user, device, versions)
	b := append([]byte{syncKeyFormat}, iv[:]...)
	b = append(b, versions...)
	cipher.NewCTR(c.block, iv[:]).XORKeyStream(b[1+sivLen:], versions)
	return b
}

// A key does not show its versions: neither their encoding nor any
// version's uvarint is in it, and keys of consecutive versions differ
// throughout.
func TestSyncKeyIsOpaque(t *testing.T) {
	c := NewSyncKeyCodec([]byte("secret"))
	k := SyncKey{}.With(Account, 3).With(Contacts, 300).With(Messages, 70000)
	b := c.Encode(42, "phone", k)
	if plain := appendVersions(nil, k); bytes.Contains(b, plain[2:]) {
		t.Fatalf("key %x contains its versions %x in clear", b, plain)
	}
	next := c.Encode(42, "phone", k.With(Messages, 70001))
	same := 0
	for i := 1; i < len(b); i++ {
		if b[i] == next[i] {
			same++
		}
	}
	if same > len(b)/4 {
		t.Fatalf("keys of versions 70000 and 70001 share %d of %d bytes:\n%x\n%x", same, len(b), b, next)
	}
	if !bytes.Equal(b, c.Encode(42, "phone", k)) {
		t.Fatal("encoding is not deterministic")
	}
}
