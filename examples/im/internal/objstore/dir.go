package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Dir is the embedded Store: one file per object under a directory.
//
//	root/objects/<key>   the objects
//	root/tmp/            Puts in progress (removed at open if an hour old:
//	                     another process sharing the directory may own a
//	                     younger one)
//	root/trash/<key>     an object DeleteIfOlder has moved aside for an
//	                     instant; Open looks here too, and OpenDir puts
//	                     back what a crash left here
//
// Put writes a temporary file, fsyncs it, renames it over root/objects/<key>
// and fsyncs the directory, so an answered Put survives a crash of the
// machine and a crash during a Put leaves no part of it visible.
type Dir struct {
	root string
}

// OpenDir opens (creating it if needed) the store under root.
func OpenDir(root string) (*Dir, error) {
	d := &Dir{root: root}
	for _, sub := range []string{"objects", "tmp", "trash"} {
		if err := mkdirAll(filepath.Join(root, sub)); err != nil {
			return nil, fmt.Errorf("objstore: %w", err)
		}
	}
	if err := d.recover(); err != nil {
		return nil, fmt.Errorf("objstore: recovering %s: %w", root, err)
	}
	return d, nil
}

// recover removes stale temporary files and puts back objects a crashed
// DeleteIfOlder left in the trash. Putting back is the safe side: the next
// sweep decides again.
func (d *Dir) recover() error {
	tmps, err := os.ReadDir(filepath.Join(d.root, "tmp"))
	if err != nil {
		return err
	}
	for _, e := range tmps {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
			_ = os.Remove(filepath.Join(d.root, "tmp", e.Name()))
		}
	}
	trash := filepath.Join(d.root, "trash")
	return filepath.WalkDir(trash, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(trash, p)
		dst := filepath.Join(d.root, "objects", rel)
		if err := mkdirAll(filepath.Dir(dst)); err != nil {
			return err
		}
		if err := os.Link(p, dst); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		return os.Remove(p)
	})
}

func (d *Dir) path(key string) string {
	return filepath.Join(d.root, "objects", filepath.FromSlash(key))
}

func (d *Dir) trashPath(key string) string {
	return filepath.Join(d.root, "trash", filepath.FromSlash(key))
}

// Put implements Store.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Join(d.root, "tmp"), "put-*")
	if err != nil {
		return fmt.Errorf("objstore: %w", err)
	}
	tmp := f.Name()
	_, err = io.Copy(f, &exactReader{r: r, left: size})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = d.place(tmp, key)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("objstore: put %s: %w", key, err)
	}
	return nil
}

// moveFile implements fileMover: the file becomes the object, with a
// modification time of now (DeleteIfOlder relies on it).
func (d *Dir) moveFile(ctx context.Context, key, path string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("objstore: %w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("objstore: %w", err)
	}
	now := time.Now()
	if err := os.Chtimes(path, now, now); err != nil {
		return fmt.Errorf("objstore: %w", err)
	}
	err = d.place(path, key)
	if errors.Is(err, syscall.EXDEV) {
		return putCopy(ctx, d, key, path) // another file system
	}
	if err != nil {
		return fmt.Errorf("objstore: put %s: %w", key, err)
	}
	return nil
}

// place renames the synced file src to key's path and syncs the
// directory. A concurrent Delete may remove the empty parent directory
// between the mkdir and the rename: then it tries again.
func (d *Dir) place(src, key string) error {
	dst := d.path(key)
	var err error
	for range 3 {
		if err = mkdirAll(filepath.Dir(dst)); err != nil {
			return err
		}
		if err = os.Rename(src, dst); !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(dst))
}

