package media

import "encoding/binary"

// VP8X flags.
const (
	webpAnimation = 1 << 1
	webpXMP       = 1 << 2
	webpEXIF      = 1 << 3
)

// stripWebP returns src without its EXIF and XMP chunks, the VP8X flags
// that announce them cleared and the RIFF size fixed, and without anything
// after the RIFF form. Every other chunk is copied as it is. It reports
// whether the image is animated (the decoder has no animation).
func stripWebP(src []byte) (out []byte, removed []string, animated bool, err error) {
	if len(src) < 12 || string(src[:4]) != "RIFF" || string(src[8:12]) != "WEBP" {
		return nil, nil, false, invalidf("WebP: no RIFF WEBP header")
	}
	size := int64(binary.LittleEndian.Uint32(src[4:]))
	if size < 4 || 8+size > int64(len(src)) {
		return nil, nil, false, invalidf("WebP: RIFF size %d overruns the file", size)
	}
	var rm nameSet
	if 8+size < int64(len(src)) {
		rm.add("trailer")
	}
	form := src[:8+size]
	out = make([]byte, 0, len(form))
	out = append(out, form[:12]...)
	vp8x := -1 // offset in out of the VP8X flags byte
	for i := 12; i < len(form); {
		if i+8 > len(form) {
			return nil, nil, false, invalidf("WebP: truncated chunk header at byte %d", i)
		}
		fcc := string(form[i : i+4])
		n := int64(binary.LittleEndian.Uint32(form[i+4:]))
		end := int64(i) + 8 + n + n&1 // chunks are padded to even sizes
		if end > int64(len(form)) {
			// The last chunk's padding may be missing.
			if int64(i)+8+n != int64(len(form)) {
				return nil, nil, false, invalidf("WebP: chunk %q of %d bytes overruns the file", fcc, n)
			}
			end = int64(len(form))
		}
		switch fcc {
		case "EXIF":
			rm.add("exif")
		case "XMP ":
			rm.add("xmp")
		case "VP8X":
			if n < 10 {
				return nil, nil, false, invalidf("WebP: VP8X chunk of %d bytes", n)
			}
			vp8x = len(out) + 8
			animated = form[i+8]&webpAnimation != 0
			out = append(out, form[i:end]...)
		default:
			out = append(out, form[i:end]...)
		}
		i = int(end)
	}
	if vp8x >= 0 {
		out[vp8x] &^= webpEXIF | webpXMP
	}
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out, rm.names, animated, nil
}
