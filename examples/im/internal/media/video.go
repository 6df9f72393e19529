package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
)

// Video is what ProbeVideo found.
type Video struct {
	// Container is MP4 (also QuickTime) or WebM (also Matroska).
	Container string
	// DurationMs is 0 when the container does not state it.
	DurationMs uint32
	// Width and Height of the first video track; 0 when not stated.
	Width, Height int
	// Removed names what was overwritten ("udta", "meta", "xmp").
	Removed []string
}

// maxBoxes bounds the boxes or elements ProbeVideo looks at, so a file of
// millions of empty boxes costs a bounded walk.
const maxBoxes = 100_000

// ProbeVideo checks the container of the size-byte video f holds, declared
// to be of type mime, reads its duration and dimensions, and overwrites
// MP4 user-data and metadata boxes through w (f's own bytes: the file is
// changed in place, its size and every offset in it kept). Its errors wrap
// ErrInvalid when the file is at fault.
func ProbeVideo(f io.ReaderAt, w io.WriterAt, size int64, mime string) (*Video, error) {
	if !IsVideo(mime) {
		return nil, invalidf("%q is not a video type", mime)
	}
	var head [12]byte
	if _, err := f.ReadAt(head[:], 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	sniffed := ""
	switch {
	case string(head[4:8]) == "ftyp":
		sniffed = MP4
	case bytes.HasPrefix(head[:], []byte{0x1A, 0x45, 0xDF, 0xA3}):
		sniffed = WebM
	}
	if sniffed == "" {
		return nil, invalidf("the file is not an MP4, QuickTime, WebM or Matroska video (declared %s)", mime)
	}
	if !sameType(mime, sniffed) {
		return nil, invalidf("the file is %s, not the declared %s", sniffed, mime)
	}
	if sniffed == MP4 {
		return probeMP4(f, w, size)
	}
	return probeWebM(f, size)
}

// mp4Box is a box: its type and where it and its payload are.
type mp4Box struct {
	typ                    string
	start, payload, end    int64
	headerLen, payloadSize int64
}

// readBox reads the header of the box at off, which must end by limit.
func readBox(f io.ReaderAt, off, limit int64) (mp4Box, error) {
	var h [16]byte
	if off+8 > limit {
		return mp4Box{}, invalidf("MP4: truncated box header at byte %d", off)
	}
	if _, err := f.ReadAt(h[:8], off); err != nil {
		return mp4Box{}, invalidf("MP4: reading a box at byte %d: %v", off, err)
	}
	b := mp4Box{typ: string(h[4:8]), start: off, headerLen: 8}
	size := int64(binary.BigEndian.Uint32(h[:4]))
	switch size {
	case 0: // to the end of the enclosing box (the file at top level)
		size = limit - off
	case 1: // a 64-bit size follows
		if off+16 > limit {
			return mp4Box{}, invalidf("MP4: truncated box header at byte %d", off)
		}
		if _, err := f.ReadAt(h[8:16], off+8); err != nil {
			return mp4Box{}, invalidf("MP4: reading a box at byte %d: %v", off, err)
		}
		b.headerLen = 16
		u := binary.BigEndian.Uint64(h[8:16])
		if u > math.MaxInt64 {
			return mp4Box{}, invalidf("MP4: box %q size overflows", b.typ)
		}
		size = int64(u)
	}
	if size < b.headerLen || size > limit-off {
		return mp4Box{}, invalidf("MP4: box %q at byte %d of %d bytes overruns its container", b.typ, off, size)
	}
	b.payload, b.end = off+b.headerLen, off+size
	b.payloadSize = b.end - b.payload
	return b, nil
}

// walkBoxes calls fn for each box in [from, to), counting into *n.
func walkBoxes(f io.ReaderAt, from, to int64, n *int, fn func(mp4Box) error) error {
	for off := from; off < to; {
		if *n++; *n > maxBoxes {
			return invalidf("MP4: more than %d boxes", maxBoxes)
		}
		b, err := readBox(f, off, to)
		if err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return err
		}
		off = b.end
	}
	return nil
}

// xmpUUID is the uuid box type Adobe's XMP is stored under.
var xmpUUID = []byte{0xBE, 0x7A, 0xCF, 0xCB, 0x97, 0xA9, 0x42, 0xE8, 0x9C, 0x71, 0x99, 0x94, 0x91, 0xE3, 0xAF, 0xAC}

