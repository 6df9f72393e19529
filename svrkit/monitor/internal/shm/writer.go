package shm

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"time"
)

// Writer is a process's own region. Declare is safe for concurrent use;
// the slots it returns are updated with atomic operations from any
// goroutine.
type Writer struct {
	path string
	f    *os.File // holds the shared flock; nil for a private region
	mem  []byte
	hdr  Header

	mu      sync.Mutex
	nslots  uint32
	declLen uint32
}

// DefaultCapacity and DefaultDeclBytes size a region: 65,536 slots (1 MiB)
// and 4 MiB of declarations. The file is sparse, so a process uses memory
// only for the pages it touches.
const (
	DefaultCapacity  = 1 << 16
	DefaultDeclBytes = 4 << 20
)

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// Create makes a new region in dir for the calling process and holds its
// liveness lock until the process exits. The file is named
// service.pid.instance.svrmon.
func Create(dir, service string, capacity, declCap uint32) (*Writer, error) {
	if capacity == 0 || capacity > MaxCapacity || declCap == 0 || declCap > MaxDeclBytes {
		return nil, fmt.Errorf("monitor region: capacity %d slots and %d declaration bytes must be within 1..%d and 1..%d", capacity, declCap, MaxCapacity, MaxDeclBytes)
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("monitor region: %w", err)
	}
	h := newHeader(service, capacity, declCap)
	base := fmt.Sprintf("%s.%d.%016x", unsafeName.ReplaceAllString(h.Service, "_"), h.PID, h.Instance)
	tmp := filepath.Join(dir, "."+base+".tmp")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("monitor region: %w", err)
	}
	size := Size(capacity, declCap)
	fail := func(err error) (*Writer, error) {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("monitor region %s: %w", tmp, err)
	}
	if err := f.Truncate(size); err != nil {
		return fail(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		return fail(err)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return fail(err)
	}
	writeHeader(mem, h)
	path := filepath.Join(dir, base+Suffix)
	if err := os.Rename(tmp, path); err != nil {
		syscall.Munmap(mem)
		return fail(err)
	}
	return &Writer{path: path, f: f, mem: mem, hdr: h}, nil
}

// CreatePrivate makes a region in anonymous memory that no agent can see:
// the fallback when no region file can be created, so that Add and Set
// keep working (and costing the same) with monitoring off.
func CreatePrivate(service string, capacity, declCap uint32) (*Writer, error) {
	size := Size(capacity, declCap)
	mem, err := syscall.Mmap(-1, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("monitor region: %w", err)
	}
	h := newHeader(service, capacity, declCap)
	writeHeader(mem, h)
	return &Writer{mem: mem, hdr: h}, nil
}

func newHeader(service string, capacity, declCap uint32) Header {
	if len(service) > MaxNameLen {
		service = service[:MaxNameLen]
	}
	var r [8]byte
	_, _ = rand.Read(r[:])
	return Header{
		Capacity: capacity, DeclCap: declCap,
		Instance:  binary.LittleEndian.Uint64(r[:]) | 1, // never 0
		PID:       uint32(os.Getpid()),
		StartNano: time.Now().UnixNano(),
		Service:   service,
	}
}

// Path returns the region's file, "" for a private region.
func (w *Writer) Path() string { return w.path }

// Header returns the region's header.
func (w *Writer) Header() Header { return w.hdr }

// Declare adds a slot for d (d.Slot is ignored) and returns it.
func (w *Writer) Declare(d Decl) (*Slot, uint32, error) {
	if d.Kind != Counter && d.Kind != Gauge {
		return nil, 0, fmt.Errorf("monitor: %s: unknown kind %d", d.Name, d.Kind)
	}
	for _, s := range []string{d.Name, d.Unit, d.Alert} {
		if len(s) > MaxFieldLen {
			return nil, 0, fmt.Errorf("monitor: %.40s...: a declaration's strings must be at most %d bytes", s, MaxFieldLen)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.nslots >= w.hdr.Capacity {
		return nil, 0, fmt.Errorf("%w: %d slots declared", ErrFull, w.nslots)
	}
	d.Slot = w.nslots
	rec := encodeDecl(nil, d)
	area := w.mem[declOffset(w.hdr.Capacity):]
	if int(w.declLen)+len(rec) > len(area) {
		return nil, 0, fmt.Errorf("%w: %d declaration bytes used", ErrFull, w.declLen)
	}
	copy(area[w.declLen:], rec)
	s := slotAt(w.mem, d.Slot)
	if d.Kind == Gauge {
		s.Flags.Store(FlagGauge)
	}
	w.declLen += uint32(len(rec))
	w.nslots++
	u32At(w.mem, offDeclLen).Store(w.declLen)
	u32At(w.mem, offNSlots).Store(w.nslots)
	return s, d.Slot, nil
}

// Slots returns how many slots are declared.
func (w *Writer) Slots() uint32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nslots
}

// Close unmaps the region and releases the liveness lock, leaving the file
// for the agent to report and collect. The slots Declare returned must not
// be used afterwards. Processes normally never call it: the kernel does the
// same at exit.
func (w *Writer) Close() error {
	err := syscall.Munmap(w.mem)
	w.mem = nil
	if w.f != nil {
		err = w.f.Close()
	}
	return err
}
