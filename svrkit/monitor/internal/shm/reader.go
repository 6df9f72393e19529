package shm

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Reader is the agent's read-only view of one region. It is used by one
// goroutine at a time.
type Reader struct {
	path  string
	f     *os.File
	mem   []byte
	hdr   Header
	decls []Decl
	off   int // parsed declaration bytes
}

// Open maps the region at path read-only and checks its header.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	size := st.Size()
	if size < HeaderSize || size > Size(MaxCapacity, MaxDeclBytes) {
		f.Close()
		return nil, &CorruptError{Path: path, Reason: fmt.Sprintf("size %d bytes is not a region's", size)}
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("monitor region %s: %w", path, err)
	}
	h, err := parseHeader(path, mem, size)
	if err != nil {
		syscall.Munmap(mem)
		f.Close()
		return nil, err
	}
	return &Reader{path: path, f: f, mem: mem, hdr: h}, nil
}

// Path returns the region's file.
func (r *Reader) Path() string { return r.path }

// Header returns the region's header.
func (r *Reader) Header() Header { return r.hdr }

// Refresh parses the declarations published since the last call and
// returns all of them. A bad record makes the region unusable: the error is
// a *CorruptError, and the declarations before it stay valid.
func (r *Reader) Refresh() ([]Decl, error) {
	n := u32At(r.mem, offNSlots).Load()
	declLen := u32At(r.mem, offDeclLen).Load()
	if n > r.hdr.Capacity || declLen > r.hdr.DeclCap {
		return r.decls, &CorruptError{Path: r.path, Reason: fmt.Sprintf("%d slots and %d declaration bytes published, over its capacity", n, declLen)}
	}
	area := r.mem[declOffset(r.hdr.Capacity) : declOffset(r.hdr.Capacity)+int(declLen)]
	for uint32(len(r.decls)) < n {
		d, next, err := decodeDecl(area, r.off)
		if err != nil {
			return r.decls, &CorruptError{Path: r.path, Reason: err.Error()}
		}
		if d.Slot != uint32(len(r.decls)) {
			return r.decls, &CorruptError{Path: r.path, Reason: fmt.Sprintf("declaration at %d is for slot %d, want %d", r.off, d.Slot, len(r.decls))}
		}
		r.decls = append(r.decls, d)
		r.off = next
	}
	return r.decls, nil
}

// Value returns slot i's value and flags; i must be below the number of
// declarations Refresh returned.
func (r *Reader) Value(i uint32) (value, flags int64) {
	s := slotAt(r.mem, i)
	return s.Value.Load(), s.Flags.Load()
}

// OwnerGone reports whether the process that wrote the region has exited:
// nobody holds its liveness lock any more. Once true it stays true, and
// the values are final.
func (r *Reader) OwnerGone() bool {
	err := syscall.Flock(int(r.f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err != nil {
		return false
	}
	// Hold it: a region is never reopened by another process, so nothing
	// waits for this lock, and keeping it makes the answer stable.
	return true
}

// Close unmaps the region.
func (r *Reader) Close() error {
	err := syscall.Munmap(r.mem)
	r.mem = nil
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// List returns the region files in dir.
func List(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if name := e.Name(); strings.HasSuffix(name, Suffix) && !strings.HasPrefix(name, ".") && e.Type().IsRegular() {
			out = append(out, filepath.Join(dir, name))
		}
	}
	return out, nil
}

// RemoveStale deletes, from dir, region files whose owner has exited and
// which were last written more than age ago, and temporary files of
// regions that were never completed: what is left when no agent runs to
// collect them. It looks at most at limit files, so that it is bounded
// work for the process that calls it at start.
func RemoveStale(dir string, age time.Duration, limit int) (removed int) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	for i, e := range ents {
		if i >= limit {
			break
		}
		name := e.Name()
		if !strings.HasSuffix(name, Suffix) && !(strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp")) {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < age {
			continue
		}
		p := filepath.Join(dir, name)
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			if os.Remove(p) == nil {
				removed++
			}
		}
		f.Close()
	}
	return removed
}
