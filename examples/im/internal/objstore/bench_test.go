package objstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// The embedded store's choice: one file per object (Dir), or pebble for
// small objects (the records, grants and thumbnails media need, 100 B to
// 30 KiB) and files for the large. These benchmarks put and read objects of
// the three sizes media have, one writer and eight at once (pebble commits
// concurrent writers' syncs together), both durable: Dir fsyncs the file
// and its directory, pebble its WAL (pebble.Sync). Results and the decision
// are in the package README.

var benchSizes = []int{256, 16 << 10, 1 << 20}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// pebbleObjects is a Put/Get of objects in pebble, for the comparison only.
type pebbleObjects struct{ db *pebble.DB }

func (p *pebbleObjects) put(key string, data []byte) error {
	return p.db.Set([]byte(key), data, pebble.Sync)
}

func (p *pebbleObjects) get(key string) ([]byte, error) {
	v, closer, err := p.db.Get([]byte(key))
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return bytes.Clone(v), nil
}

type benchStore interface {
	put(key string, data []byte) error
	get(key string) ([]byte, error)
}

type dirObjects struct{ d *Dir }

func (d dirObjects) put(key string, data []byte) error {
	return d.d.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)))
}

func (d dirObjects) get(key string) ([]byte, error) {
	o, err := d.d.Open(context.Background(), key)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return io.ReadAll(o)
}

func benchStores(b *testing.B) map[string]benchStore {
	d, err := OpenDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	db, err := pebble.Open(b.TempDir(), &pebble.Options{Logger: silentPebble{}, FormatMajorVersion: pebble.FormatNewest})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return map[string]benchStore{"dir": dirObjects{d}, "pebble": &pebbleObjects{db}}
}

// BenchmarkPut: durable puts of new objects, one writer and eight.
func BenchmarkPut(b *testing.B) {
	for _, name := range []string{"dir", "pebble"} {
		for _, size := range benchSizes {
			for _, writers := range []int{1, 8} {
				b.Run(fmt.Sprintf("%s/%s/writers=%d", name, sizeName(size), writers), func(b *testing.B) {
					s := benchStores(b)[name]
					data := bytes.Repeat([]byte{'x'}, size)
					var n atomic.Int64
					b.SetBytes(int64(size))
					b.ReportAllocs()
					b.SetParallelism(writers)
					b.ResetTimer()
					if writers == 1 {
						for i := 0; b.Loop(); i++ {
							if err := s.put(fmt.Sprintf("blobs/%02x/%d", i%256, i), data); err != nil {
								b.Fatal(err)
							}
						}
						return
					}
					// SetParallelism(8) on GOMAXPROCS=2 runs 16 goroutines;
					// what matters is that writes overlap.
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							i := n.Add(1)
							if err := s.put(fmt.Sprintf("blobs/%02x/%d", i%256, i), data); err != nil {
								b.Error(err)
								return
							}
						}
					})
				})
			}
		}
	}
}

// BenchmarkGet: reads of objects just written (in the page cache).
func BenchmarkGet(b *testing.B) {
	for _, name := range []string{"dir", "pebble"} {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("%s/%s", name, sizeName(size)), func(b *testing.B) {
				s := benchStores(b)[name]
				data := bytes.Repeat([]byte{'x'}, size)
				const keys = 64
				for i := range keys {
					if err := s.put(fmt.Sprintf("blobs/%02x/%d", i, i), data); err != nil {
						b.Fatal(err)
					}
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					if _, err := s.get(fmt.Sprintf("blobs/%02x/%d", i%keys, i%keys)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

type silentPebble struct{}

func (silentPebble) Infof(string, ...any)         {}
func (silentPebble) Errorf(string, ...any)        {}
func (silentPebble) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }
