package media

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// JPEG markers the stripper needs by name.
const (
	markerSOI  = 0xD8
	markerEOI  = 0xD9
	markerSOS  = 0xDA
	markerAPP0 = 0xE0
	markerAPP1 = 0xE1
	markerAPP2 = 0xE2
	markerAPPD = 0xED
	markerAPPE = 0xEE
	markerCOM  = 0xFE
)

// stripJPEG returns src without the segments that may carry metadata about
// the sender: EXIF (replaced by one holding only the orientation, when it is
// not the default), XMP, IPTC/Photoshop, MPF, comments, any other APPn but
// JFIF, ICC profiles and Adobe's; and anything after the end-of-image
// marker. Entropy-coded data and every other segment are copied as they
// are. It returns the EXIF orientation (1 without one) and the names of
// what it removed.
func stripJPEG(src []byte) (out []byte, orientation int, removed []string, err error) {
	if len(src) < 4 || src[0] != 0xFF || src[1] != markerSOI {
		return nil, 0, nil, invalidf("JPEG: no start-of-image marker")
	}
	out = make([]byte, 0, len(src))
	out = append(out, 0xFF, markerSOI)
	orientation = 1
	var rm nameSet
	i := 2
	for {
		// A marker: 0xFF, any number of 0xFF fill bytes, the code.
		if i >= len(src) || src[i] != 0xFF {
			return nil, 0, nil, invalidf("JPEG: expected a marker at byte %d", i)
		}
		for i < len(src) && src[i] == 0xFF {
			i++
		}
		if i >= len(src) {
			return nil, 0, nil, invalidf("JPEG: truncated at a marker")
		}
		m := src[i]
		i++
		switch {
		case m == markerEOI:
			out = append(out, 0xFF, markerEOI)
			if i < len(src) {
				rm.add("trailer")
			}
			return out, orientation, rm.names, nil
		case m == 0x01 || 0xD0 <= m && m <= 0xD7 || m == markerSOI:
			// Standalone markers (TEM, RSTn) carry no length.
			out = append(out, 0xFF, m)
			continue
		}
		if i+2 > len(src) {
			return nil, 0, nil, invalidf("JPEG: truncated segment length")
		}
		n := int(binary.BigEndian.Uint16(src[i:]))
		if n < 2 || i+n > len(src) {
			return nil, 0, nil, invalidf("JPEG: segment 0x%02X of %d bytes overruns the file", m, n)
		}
		body := src[i+2 : i+n]
		seg := src[i-2 : i+n] // marker, length, body
		i += n
		switch {
		case m == markerAPP0 && bytes.HasPrefix(body, []byte("JFIF\x00")),
			m == markerAPP2 && bytes.HasPrefix(body, []byte("ICC_PROFILE\x00")),
			m == markerAPPE && bytes.HasPrefix(body, []byte("Adobe")):
			out = append(out, seg...)
		case m == markerAPP1 && bytes.HasPrefix(body, []byte("Exif\x00\x00")):
			rm.add("exif")
			if o := exifOrientation(body[6:]); o != 1 && orientation == 1 {
				orientation = o
				out = appendOrientationEXIF(out, o)
			}
		case m == markerAPP1 && (bytes.HasPrefix(body, []byte("http://ns.adobe.com/xap/1.0/\x00")) ||
			bytes.HasPrefix(body, []byte("http://ns.adobe.com/xmp/extension/\x00"))):
			rm.add("xmp")
		case m == markerAPPD:
			rm.add("iptc")
		case m == markerAPP2 && bytes.HasPrefix(body, []byte("MPF\x00")):
			rm.add("mpf")
		case m == markerCOM:
			rm.add("comment")
		case markerAPP0 <= m && m <= 0xEF:
			rm.add(fmt.Sprintf("app%d", m-markerAPP0))
		case m == markerSOS:
			out = append(out, seg...)
			// Entropy-coded data runs to the next marker that is not a
			// stuffed 0xFF00 or a restart marker.
			j := i
			for j < len(src) {
				if src[j] != 0xFF {
					j++
					continue
				}
				if j+1 >= len(src) {
					break
				}
				if b := src[j+1]; b == 0x00 || 0xD0 <= b && b <= 0xD7 || b == 0xFF {
					j += 2
					if b == 0xFF {
						j-- // fill byte: look at the next one again
					}
					continue
				}
				break
			}
			if j+1 >= len(src) {
				return nil, 0, nil, invalidf("JPEG: no end-of-image marker")
			}
			out = append(out, src[i:j]...)
			i = j
		default:
			out = append(out, seg...)
		}
	}
}

// exifOrientation returns the orientation tag (0x0112) of IFD0 of the TIFF
// structure in tiff, or 1 when there is none or it is out of range.
func exifOrientation(tiff []byte) int {
	if len(tiff) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(tiff[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 1
	}
	off := int64(bo.Uint32(tiff[4:]))
	if off < 8 || off+2 > int64(len(tiff)) {
		return 1
	}
	count := int64(bo.Uint16(tiff[off:]))
	for e := range count {
		p := off + 2 + 12*e
		if p+12 > int64(len(tiff)) {
			return 1
		}
		tag, typ, n := bo.Uint16(tiff[p:]), bo.Uint16(tiff[p+2:]), bo.Uint32(tiff[p+4:])
		if tag == 0x0112 && typ == 3 && n == 1 {
			if o := int(bo.Uint16(tiff[p+8:])); 1 <= o && o <= 8 {
				return o
			}
			return 1
		}
	}
	return 1
}

// appendOrientationEXIF appends an APP1 EXIF segment holding one tag,
// the orientation o, and nothing else.
func appendOrientationEXIF(out []byte, o int) []byte {
	body := []byte("Exif\x00\x00" +
		"MM\x00*\x00\x00\x00\x08" + // big-endian TIFF header, IFD0 at 8
		"\x00\x01" + // one entry
		"\x01\x12\x00\x03\x00\x00\x00\x01") // Orientation, SHORT, count 1
	body = append(body, 0, byte(o), 0, 0) // the value, padded
	body = append(body, 0, 0, 0, 0)       // no next IFD
	out = append(out, 0xFF, markerAPP1)
	out = binary.BigEndian.AppendUint16(out, uint16(2+len(body)))
	return append(out, body...)
}

// nameSet collects names once each, in order.
type nameSet struct{ names []string }

func (s *nameSet) add(n string) {
	for _, m := range s.names {
		if m == n {
			return
		}
	}
	s.names = append(s.names, n)
}
