// Package shm is the layout of a monitor region: the file one process
// shares with the machine's monitor agent, holding the process's counters
// and gauges and the declarations that name them.
//
// # Layout
//
// A region is one file (on Linux under /dev/shm, so it lives in memory),
// mapped by its process read-write and by the agent read-only. All
// integers are little-endian.
//
//	offset 0     header, HeaderSize bytes:
//	   0  magic "SVRMON\x00\x01"
//	   8  version (u32), header size (u32)
//	  16  capacity: slots (u32); declaration bytes (u32)
//	  24  instance: random, names this region for the center (u64)
//	  32  pid (u32), reserved (u32)
//	  40  start time, unix nanoseconds (i64)
//	  48  slots published (u32, atomic)
//	  52  declaration bytes published (u32, atomic)
//	  56  service name length (u16), reserved, name at 64 (64 bytes)
//	 128  CRC-32C of bytes 0–47 and 56–127: everything that never changes
//	offset HeaderSize          slots: capacity × 16 bytes, {value i64, flags i64}
//	offset after the slots     declarations: records of
//	                           {u32 payload length, u32 CRC-32C, payload}
//
// A declaration's payload is {u32 slot, u32 id, u8 kind, then name, unit
// and alert rule, each a u16 length and its bytes}. Record i declares slot
// i: declarations and slots only grow, in the same order.
//
// # Publication
//
// The writer (one process; its own mutex orders its declarations) writes a
// record and its slot's flags, then stores the declaration length, then
// the slot count. The reader loads the slot count first and the
// declaration length second, so the records it parses cover every slot it
// reads. Values are read and written with atomic 64-bit operations on
// aligned words: Add is a locked add, the agent's read a plain load.
//
// # Liveness
//
// The writer holds a shared flock on the file for as long as it lives; the
// kernel drops it when the process dies, however it dies. The agent tests
// it with a non-blocking exclusive flock: if that succeeds, the owner is
// gone, the values are final, and the region may be collected once they
// are reported. A new region is written under a temporary name and renamed
// into place once its header is complete, so the agent never sees half a
// header.
//
// # What a reader trusts
//
// Nothing: the file may be truncated, overwritten or not a region at all.
// Open checks the size, the magic, the version, the bounds and the header's
// checksum; Refresh checks every record's length, checksum and slot
// number. A bad region is refused with a *CorruptError naming the file and
// the fault, and costs bounded work.
package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync/atomic"
	"unsafe"
)

// Layout constants.
const (
	Magic      = "SVRMON\x00\x01"
	Version    = 1
	HeaderSize = 4096
	SlotSize   = 16
	// Suffix ends the name of every region file.
	Suffix = ".svrmon"

	// MaxCapacity bounds the slots of a region and MaxDeclBytes its
	// declaration area, so that a corrupt header cannot make a reader map
	// or scan without end.
	MaxCapacity  = 1 << 20
	MaxDeclBytes = 64 << 20
	// MaxNameLen bounds the service name in the header.
	MaxNameLen = 64
	// MaxFieldLen bounds each string of a declaration.
	MaxFieldLen = 1024
)

// Header field offsets.
const (
	offMagic     = 0
	offVersion   = 8
	offHdrSize   = 12
	offCapacity  = 16
	offDeclCap   = 20
	offInstance  = 24
	offPID       = 32
	offStart     = 40
	offNSlots    = 48
	offDeclLen   = 52
	offNameLen   = 56
	offName      = 64
	offHeaderCRC = 128
)

// Kind says how a slot's value behaves.
type Kind uint8

// The kinds of slot.
const (
	// Counter values only grow (Add with n ≥ 0); what matters is how
	// much they grew in each period.
	Counter Kind = 1
	// Gauge values are levels (Set, or Add up and down); what matters is
	// the value now.
	Gauge Kind = 2
)

