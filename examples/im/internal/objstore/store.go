// Package objstore keeps the IM backend's media: immutable objects by key,
// behind a small interface with two implementations.
//
//   - Dir, the embedded default: one file per object under a directory on
//     the local disk, written to a temporary file, fsync'd, renamed into
//     place and its directory fsync'd. Several processes on one machine may
//     share a Dir (the sendmedia Logicsvr's replicas do).
//   - S3, for deployments beyond one machine: any S3-compatible service
//     (AWS S3, MinIO, SeaweedFS) through minio-go.
//
// # What a Store guarantees
//
// An object is visible whole or not at all: a reader never sees part of a
// Put, and a crash during a Put leaves the old object (or none), never a
// mix. An answered Put is durable. Objects are never modified in place;
// Put replaces an object whole. Open returns a snapshot: an object deleted
// or replaced while open reads on as it was (Dir), or fails (S3).
//
// Keys are paths of segments of letters, digits, '.', '_' and '-' joined by
// '/', at most MaxKeyLen bytes, without empty, "." or ".." segments, so a
// key maps to a file name without escaping the directory.
//
// # Reclaiming with DeleteIfOlder
//
// Users of a Store that deduplicate by content (the sendmedia Logicsvr
// keys blobs by their SHA-256) reclaim an object by sweeping: list the
// references, then delete the unreferenced objects that are older than a
// grace period. The danger is a writer that adds a reference to an object
// between the sweeper's listing and its delete. DeleteIfOlder narrows that
// to nothing on Dir: the writer writes its reference first and its object
// (again, whole) second, so the object's modification time is at least the
// reference's; DeleteIfOlder moves the object aside atomically (a rename),
// looks at the modification time of what it moved, and puts it back if it
// is new. So an object written after the sweep's cutoff is never deleted,
// and one written before it had its reference listed by the sweep. On S3
// the check and the delete are two requests: a Put landing between them is
// lost. The window is one round trip, and needs the same content to be
// uploaded at that moment while its last reference has just gone; S3 has no
// conditional delete to close it.
package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// MaxKeyLen bounds a key.
const MaxKeyLen = 512

// ErrNotFound is returned (wrapped) by Open and Stat for a missing object.
var ErrNotFound = errors.New("objstore: no such object")

// ErrInvalidKey is returned (wrapped) for a key that breaks the rules of
// the package doc.
var ErrInvalidKey = errors.New("objstore: invalid key")

// Info describes an object.
type Info struct {
	Key  string
	Size int64
	// ModTime is when the object was last put.
	ModTime time.Time
}

// Object is an open object. It is an io.ReadSeeker (for http.ServeContent)
// and an io.ReaderAt; it is not safe for concurrent use except ReadAt.
type Object interface {
	io.ReadSeeker
	io.ReaderAt
	io.Closer
	Info() Info
}

// Store holds immutable objects by key (see the package doc). Its methods
// are safe for concurrent use.
type Store interface {
	// Put stores the size bytes r yields under key, replacing any object
	// there. It fails, storing nothing, if r yields fewer or more bytes.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Open returns the object at key, or ErrNotFound.
	Open(ctx context.Context, key string) (Object, error)
	// Stat describes the object at key, or returns ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes the object at key; a missing one is not an error.
	Delete(ctx context.Context, key string) error
	// DeleteIfOlder removes the object at key if it was last put before
	// cutoff, and reports whether it did (see the package doc).
	DeleteIfOlder(ctx context.Context, key string, cutoff time.Time) (bool, error)
	// List calls fn with every object whose key starts with prefix, in no
	// particular order, until fn returns an error, which List returns.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// Close releases the store's resources.
	Close() error
}

// fileMover is a Store that can take a whole local file as an object
// without copying it.
type fileMover interface {
	moveFile(ctx context.Context, key, path string) error
}

// PutFile stores the local file at path under key and removes the file.
// Dir renames the file into place when it is on the same file system (no
// copy); other stores upload it.
func PutFile(ctx context.Context, s Store, key, path string) error {
	if m, ok := s.(fileMover); ok {
		return m.moveFile(ctx, key, path)
	}
	return putCopy(ctx, s, key, path)
}

// putCopy puts a copy of the file at path and removes the file.
func putCopy(ctx context.Context, s Store, key, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := s.Put(ctx, key, f, st.Size()); err != nil {
		return err
	}
	return os.Remove(path)
}

// CheckKey returns an error wrapping ErrInvalidKey if key breaks the
// rules of the package doc.
func CheckKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return fmt.Errorf("%w: %d bytes (1 to %d)", ErrInvalidKey, len(key), MaxKeyLen)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q has an empty, . or .. segment", ErrInvalidKey, key)
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
				return fmt.Errorf("%w: %q has the byte %q", ErrInvalidKey, key, c)
			}
		}
	}
	return nil
}

// exactReader fails a Put whose reader does not yield exactly size bytes.
type exactReader struct {
	r    io.Reader
	left int64
}

var errSize = errors.New("objstore: the reader yielded more or fewer bytes than the size given")

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		// One more read to see the end: a longer reader is an error.
		var one [1]byte
		if n, _ := e.r.Read(one[:]); n > 0 {
			return 0, errSize
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, errSize
	}
	return n, err
}