func probeMP4(f io.ReaderAt, w io.WriterAt, size int64) (*Video, error) {
	v := &Video{Container: MP4}
	var rm nameSet
	var void []mp4Box
	var mvhdDur, mehdDur uint64
	var timescale uint32
	var moov, mdat bool
	n := 0
	first := true
	// metadata notes a box to overwrite: udta and meta hold user data
	// (©xyz, the location, among it), a uuid box of XMP's type XMP.
	metadata := func(b mp4Box) bool {
		switch b.typ {
		case "udta", "meta":
			rm.add(b.typ)
		case "uuid":
			var id [16]byte
			if b.payloadSize < 16 {
				return false
			}
			if _, err := f.ReadAt(id[:], b.payload); err != nil || !bytes.Equal(id[:], xmpUUID) {
				return false
			}
			rm.add("xmp")
		default:
			return false
		}
		void = append(void, b)
		return true
	}
	var trak func(mp4Box) error
	trak = func(b mp4Box) error {
		var width, height int
		var video bool
		err := walkBoxes(f, b.payload, b.end, &n, func(c mp4Box) error {
			switch {
			case metadata(c):
			case c.typ == "tkhd":
				var p [96]byte
				m, _ := f.ReadAt(p[:min(int64(len(p)), c.payloadSize)], c.payload)
				off := 76 // version 0
				if m > 0 && p[0] == 1 {
					off = 88
				}
				if m >= off+8 {
					width = int(binary.BigEndian.Uint32(p[off:]) >> 16)
					height = int(binary.BigEndian.Uint32(p[off+4:]) >> 16)
				}
			case c.typ == "mdia":
				return walkBoxes(f, c.payload, c.end, &n, func(d mp4Box) error {
					if d.typ == "hdlr" && d.payloadSize >= 12 {
						var p [12]byte
						if _, err := f.ReadAt(p[:], d.payload); err == nil && string(p[8:12]) == "vide" {
							video = true
						}
					}
					return nil
				})
			}
			return nil
		})
		if err == nil && video && v.Width == 0 {
			v.Width, v.Height = width, height
		}
		return err
	}
	err := walkBoxes(f, 0, size, &n, func(b mp4Box) error {
		if first && b.typ != "ftyp" {
			return invalidf("MP4: the first box is %q, not ftyp", b.typ)
		}
		first = false
		switch {
		case metadata(b):
		case b.typ == "mdat":
			mdat = true
		case b.typ == "moov":
			moov = true
			return walkBoxes(f, b.payload, b.end, &n, func(c mp4Box) error {
				switch {
				case metadata(c):
				case c.typ == "mvhd":
					var p [32]byte
					m, _ := f.ReadAt(p[:min(int64(len(p)), c.payloadSize)], c.payload)
					if m >= 20 && p[0] == 0 {
						timescale = binary.BigEndian.Uint32(p[12:])
						if d := binary.BigEndian.Uint32(p[16:]); d != math.MaxUint32 {
							mvhdDur = uint64(d)
						}
					} else if m >= 32 && p[0] == 1 {
						timescale = binary.BigEndian.Uint32(p[20:])
						if d := binary.BigEndian.Uint64(p[24:]); d != math.MaxUint64 {
							mvhdDur = d
						}
					}
				case c.typ == "trak":
					return trak(c)
				case c.typ == "mvex":
					return walkBoxes(f, c.payload, c.end, &n, func(d mp4Box) error {
						if d.typ != "mehd" {
							return nil
						}
						var p [12]byte
						m, _ := f.ReadAt(p[:min(int64(len(p)), d.payloadSize)], d.payload)
						if m >= 8 && p[0] == 0 {
							mehdDur = uint64(binary.BigEndian.Uint32(p[4:]))
						} else if m >= 12 && p[0] == 1 {
							mehdDur = binary.BigEndian.Uint64(p[4:])
						}
						return nil
					})
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !moov {
		return nil, invalidf("MP4: no movie box (moov)")
	}
	if !mdat {
		return nil, invalidf("MP4: no media data box (mdat)")
	}
	dur := mvhdDur
	if dur == 0 {
		dur = mehdDur
	}
	if timescale > 0 {
		v.DurationMs = uint32(min(dur/uint64(timescale)*1000+dur%uint64(timescale)*1000/uint64(timescale), math.MaxUint32))
	}
	for _, b := range void {
		if err := voidBox(w, b); err != nil {
			return nil, err
		}
	}
	v.Removed = rm.names
	return v, nil
}

// voidBox turns b into a free box of the same size with a zeroed payload.
func voidBox(w io.WriterAt, b mp4Box) error {
	if _, err := w.WriteAt([]byte("free"), b.start+4); err != nil {
		return err
	}
	zero := make([]byte, min(b.payloadSize, 64<<10))
	for off := b.payload; off < b.end; {
		k := min(int64(len(zero)), b.end-off)
		if _, err := w.WriteAt(zero[:k], off); err != nil {
			return err
		}
		off += k
	}
	return nil
}
