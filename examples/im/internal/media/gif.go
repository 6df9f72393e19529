package media

// gifKeptApps are the application extensions kept: looping (Netscape's and
// its twin) and an ICC profile. Any other (XMP's "XMP DataXMP" among them)
// is removed.
var gifKeptApps = map[string]bool{"NETSCAPE2.0": true, "ANIMEXTS1.0": true, "ICCRGBG1012": true}

// stripGIF returns src without comment extensions, application extensions
// other than gifKeptApps, and anything after the trailer. Frames, colour
// tables and graphic control extensions are copied as they are.
func stripGIF(src []byte) (out []byte, removed []string, err error) {
	if len(src) < 13 || (string(src[:6]) != "GIF87a" && string(src[:6]) != "GIF89a") {
		return nil, nil, invalidf("GIF: no header")
	}
	var rm nameSet
	i := 13 // header and logical screen descriptor
	if flags := src[10]; flags&0x80 != 0 {
		i += 3 << ((flags & 7) + 1) // global colour table
	}
	if i > len(src) {
		return nil, nil, invalidf("GIF: truncated colour table")
	}
	out = make([]byte, 0, len(src))
	out = append(out, src[:i]...)
	// subBlocks returns the end of the data sub-blocks starting at j.
	subBlocks := func(j int) (int, error) {
		for {
			if j >= len(src) {
				return 0, invalidf("GIF: truncated data sub-blocks")
			}
			n := int(src[j])
			j++
			if n == 0 {
				return j, nil
			}
			j += n
		}
	}
	for {
		if i >= len(src) {
			return nil, nil, invalidf("GIF: no trailer")
		}
		switch src[i] {
		case 0x3B: // trailer
			out = append(out, 0x3B)
			if i+1 < len(src) {
				rm.add("trailer")
			}
			return out, rm.names, nil
		case 0x21: // extension: introducer, label, sub-blocks
			if i+2 > len(src) {
				return nil, nil, invalidf("GIF: truncated extension")
			}
			label := src[i+1]
			end, err := subBlocks(i + 2)
			if err != nil {
				return nil, nil, err
			}
			keep := true
			switch label {
			case 0xFE:
				keep = false
				rm.add("comment")
			case 0xFF:
				// The first sub-block is the application's 11-byte name.
				if i+3 > len(src) || src[i+2] != 11 || i+14 > len(src) || !gifKeptApps[string(src[i+3:i+14])] {
					keep = false
					rm.add("application")
				}
			}
			if keep {
				out = append(out, src[i:end]...)
			}
			i = end
		case 0x2C: // image: descriptor, local colour table, LZW size, data
			j := i + 10
			if j > len(src) {
				return nil, nil, invalidf("GIF: truncated image descriptor")
			}
			if flags := src[i+9]; flags&0x80 != 0 {
				j += 3 << ((flags & 7) + 1)
			}
			j++ // LZW minimum code size
			end, err := subBlocks(j)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, src[i:end]...)
			i = end
		default:
			return nil, nil, invalidf("GIF: unknown block 0x%02X at byte %d", src[i], i)
		}
	}
}
