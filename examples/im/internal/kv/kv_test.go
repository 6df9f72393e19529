package kv

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

func openTest(t testing.TB, dir string) *DB {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func wantKind(t *testing.T, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v: want kind %v", err, kind)
	}
}

func TestPutGetCAS(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, "")
	k := []byte("user/1/profile")

	_, _, err := db.Get(ctx, k)
	wantKind(t, err, ErrNotFound)

	v1, err := db.Put(ctx, k, []byte("a"), 0)
	if err != nil || v1 == 0 {
		t.Fatalf("create: %d, %v", v1, err)
	}
	val, ver, err := db.Get(ctx, k)
	if err != nil || string(val) != "a" || ver != v1 {
		t.Fatalf("get = %q, %d, %v; want a, %d", val, ver, err, v1)
	}

	steps := []struct {
		name   string
		expect uint64 // 1<<62 stands for "the current version"
		wantOK bool
	}{
		{"create again fails", 0, false},
		{"stale version fails", v1 - 1, false},
		{"future version fails", v1 + 1000, false},
		{"current version wins", 1 << 62, true},
		{"any version wins", AnyVersion, true},
	}
	cur := v1
	for _, s := range steps {
		expect := s.expect
		if expect == 1<<62 {
			expect = cur
		}
		nv, err := db.Put(ctx, k, []byte(s.name), expect)
		if !s.wantOK {
			wantKind(t, err, ErrConflict)
			var ce *ConflictError
			if !errors.As(err, &ce) || ce.Actual != cur || ce.Expected != expect || string(ce.Key) != string(k) {
				t.Fatalf("%s: conflict details %+v, want actual %d expected %d", s.name, ce, cur, expect)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if nv <= cur {
			t.Fatalf("%s: version %d not above %d", s.name, nv, cur)
		}
		cur = nv
		if val, ver, _ := db.Get(ctx, k); string(val) != s.name || ver != cur {
			t.Fatalf("%s: get = %q, %d", s.name, val, ver)
		}
	}

	// Delete: conditional, and a re-created key never reuses a version.
	wantKind(t, db.Delete(ctx, k, cur-1), ErrConflict)
	if err := db.Delete(ctx, k, cur); err != nil {
		t.Fatal(err)
	}
	_, _, err = db.Get(ctx, k)
	wantKind(t, err, ErrNotFound)
	if err := db.Delete(ctx, k, 0); err != nil {
		t.Fatalf("delete of absent key with expect 0: %v", err)
	}
	wantKind(t, db.Delete(ctx, k, cur), ErrConflict)
	_, err = db.Put(ctx, k, []byte("again"), cur) // ABA: the old version must not match
	wantKind(t, err, ErrConflict)
	nv, err := db.Put(ctx, k, []byte("again"), 0)
	if err != nil || nv <= cur {
		t.Fatalf("re-create: %d, %v; want a version above %d", nv, err, cur)
	}
}

func TestEmptyValue(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, "")
	v, err := db.Put(ctx, []byte("k"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	val, ver, err := db.Get(ctx, []byte("k"))
	if err != nil || len(val) != 0 || ver != v {
		t.Fatalf("get = %q, %d, %v", val, ver, err)
	}
}

func TestInvalidArguments(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, "")
	long := []byte(strings.Repeat("k", MaxKeyLen+1))
	big := make([]byte, MaxValueLen+1)
	cases := []struct {
		name string
		run  func() error
	}{
		{"get empty key", func() error { _, _, err := db.Get(ctx, nil); return err }},
		{"put long key", func() error { _, err := db.Put(ctx, long, nil, 0); return err }},
		{"put big value", func() error { _, err := db.Put(ctx, []byte("k"), big, 0); return err }},
		{"append empty row", func() error { _, err := db.Append(ctx, nil, nil); return err }},
		{"entry version 0", func() error { return db.PutEntry(ctx, []byte("r"), 0, nil) }},
		{"entry version max", func() error { return db.PutEntry(ctx, []byte("r"), math.MaxUint64, nil) }},
		{"scan negative limit", func() error { _, err := db.Scan(ctx, []byte("r"), 0, -1); return err }},
		{"scan huge limit", func() error { _, err := db.Scan(ctx, []byte("r"), 0, MaxScanLimit+1); return err }},
		{"meta long row", func() error { _, err := db.RowMeta(ctx, long); return err }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantKind(t, c.run(), ErrInvalid)
		})
	}
	// Nothing of a rejected batch is written.
	var b Batch
	b.Put([]byte("ok"), []byte("x"), 0)
	b.Put([]byte("bad"), big, 0)
	_, err := db.Apply(ctx, &b)
	wantKind(t, err, ErrInvalid)
	_, _, err = db.Get(ctx, []byte("ok"))
	wantKind(t, err, ErrNotFound)
}

