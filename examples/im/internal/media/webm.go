package media

import (
	"encoding/binary"
	"io"
	"math"
)

// EBML element IDs (with their length markers, as written).
const (
	ebmlHeader     = 0x1A45DFA3
	ebmlDocType    = 0x4282
	mkvSegment     = 0x18538067
	mkvInfo        = 0x1549A966
	mkvTimecode    = 0x2AD7B1
	mkvDuration    = 0x4489
	mkvTracks      = 0x1654AE6B
	mkvTrackEntry  = 0xAE
	mkvTrackType   = 0x83
	mkvVideo       = 0xE0
	mkvPixelWidth  = 0xB0
	mkvPixelHeight = 0xBA
	mkvCluster     = 0x1F43B675
)

// ebmlElement is an element: its ID and where its data is. unknown is set
// for an element of unknown size (a live stream's Segment or Cluster),
// whose data runs to the end of its parent.
type ebmlElement struct {
	id         uint32
	data, end  int64
	unknownLen bool
}

// readVint reads an EBML variable-length integer at off: its value with
// the length marker kept (an ID) or removed (a size), and its length.
func readVint(f io.ReaderAt, off, limit int64, keepMarker bool) (uint64, int64, bool, error) {
	var b [8]byte
	if off >= limit {
		return 0, 0, false, invalidf("WebM: truncated at byte %d", off)
	}
	if _, err := f.ReadAt(b[:1], off); err != nil {
		return 0, 0, false, invalidf("WebM: reading byte %d: %v", off, err)
	}
	n := int64(1)
	for mask := byte(0x80); n <= 8 && b[0]&mask == 0; mask >>= 1 {
		n++
	}
	if n > 8 || off+n > limit {
		return 0, 0, false, invalidf("WebM: bad variable-length integer at byte %d", off)
	}
	if _, err := f.ReadAt(b[1:n], off+1); err != nil {
		return 0, 0, false, invalidf("WebM: reading byte %d: %v", off, err)
	}
	v := uint64(b[0])
	if !keepMarker {
		v &= 0xFF >> n
	}
	allOnes := v == 0xFF>>n
	for i := int64(1); i < n; i++ {
		v = v<<8 | uint64(b[i])
		allOnes = allOnes && b[i] == 0xFF
	}
	return v, n, allOnes, nil
}

// readElement reads the header of the element at off, inside [.., limit).
func readElement(f io.ReaderAt, off, limit int64) (ebmlElement, error) {
	id, idLen, _, err := readVint(f, off, limit, true)
	if err != nil {
		return ebmlElement{}, err
	}
	if idLen > 4 {
		return ebmlElement{}, invalidf("WebM: element ID of %d bytes at byte %d", idLen, off)
	}
	size, sizeLen, unknown, err := readVint(f, off+idLen, limit, false)
	if err != nil {
		return ebmlElement{}, err
	}
	e := ebmlElement{id: uint32(id), data: off + idLen + sizeLen, unknownLen: unknown}
	if unknown {
		e.end = limit
		return e, nil
	}
	if size > uint64(limit-e.data) {
		return ebmlElement{}, invalidf("WebM: element 0x%X at byte %d of %d bytes overruns its parent", id, off, size)
	}
	e.end = e.data + int64(size)
	return e, nil
}

// walkElements calls fn for each element in [from, to) until fn returns
// stop or an element of unknown size has been passed to it.
func walkElements(f io.ReaderAt, from, to int64, n *int, fn func(ebmlElement) (stop bool, err error)) error {
	for off := from; off < to; {
		if *n++; *n > maxBoxes {
			return invalidf("WebM: more than %d elements", maxBoxes)
		}
		e, err := readElement(f, off, to)
		if err != nil {
			return err
		}
		stop, err := fn(e)
		if err != nil || stop || e.unknownLen {
			return err
		}
		off = e.end
	}
	return nil
}

