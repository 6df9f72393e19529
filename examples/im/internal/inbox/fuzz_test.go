package inbox

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzCodec's secret matches the seeds in testdata/fuzz/FuzzDecodeSyncKey.
var fuzzCodec = NewSyncKeyCodec([]byte("fuzz secret"))

// fuzzDevice is the device of the seeds; the fuzzer's own devices are
// derived from its input.
const fuzzDevice = "phone"

// FuzzDecodeSyncKey: whatever a client sends, Decode never panics, fails
// only with ErrMalformedSyncKey, and accepts only the one encoding Encode
// produces for that user and device.
func FuzzDecodeSyncKey(f *testing.F) {
	f.Add(fuzzCodec.Encode(1, fuzzDevice, SyncKey{}.With(Messages, 5)), uint64(1), fuzzDevice)
	f.Add(fuzzCodec.Encode(7, fuzzDevice, SyncKey{}.With(Account, 1).With(Contacts, 300).With(Messages, 1<<40)), uint64(7), fuzzDevice)
	f.Add(fuzzCodec.Encode(7, "tablet", SyncKey{}.With(Messages, 9)), uint64(7), fuzzDevice)
	f.Add([]byte{}, uint64(0), "")
	f.Add([]byte{syncKeyFormat, 0, 0}, uint64(3), fuzzDevice)
	f.Add([]byte{1, 0, 1 << Messages, 5, 1, 2, 3, 4, 5, 6, 7, 8}, uint64(1), fuzzDevice)
	f.Fuzz(func(t *testing.T, b []byte, user uint64, device string) {
		k, err := fuzzCodec.Decode(user, device, b)
		if err != nil {
			if !errors.Is(err, ErrMalformedSyncKey) {
				t.Fatalf("error %v is not ErrMalformedSyncKey", err)
			}
			return
		}
		if again := fuzzCodec.Encode(user, device, k); !bytes.Equal(again, b) {
			t.Fatalf("decoded %v re-encodes as %x, not %x", k, again, b)
		}
		if _, err := fuzzCodec.Decode(user+1, device, b); err == nil && len(b) != 0 {
			t.Fatalf("key %x accepted for user %d and %d", b, user, user+1)
		}
		if _, err := fuzzCodec.Decode(user, device+"x", b); err == nil && len(b) != 0 {
			t.Fatalf("key %x accepted for devices %q and %q", b, device, device+"x")
		}
	})
}

// FuzzDecodeEntry: stored inbox entries decode to what re-encodes to the
// same bytes, or fail; never a panic.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(encodeEntry(nil, storedEntry{atMillis: 1700000000000, dedupID: []byte("alice/1"), payload: []byte("index")}))
	f.Add(encodeEntry(nil, storedEntry{}))
	f.Add(encodeEntry(nil, storedEntry{atMillis: 1700000000000, dedupID: []byte("g:1:1"), shared: make([]byte, payloadHashLen)}))
	f.Add([]byte{recordFormat, 0x80})
	f.Add([]byte{recordFormat, 1, 200, 1})
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, why := decodeEntry(raw)
		if why != "" {
			return
		}
		if len(e.dedupID) > MaxDedupIDLen {
			t.Fatalf("dedup id of %d bytes accepted", len(e.dedupID))
		}
		if again := encodeEntry(nil, e); !bytes.Equal(again, raw) {
			t.Fatalf("re-encoded %x, want %x", again, raw)
		}
	})
}

// FuzzDecodeAcks: ACK records decode to sorted, distinct, bounded device
// lists that re-encode to the same bytes, or fail; never a panic.
func FuzzDecodeAcks(f *testing.F) {
	f.Add(encodeAcks(nil, []deviceAck{
		{device: "laptop", key: SyncKey{}.With(Messages, 9), seenUnix: 1700000000},
		{device: "phone", key: SyncKey{}.With(Account, 2).With(Messages, 12), seenUnix: 1700000100},
	}))
	f.Add(encodeAcks(nil, nil))
	f.Add([]byte{recordFormat, 2, 1, 'a', 0, 0, 0, 1, 'a', 0, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		acks, why := decodeAcks(raw)
		if why != "" {
			return
		}
		if len(acks) > MaxDevices {
			t.Fatalf("%d devices accepted", len(acks))
		}
		for i := range acks {
			if acks[i].device == "" || len(acks[i].device) > MaxDeviceIDLen || (i > 0 && acks[i-1].device >= acks[i].device) {
				t.Fatalf("bad device list %+v", acks)
			}
		}
		if again := encodeAcks(nil, acks); !bytes.Equal(again, raw) {
			t.Fatalf("re-encoded %x, want %x", again, raw)
		}
	})
}

// FuzzDecodePayload: shared payload records decode to a positive count and
// re-encode to the same bytes, or fail; never a panic.
func FuzzDecodePayload(f *testing.F) {
	f.Add(encodePayload(3, []byte("members")))
	f.Add([]byte{recordFormat, 0})
	f.Add([]byte{recordFormat, 0x80})
	f.Fuzz(func(t *testing.T, raw []byte) {
		refs, payload, why := decodePayload(raw)
		if why != "" {
			return
		}
		if refs == 0 {
			t.Fatal("a record with no entries accepted")
		}
		if again := encodePayload(refs, payload); !bytes.Equal(again, raw) {
			t.Fatalf("re-encoded %x, want %x", again, raw)
		}
	})
}