func TestKeyTable(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, "")
	row := []byte("inbox/7")

	res, err := db.Scan(ctx, row, 0, 10)
	if err != nil || len(res.Entries) != 0 || res.More || res.Meta != (RowMeta{}) {
		t.Fatalf("empty row scan = %+v, %v", res, err)
	}
	for i := 1; i <= 5; i++ {
		v, err := db.Append(ctx, row, fmt.Appendf(nil, "m%d", i))
		if err != nil || v != uint64(i) {
			t.Fatalf("append %d: version %d, %v", i, v, err)
		}
	}
	// Explicit versions with gaps, as a seq allocator produces them.
	for _, v := range []uint64{10, 11, 20} {
		if err := db.PutEntry(ctx, row, v, fmt.Appendf(nil, "m%d", v)); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []uint64{20, 19, 3} {
		err := db.PutEntry(ctx, row, v, nil)
		wantKind(t, err, ErrConflict)
		var ce *ConflictError
		if !errors.As(err, &ce) || !ce.Row || ce.Actual != 20 || ce.Expected != v {
			t.Fatalf("conflict details %+v", ce)
		}
	}
	all := []uint64{1, 2, 3, 4, 5, 10, 11, 20}

	scans := []struct {
		after     uint64
		limit     int
		want      []uint64
		wantMore  bool
		wantMeta  RowMeta
		afterTrim bool
	}{
		{after: 0, limit: 100, want: all, wantMeta: RowMeta{MaxVersion: 20}},
		{after: 0, limit: 3, want: all[:3], wantMore: true, wantMeta: RowMeta{MaxVersion: 20}},
		{after: 3, limit: 3, want: []uint64{4, 5, 10}, wantMore: true, wantMeta: RowMeta{MaxVersion: 20}},
		{after: 6, limit: 2, want: []uint64{10, 11}, wantMore: true, wantMeta: RowMeta{MaxVersion: 20}},
		{after: 11, limit: 1, want: []uint64{20}, wantMeta: RowMeta{MaxVersion: 20}},
		{after: 20, limit: 5, want: nil, wantMeta: RowMeta{MaxVersion: 20}},
		{after: 0, limit: 0, want: nil, wantMore: true, wantMeta: RowMeta{MaxVersion: 20}},
		{after: math.MaxUint64, limit: 5, want: nil, wantMeta: RowMeta{MaxVersion: 20}},
	}
	for _, s := range scans {
		checkScan(t, db, row, s.after, s.limit, s.want, s.wantMore, s.wantMeta)
	}

	// Trim: deletes <= upto, keeps max, clamps to max.
	if w, err := db.Trim(ctx, row, 10); err != nil || w != 10 {
		t.Fatalf("trim: %d, %v", w, err)
	}
	checkScan(t, db, row, 0, 100, []uint64{11, 20}, false, RowMeta{MaxVersion: 20, TrimmedUpTo: 10})
	if w, err := db.Trim(ctx, row, 4); err != nil || w != 10 {
		t.Fatalf("trim below watermark: %d, %v", w, err)
	}
	if w, err := db.Trim(ctx, row, 1000); err != nil || w != 20 {
		t.Fatalf("trim past max: %d, %v", w, err)
	}
	checkScan(t, db, row, 0, 100, nil, false, RowMeta{MaxVersion: 20, TrimmedUpTo: 20})
	// The row's versions continue above the old max.
	if v, err := db.Append(ctx, row, []byte("after")); err != nil || v != 21 {
		t.Fatalf("append after trim: %d, %v", v, err)
	}
	checkScan(t, db, row, 0, 100, []uint64{21}, false, RowMeta{MaxVersion: 21, TrimmedUpTo: 20})

	// Rows are independent, including rows that are prefixes of each other.
	for _, other := range [][]byte{[]byte("inbox/"), []byte("inbox/77"), []byte("inbox/7\x00")} {
		checkScan(t, db, other, 0, 100, nil, false, RowMeta{})
	}
	// A KV key with the row's bytes is a different thing.
	if _, _, err := db.Get(ctx, row); !errors.Is(err, ErrNotFound) {
		t.Fatalf("row bytes as a KV key: %v", err)
	}
}