func readUint(f io.ReaderAt, e ebmlElement) uint64 {
	n := e.end - e.data
	if n < 1 || n > 8 {
		return 0
	}
	var b [8]byte
	if _, err := f.ReadAt(b[8-n:], e.data); err != nil {
		return 0
	}
	return binary.BigEndian.Uint64(b[:])
}

func readFloat(f io.ReaderAt, e ebmlElement) float64 {
	var b [8]byte
	switch e.end - e.data {
	case 4:
		if _, err := f.ReadAt(b[:4], e.data); err == nil {
			return float64(math.Float32frombits(binary.BigEndian.Uint32(b[:4])))
		}
	case 8:
		if _, err := f.ReadAt(b[:], e.data); err == nil {
			return math.Float64frombits(binary.BigEndian.Uint64(b[:]))
		}
	}
	return 0
}

// probeWebM checks the EBML header's DocType and the Segment, and reads
// the duration (Info) and the first video track's size (Tracks), which
// muxers write before the first Cluster. It does not walk clusters of
// unknown size (a live recording): it stops there.
func probeWebM(f io.ReaderAt, size int64) (*Video, error) {
	v := &Video{Container: WebM}
	n := 0
	hdr, err := readElement(f, 0, size)
	if err != nil {
		return nil, err
	}
	if hdr.id != ebmlHeader || hdr.unknownLen {
		return nil, invalidf("WebM: no EBML header")
	}
	docType := ""
	err = walkElements(f, hdr.data, hdr.end, &n, func(e ebmlElement) (bool, error) {
		if e.id == ebmlDocType && e.end-e.data <= 16 {
			b := make([]byte, e.end-e.data)
			if _, err := f.ReadAt(b, e.data); err != nil {
				return false, invalidf("WebM: reading the DocType: %v", err)
			}
			docType = string(trimNUL(b))
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	if docType != "webm" && docType != "matroska" {
		return nil, invalidf("WebM: DocType %q is neither webm nor matroska", docType)
	}
	seg, err := readElement(f, hdr.end, size)
	if err != nil {
		return nil, err
	}
	if seg.id != mkvSegment {
		return nil, invalidf("WebM: no Segment after the EBML header")
	}
	var info, tracks bool
	timecodeScale := uint64(1_000_000) // ns per tick, the default
	var duration float64
	err = walkElements(f, seg.data, seg.end, &n, func(e ebmlElement) (bool, error) {
		switch e.id {
		case mkvCluster:
			return info && tracks || e.unknownLen, nil
		case mkvInfo:
			info = true
			return false, walkElements(f, e.data, e.end, &n, func(c ebmlElement) (bool, error) {
				switch c.id {
				case mkvTimecode:
					if s := readUint(f, c); s > 0 {
						timecodeScale = s
					}
				case mkvDuration:
					duration = readFloat(f, c)
				}
				return false, nil
			})
		case mkvTracks:
			tracks = true
			return false, walkElements(f, e.data, e.end, &n, func(t ebmlElement) (bool, error) {
				if t.id != mkvTrackEntry || v.Width != 0 {
					return false, nil
				}
				var video bool
				var w, h uint64
				err := walkElements(f, t.data, t.end, &n, func(c ebmlElement) (bool, error) {
					switch c.id {
					case mkvTrackType:
						video = readUint(f, c) == 1
					case mkvVideo:
						return false, walkElements(f, c.data, c.end, &n, func(p ebmlElement) (bool, error) {
							switch p.id {
							case mkvPixelWidth:
								w = readUint(f, p)
							case mkvPixelHeight:
								h = readUint(f, p)
							}
							return false, nil
						})
					}
					return false, nil
				})
				if video && w <= math.MaxInt32 && h <= math.MaxInt32 {
					v.Width, v.Height = int(w), int(h)
				}
				return false, err
			})
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	if !info || !tracks {
		return nil, invalidf("WebM: no segment Info or Tracks before the first cluster")
	}
	if ms := duration * float64(timecodeScale) / 1e6; ms > 0 && ms < math.MaxUint32 {
		v.DurationMs = uint32(ms)
	}
	return v, nil
}

func trimNUL(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}
