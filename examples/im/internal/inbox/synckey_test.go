package inbox

import (
	"bytes"
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
			b := c.Encode(42, k.key)
			if len(b) > MaxSyncKeyLen {
				t.Fatalf("encoded %d bytes, above MaxSyncKeyLen %d", len(b), MaxSyncKeyLen)
			}
			if k.key.IsZero() != (len(b) == 0) {
				t.Fatalf("zero key encodes as %x", b)
			}
			got, err := c.Decode(42, b)
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
	good := c.Encode(42, k)

	wantMalformed := func(t *testing.T, what string, b []byte, user uint64, codec *SyncKeyCodec) {
		t.Helper()
		_, err := codec.Decode(user, b)
		if !errors.Is(err, ErrMalformedSyncKey) || svrkit.CodeOf(err) != svrkit.InvalidArgument {
			t.Fatalf("%s: decode error %v; want ErrMalformedSyncKey/InvalidArgument", what, err)
		}
	}
	wantMalformed(t, "another user's key", good, 43, c)
	wantMalformed(t, "another server's key", good, 42, NewSyncKeyCodec([]byte("other")))
	for i := range len(good) * 8 {
		b := bytes.Clone(good)
		b[i/8] ^= 1 << (i % 8)
		wantMalformed(t, "bit flip", b, 42, c)
	}
	for n := 1; n < len(good); n++ {
		wantMalformed(t, "truncated", good[:n], 42, c)
	}
	wantMalformed(t, "too long", append(bytes.Clone(good), make([]byte, MaxSyncKeyLen)...), 42, c)

	// Encodings Encode never produces, with a valid MAC: the decoder must
	// still refuse them, so every key has exactly one encoding.
	sign := func(body []byte) []byte { return c.mac(bytes.Clone(body), 42, body) }
	nonCanonical := []struct {
		name string
		body []byte
	}{
		{"zero key body", []byte{syncKeyFormat, 0, 0}},
		{"type 0", []byte{syncKeyFormat, 0, 1, 5}},
		{"zero version", []byte{syncKeyFormat, 0, 1 << Messages, 0}},
		{"over-long uvarint", []byte{syncKeyFormat, 0, 1 << Messages, 0x85, 0x00}},
		{"missing version", []byte{syncKeyFormat, 0, 1 << Messages}},
		{"trailing byte", []byte{syncKeyFormat, 0, 1 << Messages, 5, 0}},
		{"unknown format", []byte{2, 0, 1 << Messages, 5}},
		{"uvarint overflow", []byte{syncKeyFormat, 0, 1 << Messages, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}},
	}
	for _, nc := range nonCanonical {
		wantMalformed(t, nc.name, sign(nc.body), 42, c)
	}
	// And the signing helper does produce what Encode produces.
	if !bytes.Equal(sign([]byte{syncKeyFormat, 0, 1 << Messages, 5}), c.Encode(42, SyncKey{}.With(Messages, 5))) {
		t.Fatal("test signer disagrees with Encode")
	}
}