func checkScan(t *testing.T, db *DB, row []byte, after uint64, limit int, want []uint64, wantMore bool, wantMeta RowMeta) {
	t.Helper()
	res, err := db.Scan(context.Background(), row, after, limit)
	if err != nil {
		t.Fatalf("scan(%q, %d, %d): %v", row, after, limit, err)
	}
	var got []uint64
	for _, e := range res.Entries {
		got = append(got, e.Version)
		if string(e.Value) != fmt.Sprintf("m%d", e.Version) && string(e.Value) != "after" {
			t.Fatalf("scan(%q, %d, %d): entry %d has value %q", row, after, limit, e.Version, e.Value)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || res.More != wantMore || res.Meta != wantMeta {
		t.Fatalf("scan(%q, %d, %d) = %v more=%v meta=%+v; want %v more=%v meta=%+v",
			row, after, limit, got, res.More, res.Meta, want, wantMore, wantMeta)
	}
}

func TestBatchAtomic(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, "")
	a, b := []byte("a"), []byte("b")
	row := []byte("row")
	va, _ := db.Put(ctx, a, []byte("a1"), 0)

	// A batch whose last condition fails writes nothing.
	var bt Batch
	bt.Put(a, []byte("a2"), va)
	bt.Put(b, []byte("b1"), 0)
	bt.Append(row, []byte("e1"))
	bt.Trim(row, 1)
	bt.Check(a, va) // fails: the batch's own Put moved a's version
	_, err := db.Apply(ctx, &bt)
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Op != 4 {
		t.Fatalf("apply = %v; want a conflict at op 4", err)
	}
	if val, ver, _ := db.Get(ctx, a); string(val) != "a1" || ver != va {
		t.Fatalf("a changed by a failed batch: %q %d", val, ver)
	}
	if _, _, err := db.Get(ctx, b); !errors.Is(err, ErrNotFound) {
		t.Fatalf("b written by a failed batch: %v", err)
	}
	if m, _ := db.RowMeta(ctx, row); m != (RowMeta{}) {
		t.Fatalf("row written by a failed batch: %+v", m)
	}

	// The same batch, with the check of the version the batch itself wrote.
	bt.Reset()
	bt.Put(a, []byte("a2"), va)
	bt.Put(b, []byte("b1"), 0)
	bt.Append(row, []byte("e1"))
	bt.Append(row, []byte("e2"))
	bt.PutEntry(row, 9, []byte("e9"))
	bt.Trim(row, 1)
	res, err := db.Apply(ctx, &bt)
	if err != nil {
		t.Fatal(err)
	}
	if res[0] <= va || res[1] <= res[0] || res[2] != 1 || res[3] != 2 || res[4] != 9 || res[5] != 1 {
		t.Fatalf("results %v", res)
	}
	var bt2 Batch
	bt2.Check(a, res[0])
	bt2.Check(b, res[1])
	bt2.Delete(a, res[0])
	bt2.Put(a, []byte("a3"), 0) // re-create within the batch
	if res2, err := db.Apply(ctx, &bt2); err != nil || res2[3] <= res[1] {
		t.Fatalf("apply = %v, %v", res2, err)
	}
	r, _ := db.Scan(ctx, row, 0, 10)
	if len(r.Entries) != 2 || r.Entries[0].Version != 2 || r.Entries[1].Version != 9 || r.Meta != (RowMeta{MaxVersion: 9, TrimmedUpTo: 1}) {
		t.Fatalf("row = %+v", r)
	}

	// A batch of many distinct keys (exercises the state index).
	bt.Reset()
	for i := range 100 {
		bt.Put(fmt.Appendf(nil, "many/%d", i), []byte("x"), 0)
	}
	bt.Put([]byte("many/7"), []byte("y"), 0) // conflicts with the batch's own write
	if _, err := db.Apply(ctx, &bt); !errors.Is(err, ErrConflict) {
		t.Fatalf("apply = %v; want conflict", err)
	}
	if _, _, err := db.Get(ctx, []byte("many/0")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("many/0 written by a failed batch: %v", err)
	}
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	v1, _ := db.Put(ctx, []byte("k"), []byte("v"), 0)
	db.Append(ctx, []byte("r"), []byte("e"))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Get(ctx, []byte("k")); !errors.Is(err, ErrClosed) {
		t.Fatalf("get after close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}

	db = openTest(t, dir)
	val, ver, err := db.Get(ctx, []byte("k"))
	if err != nil || string(val) != "v" || ver != v1 {
		t.Fatalf("after reopen: %q %d %v", val, ver, err)
	}
	v2, err := db.Put(ctx, []byte("k"), []byte("w"), v1)
	if err != nil || v2 <= v1 {
		t.Fatalf("put after reopen: %d %v", v2, err)
	}
	if m, _ := db.RowMeta(ctx, []byte("r")); m.MaxVersion != 1 {
		t.Fatalf("row meta after reopen: %+v", m)
	}
}

func TestCanceledContext(t *testing.T) {
	db := openTest(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.Put(ctx, []byte("k"), nil, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("put: %v", err)
	}
	if _, err := db.Scan(ctx, []byte("r"), 0, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("scan: %v", err)
	}
}