// Open implements Store. An object that DeleteIfOlder has moved aside for
// an instant is read from where it is.
func (d *Dir) Open(_ context.Context, key string) (Object, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	f, err := os.Open(d.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		f, err = os.Open(d.trashPath(key))
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("objstore: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("objstore: %w", err)
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return &dirObject{File: f, info: Info{Key: key, Size: st.Size(), ModTime: st.ModTime()}}, nil
}

type dirObject struct {
	*os.File
	info Info
}

func (o *dirObject) Info() Info { return o.info }

// OSFile returns the open file, for http.ServeContent to send with
// sendfile.
func (o *dirObject) OSFile() *os.File { return o.File }

// Stat implements Store.
func (d *Dir) Stat(_ context.Context, key string) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, err
	}
	st, err := os.Stat(d.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		st, err = os.Stat(d.trashPath(key))
	}
	if errors.Is(err, fs.ErrNotExist) || err == nil && st.IsDir() {
		return Info{}, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return Info{}, fmt.Errorf("objstore: %w", err)
	}
	return Info{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Delete implements Store. It removes directories the delete left empty.
func (d *Dir) Delete(_ context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	p := d.path(key)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("objstore: %w", err)
	}
	if err := syncDir(filepath.Dir(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("objstore: %w", err)
	}
	d.pruneDirs(filepath.Dir(p))
	return nil
}

// pruneDirs removes dir and its parents, up to objects/, while they are
// empty. A Put racing with it retries (see place).
func (d *Dir) pruneDirs(dir string) {
	top := filepath.Join(d.root, "objects")
	for dir != top && strings.HasPrefix(dir, top) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// DeleteIfOlder implements Store: move aside, look, then delete or put
// back (see the package doc).
func (d *Dir) DeleteIfOlder(_ context.Context, key string, cutoff time.Time) (bool, error) {
	if err := CheckKey(key); err != nil {
		return false, err
	}
	st, err := os.Stat(d.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("objstore: %w", err)
	}
	if !st.ModTime().Before(cutoff) {
		return false, nil
	}
	// A writer may put the key again from here on.
	return d.deleteAside(key, cutoff)
}

// deleteAside is DeleteIfOlder after its first look: it moves the object
// aside, and deletes it only if what it moved is older than cutoff.
func (d *Dir) deleteAside(key string, cutoff time.Time) (bool, error) {
	p, t := d.path(key), d.trashPath(key)
	if err := mkdirAll(filepath.Dir(t)); err != nil {
		return false, fmt.Errorf("objstore: %w", err)
	}
	if err := os.Rename(p, t); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil // deleted meanwhile
		}
		return false, fmt.Errorf("objstore: %w", err)
	}
	moved, err := os.Stat(t)
	if err != nil {
		// Another process's recover put it back: leave it.
		return false, nil
	}
	if !moved.ModTime().Before(cutoff) {
		// Written after the check: put back, unless newer still is there.
		if err := os.Link(t, p); err != nil && !errors.Is(err, fs.ErrExist) {
			return false, fmt.Errorf("objstore: putting back %s: %w", key, err)
		}
		_ = os.Remove(t)
		return false, syncDir(filepath.Dir(p))
	}
	if err := os.Remove(t); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("objstore: %w", err)
	}
	if err := syncDir(filepath.Dir(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return true, fmt.Errorf("objstore: %w", err)
	}
	d.pruneDirs(filepath.Dir(p))
	return true, nil
}

// List implements Store.
func (d *Dir) List(ctx context.Context, prefix string, fn func(Info) error) error {
	top := filepath.Join(d.root, "objects")
	// Walk from the deepest directory the prefix names in full.
	start := top
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = filepath.Join(top, filepath.FromSlash(prefix[:i]))
	}
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking, or no such prefix
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(top, p)
		key := filepath.ToSlash(rel)
		if e.IsDir() {
			if p != start && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(Info{Key: key, Size: info.Size(), ModTime: info.ModTime()})
	})
	if err != nil {
		return fmt.Errorf("objstore: list %q: %w", prefix, err)
	}
	return nil
}

// Close implements Store; a Dir holds nothing open.
func (d *Dir) Close() error { return nil }

// mkdirAll creates dir and its missing parents, fsyncing each parent that
// gained an entry, so the new directories survive a crash.
func mkdirAll(dir string) error {
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	return syncDir(parent)
}

// syncDir fsyncs a directory, making the renames and creations in it
// durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
