package objstore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func openDir(t *testing.T, root string) *Dir {
	t.Helper()
	d, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestDir(t *testing.T) {
	testStore(t, openDir(t, t.TempDir()))
}

// TestDirRecover: what a crash leaves — a temporary file of a Put that
// never finished, an object moved aside by a DeleteIfOlder that never
// finished — is cleaned up or put back when the store is opened again,
// and never visible as an object meanwhile.
func TestDirRecover(t *testing.T) {
	root := t.TempDir()
	d := openDir(t, root)
	ctx := context.Background()
	if err := d.Put(ctx, "blobs/k", strings.NewReader("kept"), 4); err != nil {
		t.Fatal(err)
	}
	// A half-written Put, an hour old.
	stale := filepath.Join(root, "tmp", "put-123")
	writeFile(t, stale, "half")
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	young := filepath.Join(root, "tmp", "put-456") // another process's, in progress
	writeFile(t, young, "in progress")
	// An object moved aside when the process died.
	if err := os.MkdirAll(filepath.Join(root, "trash", "blobs"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "objects", "blobs", "k"), filepath.Join(root, "trash", "blobs", "k")); err != nil {
		t.Fatal(err)
	}
	// Still readable while aside.
	if o, err := d.Open(ctx, "blobs/k"); err != nil {
		t.Fatalf("open while moved aside: %v", err)
	} else {
		o.Close()
	}
	var listed []string
	_ = d.List(ctx, "", func(i Info) error { listed = append(listed, i.Key); return nil })
	if len(listed) != 0 {
		t.Fatalf("listed %q: temporary or trashed files must not be listed", listed)
	}

	openDir(t, root)
	if fileExists(stale) {
		t.Error("the stale temporary file was not removed")
	}
	if !fileExists(young) {
		t.Error("a young temporary file (another process's Put) was removed")
	}
	if !fileExists(filepath.Join(root, "objects", "blobs", "k")) || fileExists(filepath.Join(root, "trash", "blobs", "k")) {
		t.Error("the object moved aside was not put back")
	}
}

// TestDirDeleteIfOlderPutsBackANewWrite is the race the package doc
// describes: the sweeper saw an old object, and before it deletes it a
// writer puts the key again. What the sweeper then moves aside is the new
// object, which it puts back.
func TestDirDeleteIfOlderPutsBackANewWrite(t *testing.T) {
	d := openDir(t, t.TempDir())
	ctx := context.Background()
	if err := d.Put(ctx, "blobs/k", strings.NewReader("v1"), 2); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(d.path("blobs/k"), old, old); err != nil {
		t.Fatal(err)
	}
	cutoff := time.Now().Add(-time.Minute)
	// DeleteIfOlder's first look happens here: v1 is older than cutoff.
	// The writer puts the key again (moveFile, as the sendmedia Logicsvr
	// does); then the sweeper goes on.
	path := filepath.Join(t.TempDir(), "new")
	writeFile(t, path, "v2")
	if err := d.moveFile(ctx, "blobs/k", path); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.deleteAside("blobs/k", cutoff); ok || err != nil {
		t.Fatalf("deleted the new object: %v %v", ok, err)
	}
	o, err := d.Open(ctx, "blobs/k")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if b := make([]byte, 2); func() bool { _, err := o.ReadAt(b, 0); return err != nil || string(b) != "v2" }() {
		t.Fatal("the object is not v2")
	}
	if fileExists(d.trashPath("blobs/k")) {
		t.Fatal("left in the trash")
	}
	// Without the writer, the old object goes.
	if err := os.Chtimes(d.path("blobs/k"), old, old); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.DeleteIfOlder(ctx, "blobs/k", cutoff); !ok || err != nil {
		t.Fatalf("old object not deleted: %v %v", ok, err)
	}
}
