package kv

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// BenchmarkPut measures a synced conditional Put (create, then CAS updates)
// of one key per goroutine; with -cpu above 1, writers share fsyncs.
func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	db := openTest(b, "")
	value := make([]byte, 100)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := fmt.Appendf(nil, "bench/%d", next.Add(1))
		ver := uint64(0)
		for pb.Next() {
			v, err := db.Put(ctx, key, value, ver)
			if err != nil {
				b.Error(err)
				return
			}
			ver = v
		}
	})
}

// BenchmarkGet measures a point read of a 100-byte value.
func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	db := openTest(b, "")
	const keys = 1000
	for i := range keys {
		if _, err := db.Put(ctx, binary.BigEndian.AppendUint32(nil, uint32(i)), make([]byte, 100), 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, _, err := db.Get(ctx, binary.BigEndian.AppendUint32(nil, uint32(i%keys))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppend measures a synced Append of a 64-byte entry to a row.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	db := openTest(b, "")
	value := make([]byte, 64)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		row := fmt.Appendf(nil, "row/%d", next.Add(1))
		for pb.Next() {
			if _, err := db.Append(ctx, row, value); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkScan measures reading a page of 100 entries of 64 bytes.
func BenchmarkScan(b *testing.B) {
	ctx := context.Background()
	db := openTest(b, "")
	row := []byte("row")
	var bt Batch
	for range 1000 {
		bt.Append(row, make([]byte, 64))
	}
	if _, err := db.Apply(ctx, &bt); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		res, err := db.Scan(ctx, row, uint64(i%900), 100)
		if err != nil || len(res.Entries) != 100 {
			b.Fatal(len(res.Entries), err)
		}
	}
}

// BenchmarkPebbleSetSync is the peer BenchmarkPut is measured against: a
// bare pebble Set with pebble.Sync of the same key and value sizes, no
// version read, no condition, no stripe lock. The difference is what CAS
// costs.
func BenchmarkPebbleSetSync(b *testing.B) {
	db := openTest(b, "")
	value := make([]byte, 109) // a KV record: format, version, 100-byte value
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := kvKey(nil, fmt.Appendf(nil, "bench/%d", next.Add(1)))
		for pb.Next() {
			if err := db.pdb.Set(key, value, pebble.Sync); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGetMissing measures a point read of a key that does not exist
// among 50,000 flushed to sstables: the inbox's dedup lookup on every
// Deliver, which is almost always a miss. BenchmarkPebbleGetMissing is its
// peer: the same read on bare pebble.
func BenchmarkGetMissing(b *testing.B) {
	ctx := context.Background()
	db := fillMissingBench(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, _, err := db.Get(ctx, missingKey(i)); !errors.Is(err, ErrNotFound) {
			b.Fatal(err)
		}
	}
}

// BenchmarkPebbleGetMissing is BenchmarkGetMissing's peer: pebble's own
// Get of the same missing keys, without kv's record decoding and errors.
func BenchmarkPebbleGetMissing(b *testing.B) {
	db := fillMissingBench(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, _, err := db.pdb.Get(kvKey(nil, missingKey(i))); !errors.Is(err, pebble.ErrNotFound) {
			b.Fatal(err)
		}
	}
}

const missingBenchKeys = 50000

// fillMissingBench stores the even keys 0..2·missingBenchKeys and flushes
// them to sstables.
func fillMissingBench(b *testing.B) *DB {
	ctx := context.Background()
	db := openTest(b, "")
	for i := 0; i < missingBenchKeys; i += 500 {
		var batch Batch
		batch.NoSync = true
		for j := i; j < i+500; j++ {
			batch.Put(binary.BigEndian.AppendUint32([]byte("k"), uint32(2*j)), make([]byte, 100), AnyVersion)
		}
		if _, err := db.Apply(ctx, &batch); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.pdb.Flush(); err != nil {
		b.Fatal(err)
	}
	return db
}

// missingKey returns an odd key, which fillMissingBench never stored.
func missingKey(i int) []byte {
	return binary.BigEndian.AppendUint32([]byte("k"), uint32(2*(i%missingBenchKeys)+1))
}