func (k Kind) String() string {
	switch k {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Bits of a slot's flags word.
const (
	// FlagSet marks a gauge that has been given a value: an untouched
	// gauge contributes nothing to its machine's sum, rather than a zero.
	FlagSet = 1
	// FlagGauge marks a gauge's slot, so that a writer can refuse to Set
	// a counter with the load it makes anyway.
	FlagGauge = 2
)

// Slot is one value in a region. Both words are accessed atomically only.
type Slot struct {
	Value atomic.Int64
	Flags atomic.Int64
}

// Decl is one declaration: what a slot counts.
type Decl struct {
	Slot  uint32
	ID    uint32 // the monitor ID; 0 for framework series, known by name only
	Kind  Kind
	Name  string
	Unit  string
	Alert string
}

// Header is a region's fixed description.
type Header struct {
	Capacity  uint32
	DeclCap   uint32
	Instance  uint64
	PID       uint32
	StartNano int64
	Service   string
}

// CorruptError says why a file is not a usable region.
type CorruptError struct {
	Path   string
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("monitor region %s is corrupt: %s", e.Path, e.Reason)
}

// ErrFull is returned when a region has no room for another declaration.
var ErrFull = errors.New("monitor region is full")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Size returns the file size of a region of the given capacities.
func Size(capacity, declCap uint32) int64 {
	return HeaderSize + int64(capacity)*SlotSize + int64(declCap)
}

func headerCRC(mem []byte) uint32 {
	c := crc32.Update(0, castagnoli, mem[0:offNSlots])
	return crc32.Update(c, castagnoli, mem[offNameLen:offHeaderCRC])
}

// writeHeader fills a new region's header.
func writeHeader(mem []byte, h Header) {
	copy(mem[offMagic:], Magic)
	le := binary.LittleEndian
	le.PutUint32(mem[offVersion:], Version)
	le.PutUint32(mem[offHdrSize:], HeaderSize)
	le.PutUint32(mem[offCapacity:], h.Capacity)
	le.PutUint32(mem[offDeclCap:], h.DeclCap)
	le.PutUint64(mem[offInstance:], h.Instance)
	le.PutUint32(mem[offPID:], h.PID)
	le.PutUint64(mem[offStart:], uint64(h.StartNano))
	le.PutUint16(mem[offNameLen:], uint16(len(h.Service)))
	copy(mem[offName:offName+MaxNameLen], h.Service)
	le.PutUint32(mem[offHeaderCRC:], headerCRC(mem))
}

// parseHeader checks and decodes a header from a mapping of size bytes.
func parseHeader(path string, mem []byte, size int64) (Header, error) {
	bad := func(format string, args ...any) (Header, error) {
		return Header{}, &CorruptError{Path: path, Reason: fmt.Sprintf(format, args...)}
	}
	if size < HeaderSize {
		return bad("truncated: %d bytes, less than the %d-byte header", size, HeaderSize)
	}
	if string(mem[offMagic:offMagic+8]) != Magic {
		return bad("bad magic %q", mem[offMagic:offMagic+8])
	}
	le := binary.LittleEndian
	if v := le.Uint32(mem[offVersion:]); v != Version {
		return bad("version %d, this agent reads version %d", v, Version)
	}
	if hs := le.Uint32(mem[offHdrSize:]); hs != HeaderSize {
		return bad("header size %d, want %d", hs, HeaderSize)
	}
	if got, want := le.Uint32(mem[offHeaderCRC:]), headerCRC(mem); got != want {
		return bad("header checksum %08x, want %08x", got, want)
	}
	h := Header{
		Capacity:  le.Uint32(mem[offCapacity:]),
		DeclCap:   le.Uint32(mem[offDeclCap:]),
		Instance:  le.Uint64(mem[offInstance:]),
		PID:       le.Uint32(mem[offPID:]),
		StartNano: int64(le.Uint64(mem[offStart:])),
	}
	if h.Capacity > MaxCapacity || h.DeclCap > MaxDeclBytes {
		return bad("capacity %d slots, %d declaration bytes: over the limits %d, %d", h.Capacity, h.DeclCap, MaxCapacity, MaxDeclBytes)
	}
	if want := Size(h.Capacity, h.DeclCap); size != want {
		return bad("truncated or padded: %d bytes, want %d", size, want)
	}
	n := le.Uint16(mem[offNameLen:])
	if n > MaxNameLen {
		return bad("service name length %d", n)
	}
	h.Service = string(mem[offName : offName+int(n)])
	return h, nil
}

func u32At(mem []byte, off int) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&mem[off]))
}

func slotAt(mem []byte, i uint32) *Slot {
	return (*Slot)(unsafe.Pointer(&mem[HeaderSize+int(i)*SlotSize]))
}

func declOffset(capacity uint32) int { return HeaderSize + int(capacity)*SlotSize }

// encodeDecl appends d's record to b.
func encodeDecl(b []byte, d Decl) []byte {
	payload := make([]byte, 0, 9+6+len(d.Name)+len(d.Unit)+len(d.Alert))
	payload = binary.LittleEndian.AppendUint32(payload, d.Slot)
	payload = binary.LittleEndian.AppendUint32(payload, d.ID)
	payload = append(payload, byte(d.Kind))
	for _, s := range []string{d.Name, d.Unit, d.Alert} {
		payload = binary.LittleEndian.AppendUint16(payload, uint16(len(s)))
		payload = append(payload, s...)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(payload, castagnoli))
	return append(b, payload...)
}

// decodeDecl reads the record at area[off:]; it returns the declaration and
// the offset after it.
func decodeDecl(area []byte, off int) (Decl, int, error) {
	le := binary.LittleEndian
	if len(area)-off < 8 {
		return Decl{}, 0, fmt.Errorf("declaration at %d: truncated record header", off)
	}
	n := int(le.Uint32(area[off:]))
	sum := le.Uint32(area[off+4:])
	if n < 9+6 || n > len(area)-off-8 {
		return Decl{}, 0, fmt.Errorf("declaration at %d: length %d out of bounds", off, n)
	}
	p := area[off+8 : off+8+n]
	if crc32.Checksum(p, castagnoli) != sum {
		return Decl{}, 0, fmt.Errorf("declaration at %d: checksum mismatch", off)
	}
	d := Decl{Slot: le.Uint32(p), ID: le.Uint32(p[4:]), Kind: Kind(p[8])}
	if d.Kind != Counter && d.Kind != Gauge {
		return Decl{}, 0, fmt.Errorf("declaration at %d: unknown kind %d", off, p[8])
	}
	rest := p[9:]
	var fields [3]string
	for i := range fields {
		if len(rest) < 2 {
			return Decl{}, 0, fmt.Errorf("declaration at %d: truncated field", off)
		}
		l := int(le.Uint16(rest))
		if l > MaxFieldLen || l > len(rest)-2 {
			return Decl{}, 0, fmt.Errorf("declaration at %d: field length %d out of bounds", off, l)
		}
		fields[i] = string(rest[2 : 2+l])
		rest = rest[2+l:]
	}
	d.Name, d.Unit, d.Alert = fields[0], fields[1], fields[2]
	if d.Name == "" {
		return Decl{}, 0, fmt.Errorf("declaration at %d: empty name", off)
	}
	return d, off + 8 + n, nil
}
