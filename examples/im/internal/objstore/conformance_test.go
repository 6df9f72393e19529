package objstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

// testStore checks the Store contract; every implementation runs it.
func testStore(t *testing.T, s Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	put := func(key string, data []byte) {
		t.Helper()
		if err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	read := func(key string) []byte {
		t.Helper()
		o, err := s.Open(ctx, key)
		if err != nil {
			t.Fatalf("open %s: %v", key, err)
		}
		defer o.Close()
		b, err := io.ReadAll(o)
		if err != nil {
			t.Fatalf("read %s: %v", key, err)
		}
		if o.Info().Size != int64(len(b)) {
			t.Fatalf("%s: info says %d bytes, read %d", key, o.Info().Size, len(b))
		}
		return b
	}
	list := func(prefix string) []string {
		t.Helper()
		var keys []string
		if err := s.List(ctx, prefix, func(i Info) error { keys = append(keys, i.Key); return nil }); err != nil {
			t.Fatalf("list %q: %v", prefix, err)
		}
		slices.Sort(keys)
		return keys
	}

	t.Run("put, open, stat, range", func(t *testing.T) {
		data := bytes.Repeat([]byte("0123456789"), 100_000) // 1 MB
		put("blobs/ab/abcdef", data)
		if got := read("blobs/ab/abcdef"); !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes, not what was put", len(got))
		}
		info, err := s.Stat(ctx, "blobs/ab/abcdef")
		if err != nil || info.Size != int64(len(data)) || info.Key != "blobs/ab/abcdef" {
			t.Fatalf("stat: %+v, %v", info, err)
		}
		if d := time.Since(info.ModTime); d < -time.Minute || d > time.Minute {
			t.Fatalf("mod time %v is not about now", info.ModTime)
		}
		o, err := s.Open(ctx, "blobs/ab/abcdef")
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		buf := make([]byte, 10)
		if _, err := o.ReadAt(buf, 999_990); err != nil || string(buf) != "0123456789" {
			t.Fatalf("ReadAt near the end: %q, %v", buf, err)
		}
		if _, err := o.Seek(500_003, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(o, buf[:4]); err != nil || string(buf[:4]) != "3456" {
			t.Fatalf("read after seek: %q, %v", buf[:4], err)
		}
	})

	t.Run("replace", func(t *testing.T) {
		put("media/x1", []byte("old"))
		put("media/x1", []byte("new and longer"))
		if got := read("media/x1"); string(got) != "new and longer" {
			t.Fatalf("got %q", got)
		}
	})

	t.Run("empty object", func(t *testing.T) {
		put("grants/m1/7", nil)
		if got := read("grants/m1/7"); len(got) != 0 {
			t.Fatalf("got %q", got)
		}
	})

	t.Run("not found", func(t *testing.T) {
		if _, err := s.Open(ctx, "media/none"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("open: %v", err)
		}
		if _, err := s.Stat(ctx, "media/none"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("stat: %v", err)
		}
		if err := s.Delete(ctx, "media/none"); err != nil {
			t.Fatalf("deleting a missing key: %v", err)
		}
		if ok, err := s.DeleteIfOlder(ctx, "media/none", time.Now()); ok || err != nil {
			t.Fatalf("DeleteIfOlder of a missing key: %v, %v", ok, err)
		}
	})

	t.Run("wrong size stores nothing", func(t *testing.T) {
		for _, tc := range []struct {
			data string
			size int64
		}{{"short", 10}, {"longer than said", 4}} {
			err := s.Put(ctx, "media/sized", strings.NewReader(tc.data), tc.size)
			if err == nil {
				t.Fatalf("put of %d bytes as %d succeeded", len(tc.data), tc.size)
			}
			if _, err := s.Stat(ctx, "media/sized"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("after a failed put: %v", err)
			}
		}
	})

	t.Run("invalid keys", func(t *testing.T) {
		for _, k := range []string{"", "/abs", "a//b", "a/../b", "..", "a/./b", "sp ace", "a\\b", "trail/", strings.Repeat("k", MaxKeyLen+1)} {
			if err := s.Put(ctx, k, strings.NewReader("x"), 1); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("put %q: %v, want ErrInvalidKey", k, err)
			}
			if _, err := s.Open(ctx, k); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("open %q: %v, want ErrInvalidKey", k, err)
			}
		}
	})

	t.Run("list", func(t *testing.T) {
		put("l/a/1", []byte("1"))
		put("l/a/2", []byte("22"))
		put("l/ab/3", []byte("333"))
		put("l/b", []byte("4444"))
		for prefix, want := range map[string][]string{
			"l/":    {"l/a/1", "l/a/2", "l/ab/3", "l/b"},
			"l/a/":  {"l/a/1", "l/a/2"},
			"l/a":   {"l/a/1", "l/a/2", "l/ab/3"},
			"l/b":   {"l/b"},
			"l/zz/": nil,
		} {
			if got := list(prefix); !slices.Equal(got, want) {
				t.Errorf("list %q = %q, want %q", prefix, got, want)
			}
		}
		stop := errors.New("stop")
		n := 0
		err := s.List(ctx, "l/", func(Info) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Fatalf("list stopped by fn: n=%d err=%v", n, err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		put("d/one/x", []byte("x"))
		if err := s.Delete(ctx, "d/one/x"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(ctx, "d/one/x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
		if got := list("d/"); len(got) != 0 {
			t.Fatalf("listed after delete: %q", got)
		}
		put("d/one/y", []byte("y")) // the emptied directory comes back
		if got := read("d/one/y"); string(got) != "y" {
			t.Fatalf("got %q", got)
		}
	})

	t.Run("delete if older", func(t *testing.T) {
		put("old/k", []byte("v"))
		info, err := s.Stat(ctx, "old/k")
		if err != nil {
			t.Fatal(err)
		}
		// S3 keeps modification times in whole seconds.
		if ok, err := s.DeleteIfOlder(ctx, "old/k", info.ModTime.Add(-time.Second)); ok || err != nil {
			t.Fatalf("deleted an object newer than the cutoff: %v, %v", ok, err)
		}
		if got := read("old/k"); string(got) != "v" {
			t.Fatalf("after a refused DeleteIfOlder: %q", got)
		}
		if ok, err := s.DeleteIfOlder(ctx, "old/k", info.ModTime.Add(2*time.Second)); !ok || err != nil {
			t.Fatalf("did not delete an object older than the cutoff: %v, %v", ok, err)
		}
		if _, err := s.Stat(ctx, "old/k"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after DeleteIfOlder: %v", err)
		}
	})

	t.Run("put file", func(t *testing.T) {
		path := t.TempDir() + "/f"
		writeFile(t, path, "from a file")
		if err := PutFile(ctx, s, "files/f", path); err != nil {
			t.Fatal(err)
		}
		if got := read("files/f"); string(got) != "from a file" {
			t.Fatalf("got %q", got)
		}
		if fileExists(path) {
			t.Fatalf("PutFile left %s", path)
		}
	})
}
