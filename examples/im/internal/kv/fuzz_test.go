package kv

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodeRecord: stored KV records either decode and re-encode to the
// same bytes, or fail with ErrCorrupt; never a panic.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(nil, 1, []byte("value")))
	f.Add(encodeRecord(nil, 1<<40, nil))
	f.Add([]byte{recordFormat, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x02, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		ver, val, err := decodeRecord(raw)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if ver == 0 || ver == AnyVersion {
			t.Fatalf("decoded reserved version %d", ver)
		}
		if again := encodeRecord(nil, ver, val); !bytes.Equal(again, raw) {
			t.Fatalf("re-encoded %x, want %x", again, raw)
		}
	})
}

// FuzzDecodeRowMeta: row metadata decodes to a consistent RowMeta that
// re-encodes to the same bytes, or fails with ErrCorrupt.
func FuzzDecodeRowMeta(f *testing.F) {
	f.Add(encodeRowMeta(nil, RowMeta{MaxVersion: 20, TrimmedUpTo: 10}))
	f.Add(encodeRowMeta(nil, RowMeta{}))
	f.Add([]byte{recordFormat, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2})
	f.Add([]byte{recordFormat})
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := decodeRowMeta(raw)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if m.TrimmedUpTo > m.MaxVersion {
			t.Fatalf("decoded inconsistent %+v", m)
		}
		if again := encodeRowMeta(nil, m); !bytes.Equal(again, raw) {
			t.Fatalf("re-encoded %x, want %x", again, raw)
		}
	})
}

// TestKeyEncodingOrder checks the properties the package doc promises: a
// row's entries sort by version, its metadata sorts before them, and no
// other row's keys fall inside its range.
func TestKeyEncodingOrder(t *testing.T) {
	rows := [][]byte{[]byte("a"), []byte("ab"), []byte("a\x00"), []byte("b"), {0xff}, bytes.Repeat([]byte{0}, 300)}
	versions := []uint64{1, 2, 255, 256, 1 << 32, AnyVersion - 1}
	for _, r := range rows {
		lo := rowMetaKey(nil, r)
		hi := append(rowPrefix(nil, r), rowEntryTag+1)
		prev := lo
		for _, v := range versions {
			k := entryKey(nil, r, v)
			if bytes.Compare(prev, k) >= 0 {
				t.Fatalf("row %q: key of %d does not sort after %x", r, v, prev)
			}
			if entryVersion(k) != v {
				t.Fatalf("row %q: version %d reads back as %d", r, v, entryVersion(k))
			}
			prev = k
		}
		if bytes.Compare(prev, hi) >= 0 {
			t.Fatalf("row %q: entries reach past the row's upper bound", r)
		}
		for _, o := range rows {
			if bytes.Equal(o, r) {
				continue
			}
			for _, k := range [][]byte{rowMetaKey(nil, o), entryKey(nil, o, 1), entryKey(nil, o, AnyVersion-1)} {
				if bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0 {
					t.Fatalf("key %x of row %q lies inside row %q's range", k, o, r)
				}
			}
		}
		if kk := kvKey(nil, r); bytes.Compare(kk, lo) >= 0 && bytes.Compare(kk, hi) < 0 {
			t.Fatalf("KV key %q lies inside row %q's range", r, r)
		}
	}
}
