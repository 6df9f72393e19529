package handlers

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
)

// staging keeps uploads in progress, one directory each:
//
//	<id>/record    the UploadRecord, written (and fsync'd) at start
//	<id>/data      the file; each chunk written at its offset and fsync'd
//	<id>/chunks    one byte per chunk, 1 once the chunk's bytes are durable;
//	               its modification time is the upload's last activity
//	<id>/verified  present once CompleteUpload has checked the SHA-256
//
// A chunk's mark is written only after its bytes are fsync'd, and the
// chunk is acknowledged after that: GetUpload never reports a range whose
// bytes are not durable. A crash of the process loses nothing acknowledged;
// a crash of the machine may lose marks written since the last fsync of
// the marks file, and the client then sends those chunks again.
//
// Chunks of one upload may be written concurrently (they are disjoint);
// CompleteUpload and removal take the upload's lock exclusively. Another
// process sharing the directory (a replica on the same machine) is safe
// for chunks; completing the same upload in two processes at once does the
// work twice, with the same result.
type staging struct {
	dir string

	mu    sync.Mutex
	locks map[string]*uploadLock
	// open counts each user's uploads in progress, as this process sees
	// them (MAX_OPEN_UPLOADS).
	open map[uint64]int
}

type uploadLock struct {
	sync.RWMutex
	refs int
}

func openStaging(dir string) (*staging, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	st := &staging{dir: dir, locks: map[string]*uploadLock{}, open: map[uint64]int{}}
	ids, err := st.list()
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if rec, err := st.record(id); err == nil {
			st.open[rec.GetOwnerUserId()]++
		}
	}
	return st, nil
}

// newUploadID returns 16 random bytes in hex.
func newUploadID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validID reports whether id could be an upload or media id.
func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// lock returns the upload's lock, to be released with unlock.
func (st *staging) lock(id string) *uploadLock {
	st.mu.Lock()
	defer st.mu.Unlock()
	l := st.locks[id]
	if l == nil {
		l = &uploadLock{}
		st.locks[id] = l
	}
	l.refs++
	return l
}

func (st *staging) unlock(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if l := st.locks[id]; l != nil {
		if l.refs--; l.refs == 0 {
			delete(st.locks, id)
		}
	}
}

func (st *staging) path(id, name string) string { return filepath.Join(st.dir, id, name) }

// create starts an upload, refusing a user's upload past maxOpen.
func (st *staging) create(rec *im.UploadRecord, maxOpen int) error {
	st.mu.Lock()
	if st.open[rec.GetOwnerUserId()] >= maxOpen {
		st.mu.Unlock()
		return errTooManyUploads
	}
	st.open[rec.GetOwnerUserId()]++
	st.mu.Unlock()
	err := st.write(rec)
	if err != nil {
		st.forget(rec.GetOwnerUserId())
		_ = os.RemoveAll(filepath.Join(st.dir, rec.GetUploadId()))
	}
	return err
}

var errTooManyUploads = errors.New("too many uploads in progress")

func (st *staging) write(rec *im.UploadRecord) error {
	dir := filepath.Join(st.dir, rec.GetUploadId())
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	b, err := proto.Marshal(rec)
	if err != nil {
		return err
	}
	if err := writeSynced(filepath.Join(dir, "record"), b); err != nil {
		return err
	}
	n := (rec.GetSize() + int64(rec.GetChunkSize()) - 1) / int64(rec.GetChunkSize())
	if err := writeSynced(filepath.Join(dir, "chunks"), make([]byte, n)); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, "data"), os.O_CREATE|os.O_RDWR|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(dir, st.dir)
}

func (st *staging) forget(owner uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.open[owner]--; st.open[owner] <= 0 {
		delete(st.open, owner)
	}
}

// record reads an upload's record; fs.ErrNotExist when there is none.
func (st *staging) record(id string) (*im.UploadRecord, error) {
	b, err := os.ReadFile(st.path(id, "record"))
	if err != nil {
		return nil, err
	}
	rec := &im.UploadRecord{}
	if err := proto.Unmarshal(b, rec); err != nil {
		return nil, fmt.Errorf("upload %s: record does not decode: %w", id, err)
	}
	return rec, nil
}

// chunks returns the upload's chunk bitmap and its last activity.
func (st *staging) chunks(id string) ([]byte, time.Time, error) {
	f, err := os.Open(st.path(id, "chunks"))
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	b, err := io.ReadAll(f)
	return b, fi.ModTime(), err
}

// writeChunk stores chunk i of an upload at off: the bytes, fsync'd, then
// its mark. A chunk already stored is compared instead: the same bytes are
// a retry (nothing written), others errChunkDiffers.
func (st *staging) writeChunk(id string, i int64, off int64, data []byte) error {
	marks, err := os.OpenFile(st.path(id, "chunks"), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer marks.Close()
	var mark [1]byte
	if _, err := marks.ReadAt(mark[:], i); err != nil {
		return fmt.Errorf("upload %s: chunk mark %d: %w", id, i, err)
	}
	f, err := os.OpenFile(st.path(id, "data"), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	now := time.Now()
	if mark[0] == 1 {
		have := make([]byte, len(data))
		if _, err := f.ReadAt(have, off); err != nil {
			return fmt.Errorf("upload %s: reading chunk %d: %w", id, i, err)
		}
		if !bytes.Equal(have, data) {
			return errChunkDiffers
		}
		return os.Chtimes(st.path(id, "chunks"), now, now) // still active
	}
	if _, err := f.WriteAt(data, off); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	// The mark needs no fsync of its own: it is written after the bytes
	// are durable, so a mark on disk always has its bytes; a crash of the
	// machine that loses it only makes the client send the chunk again.
	_, err = marks.WriteAt([]byte{1}, i) // also moves the last activity
	return err
}

var errChunkDiffers = errors.New("chunk already stored with different bytes")

// verified reports whether CompleteUpload already checked the upload's
// hash; markVerified records that it did.
func (st *staging) verified(id string) bool {
	_, err := os.Stat(st.path(id, "verified"))
	return err == nil
}

func (st *staging) markVerified(id string) error {
	return writeSynced(st.path(id, "verified"), nil)
}

// remove deletes an upload's directory (complete, expired or refused).
func (st *staging) remove(id string, owner uint64) error {
	err := os.RemoveAll(filepath.Join(st.dir, id))
	if err == nil {
		st.forget(owner)
	}
	return err
}

// list returns the ids of the uploads staged.
func (st *staging) list() ([]string, error) {
	es, err := os.ReadDir(st.dir)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range es {
		if e.IsDir() && validID(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// writeSynced writes a small file and fsyncs it.
func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir fsyncs directories, so the entries made in them are durable.
func syncDir(dirs ...string) error {
	for _, d := range dirs {
		f, err := os.Open(d)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
