package kv

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// Two replicas that apply the same committed entries end with the same
// results and the same bytes, even when one restarts in between (which
// moves Apply's in-memory revisions, not ApplyCommitted's).
func TestApplyCommittedIsDeterministic(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	a, b := mustOpen(t, dirA), mustOpen(t, dirB)
	entries := func(i int) *Batch {
		var bt Batch
		switch i % 4 {
		case 0:
			bt.Put([]byte("k"), []byte{byte(i)}, AnyVersion)
		case 1:
			bt.Append([]byte("row"), []byte{byte(i)})
		case 2:
			bt.Put([]byte("k"), []byte("stale"), 1) // fails: a conflict
		case 3:
			bt.Put([]byte{byte('a' + i)}, nil, 0)
			bt.Trim([]byte("row"), uint64(i/4))
		}
		return &bt
	}
	var resA, resB [][]uint64
	for i := 1; i <= 40; i++ {
		enc := EncodeBatch(nil, entries(i))
		ba, err := DecodeBatch(enc)
		if err != nil {
			t.Fatal(err)
		}
		ra, errA := a.ApplyCommitted(ba, uint64(i))
		bb, _ := DecodeBatch(enc)
		rb, errB := b.ApplyCommitted(bb, uint64(i))
		if (errA == nil) != (errB == nil) || (i%4 == 2) != errors.Is(errA, ErrConflict) {
			t.Fatalf("entry %d: errors %v / %v", i, errA, errB)
		}
		resA, resB = append(resA, ra), append(resB, rb)
		if i == 20 { // b restarts
			b.Close()
			b = mustOpen(t, dirB)
			if got := b.AppliedIndex(); got != 20 {
				t.Fatalf("applied index after restart %d, want 20", got)
			}
		}
	}
	for i := range resA {
		if !equalU64(resA[i], resB[i]) {
			t.Fatalf("entry %d: results %v / %v", i+1, resA[i], resB[i])
		}
	}
	if r, err := a.ApplyCommitted(entries(1), 5); r != nil || err != nil {
		t.Fatalf("an entry applied before is skipped, got %v %v", r, err)
	}
	var sa, sb bytes.Buffer
	snapA, snapB := a.Snapshot(), b.Snapshot()
	defer snapA.Release()
	defer snapB.Release()
	if _, err := snapA.WriteTo(&sa); err != nil {
		t.Fatal(err)
	}
	if _, err := snapB.WriteTo(&sb); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sa.Bytes(), sb.Bytes()) || snapA.Index != 40 {
		t.Fatalf("replicas differ (%d / %d bytes) or index %d", sa.Len(), sb.Len(), snapA.Index)
	}
	// A third replica restores from the snapshot and continues.
	c := mustOpen(t, t.TempDir())
	var junk Batch
	junk.Put([]byte("junk"), []byte("x"), AnyVersion)
	if _, err := c.Apply(context.Background(), &junk); err != nil {
		t.Fatal(err)
	}
	idx, err := c.Restore(bytes.NewReader(sa.Bytes()))
	if err != nil || idx != 40 {
		t.Fatalf("restore: %d %v", idx, err)
	}
	if _, _, err := c.Get(context.Background(), []byte("junk")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("restore kept old data: %v", err)
	}
	ra, _ := a.ApplyCommitted(entries(41), 41)
	rc, _ := c.ApplyCommitted(entries(41), 41)
	if !equalU64(ra, rc) {
		t.Fatalf("after restore: %v / %v", ra, rc)
	}
}

func TestDecodeBatchRejectsGarbage(t *testing.T) {
	var b Batch
	b.Put([]byte("key"), []byte("value"), 3)
	enc := EncodeBatch(nil, &b)
	for n := range len(enc) {
		if _, err := DecodeBatch(enc[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: decoded", n)
		}
	}
	if _, err := DecodeBatch(append(enc, 0)); err == nil {
		t.Fatal("trailing byte: decoded")
	}
}

func mustOpen(t *testing.T, dir string) *DB {
	t.Helper()
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
