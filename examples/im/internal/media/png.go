package media

import "encoding/binary"

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// pngDropped are the ancillary chunks that can carry metadata about the
// sender: EXIF (eXIf), text, including XMP (tEXt, zTXt, iTXt), and the
// modification time (tIME).
var pngDropped = map[string]string{"eXIf": "exif", "tEXt": "text", "zTXt": "text", "iTXt": "text", "tIME": "time"}

// stripPNG returns src without the chunks of pngDropped and anything after
// IEND. Every other chunk is copied as it is, CRC included (the decoder
// checks it).
func stripPNG(src []byte) (out []byte, removed []string, err error) {
	if len(src) < len(pngSignature) || string(src[:8]) != string(pngSignature) {
		return nil, nil, invalidf("PNG: no signature")
	}
	out = make([]byte, 0, len(src))
	out = append(out, pngSignature...)
	var rm nameSet
	i := 8
	for {
		if i+8 > len(src) {
			return nil, nil, invalidf("PNG: truncated chunk header at byte %d", i)
		}
		n := int64(binary.BigEndian.Uint32(src[i:]))
		typ := string(src[i+4 : i+8])
		end := int64(i) + 12 + n
		if n > 1<<31-1 || end > int64(len(src)) {
			return nil, nil, invalidf("PNG: chunk %q of %d bytes overruns the file", typ, n)
		}
		if name, drop := pngDropped[typ]; drop {
			rm.add(name)
		} else {
			out = append(out, src[i:end]...)
		}
		i = int(end)
		if typ == "IEND" {
			if i < len(src) {
				rm.add("trailer")
			}
			return out, rm.names, nil
		}
	}
}
