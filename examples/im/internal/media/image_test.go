package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/image/webp"
)

var testLimits = ImageLimits{MaxPixels: 50_000_000, MaxSide: 16384, ThumbSide: 320}

// gpsMarker stands for a location: the tests check it never survives.
const gpsMarker = "GPS-51.5007N-0.1246W"

// testImage is a w×h gradient, its top-left corner red so that the
// orientation of a thumbnail can be checked.
func testImage(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255})
		}
	}
	for y := range h / 4 {
		for x := range w / 4 {
			m.Set(x, y, color.RGBA{255, 0, 0, 255})
		}
	}
	return m
}

// exifTIFF is a little-endian EXIF TIFF structure with an orientation tag
// and a GPS IFD holding gpsMarker.
func exifTIFF(orientation uint16) []byte {
	le := binary.LittleEndian
	b := []byte("II*\x00")
	b = le.AppendUint32(b, 8)
	b = le.AppendUint16(b, 2) // IFD0: two entries
	b = le.AppendUint16(b, 0x0112)
	b = le.AppendUint16(b, 3)
	b = le.AppendUint32(b, 1)
	b = le.AppendUint16(b, orientation)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint16(b, 0x8825) // GPS IFD pointer
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, 1)
	b = le.AppendUint32(b, 8+2+24+4)
	b = le.AppendUint32(b, 0) // no IFD1
	// GPS IFD: GPSAreaInformation, the marker.
	b = le.AppendUint16(b, 1)
	b = le.AppendUint16(b, 0x001C)
	b = le.AppendUint16(b, 7)
	b = le.AppendUint32(b, uint32(len(gpsMarker)))
	b = le.AppendUint32(b, uint32(len(b)+4+4))
	b = le.AppendUint32(b, 0)
	return append(b, gpsMarker...)
}

func jpegSegment(marker byte, body []byte) []byte {
	s := []byte{0xFF, marker}
	s = binary.BigEndian.AppendUint16(s, uint16(2+len(body)))
	return append(s, body...)
}

// testJPEG is a JPEG of m with the given segments after SOI and trailer
// after EOI.
func testJPEG(t testing.TB, m image.Image, trailer string, segs ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	enc := buf.Bytes()
	out := []byte{0xFF, 0xD8}
	for _, s := range segs {
		out = append(out, s...)
	}
	out = append(out, enc[2:]...)
	return append(out, trailer...)
}

func pngChunk(typ string, data []byte) []byte {
	c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	c = append(c, typ...)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(append([]byte(typ), data...)))
}

// testPNG is a PNG of m with chunks inserted after IHDR.
func testPNG(t testing.TB, m image.Image, chunks ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	enc := buf.Bytes()
	ihdrEnd := 8 + 8 + 13 + 4
	out := slices.Clone(enc[:ihdrEnd])
	for _, c := range chunks {
		out = append(out, c...)
	}
	return append(out, enc[ihdrEnd:]...)
}

// testGIF is a GIF of m with extensions inserted after the global colour
// table.
func testGIF(t testing.TB, m image.Image, exts ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gif.Encode(&buf, m, nil); err != nil {
		t.Fatal(err)
	}
	enc := buf.Bytes()
	i := 13
	if flags := enc[10]; flags&0x80 != 0 {
		i += 3 << ((flags & 7) + 1)
	}
	out := slices.Clone(enc[:i])
	for _, e := range exts {
		out = append(out, e...)
	}
	return append(out, enc[i:]...)
}

func gifExtension(label byte, blocks ...[]byte) []byte {
	e := []byte{0x21, label}
	for _, b := range blocks {
		e = append(e, byte(len(b)))
		e = append(e, b...)
	}
	return append(e, 0)
}

func webpChunk(fcc string, data []byte) []byte {
	c := append([]byte(fcc), binary.LittleEndian.AppendUint32(nil, uint32(len(data)))...)
	c = append(c, data...)
	if len(data)%2 == 1 {
		c = append(c, 0)
	}
	return c
}

// testWebP is a VP8X WebP from testdata with EXIF and XMP chunks appended
// and announced in its flags.
func testWebP(t testing.TB) []byte {
	t.Helper()
	src, err := os.ReadFile("testdata/yellow_rose.lossy-with-alpha.webp")
	if err != nil {
		t.Fatal(err)
	}
	out := slices.Clone(src)
	out[20] |= webpEXIF | webpXMP // the VP8X flags byte
	out = append(out, webpChunk("EXIF", exifTIFF(1))...)
	out = append(out, webpChunk("XMP ", []byte("<x:xmpmeta>"+gpsMarker+"</x:xmpmeta>"))...)
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out
}

func TestProcessImage(t *testing.T) {
	m := testImage(640, 480)
	icc := jpegSegment(markerAPP2, []byte("ICC_PROFILE\x00\x01\x01fake profile"))
	xmp := []byte("<x:xmpmeta><exif:GPSLatitude>" + gpsMarker + "</exif:GPSLatitude></x:xmpmeta>")
	for _, tc := range []struct {
		name, mime string
		src        []byte
		removed    []string
		keep       []string // bytes the result must still hold
		w, h       int      // as displayed
		orient     int
	}{
		{
			name: "JPEG with EXIF GPS, rotated", mime: JPEG,
			src: testJPEG(t, m, "junk after EOI",
				jpegSegment(markerAPP0, []byte("JFIF\x00\x01\x02\x00\x00\x01\x00\x01\x00\x00")),
				jpegSegment(markerAPP1, append([]byte("Exif\x00\x00"), exifTIFF(6)...)),
				jpegSegment(markerAPP1, append([]byte("http://ns.adobe.com/xap/1.0/\x00"), xmp...)),
				jpegSegment(markerAPPD, []byte("Photoshop 3.0\x00"+gpsMarker)),
				jpegSegment(markerCOM, []byte("taken at "+gpsMarker)),
				icc),
			removed: []string{"exif", "xmp", "iptc", "comment", "trailer"},
			keep:    []string{"JFIF\x00", "ICC_PROFILE\x00", "Exif\x00\x00MM"},
			w:       480, h: 640, orient: 6,
		},
		{
			name: "JPEG without metadata", mime: JPEG, src: testJPEG(t, m, ""),
			w: 640, h: 480, orient: 1,
		},
		{
			name: "PNG with eXIf and XMP text", mime: PNG,
			src: testPNG(t, m, pngChunk("eXIf", exifTIFF(1)), pngChunk("iTXt", append([]byte("XML:com.adobe.xmp\x00\x00\x00\x00\x00"), xmp...)),
				pngChunk("tEXt", []byte("Comment\x00"+gpsMarker)), pngChunk("tIME", []byte{7, 234, 11, 29, 12, 0, 0}), pngChunk("pHYs", []byte{0, 0, 11, 19, 0, 0, 11, 19, 1})),
			removed: []string{"exif", "text", "time"}, keep: []string{"pHYs"},
			w: 640, h: 480, orient: 1,
		},
		{
			name: "GIF with comment and XMP", mime: GIF,
			src: testGIF(t, m,
				gifExtension(0xFF, []byte("NETSCAPE2.0"), []byte{1, 0, 0}),
				gifExtension(0xFE, []byte(gpsMarker)),
				gifExtension(0xFF, []byte("XMP DataXMP"), xmp)),
			removed: []string{"comment", "application"}, keep: []string{"NETSCAPE2.0"},
			w: 640, h: 480, orient: 1,
		},
		{
			name: "WebP with EXIF and XMP", mime: WebP, src: testWebP(t),
			removed: []string{"exif", "xmp"}, keep: []string{"ALPH", "VP8 "},
			w: 400, h: 301, orient: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ProcessImage(tc.src, tc.mime, testLimits)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Removed, tc.removed) {
				t.Errorf("removed %q, want %q", got.Removed, tc.removed)
			}
			if bytes.Contains(got.Data, []byte(gpsMarker)) {
				t.Error("the location survived")
			}
			for _, k := range tc.keep {
				if !bytes.Contains(got.Data, []byte(k)) {
					t.Errorf("%q was removed", k)
				}
			}
			if got.Width != tc.w || got.Height != tc.h || got.Orientation != tc.orient {
				t.Errorf("%d×%d orientation %d, want %d×%d orientation %d", got.Width, got.Height, got.Orientation, tc.w, tc.h, tc.orient)
			}
			if len(tc.removed) == 0 && !bytes.Equal(got.Data, tc.src) {
				t.Error("a file without metadata was changed")
			}
			// What is served decodes, with the pixels of the original.
			dm, err := decode(got.Data, tc.mime)
			if err != nil {
				t.Fatalf("stripped file does not decode: %v", err)
			}
			om, _ := decode(tc.src, tc.mime)
			if !sameSample(dm, om) {
				t.Error("the stripped file's pixels differ from the original's")
			}
			// The thumbnail: a JPEG within 320 pixels, upright.
			th, err := jpeg.Decode(bytes.NewReader(got.Thumb))
			if err != nil {
				t.Fatalf("thumbnail: %v", err)
			}
			tb := th.Bounds()
			if tb.Dx() != got.ThumbWidth || tb.Dy() != got.ThumbHeight || max(tb.Dx(), tb.Dy()) > 320 {
				t.Fatalf("thumbnail %v, said %d×%d", tb, got.ThumbWidth, got.ThumbHeight)
			}
			if (tb.Dx() > tb.Dy()) != (tc.w > tc.h) {
				t.Errorf("thumbnail %v is not upright for a %d×%d image", tb, tc.w, tc.h)
			}
		})
	}
}

// sameSample compares a few pixels of two images.
func sameSample(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	r := a.Bounds()
	for _, p := range []image.Point{r.Min, {r.Max.X - 1, r.Max.Y - 1}, {(r.Min.X + r.Max.X) / 2, (r.Min.Y + r.Max.Y) / 2}} {
		r1, g1, b1, a1 := a.At(p.X, p.Y).RGBA()
		r2, g2, b2, a2 := b.At(p.X, p.Y).RGBA()
		if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
			return false
		}
	}
	return true
}

// TestThumbnailOrientation: the red corner of a rotated photo's thumbnail
// is where the viewer sees it.
func TestThumbnailOrientation(t *testing.T) {
	m := testImage(400, 200) // red at the top left as stored
	for o, corner := range map[int]image.Point{1: {0, 0}, 3: {1, 1}, 6: {1, 0}, 8: {0, 1}, 2: {1, 0}, 4: {0, 1}} {
		src := testJPEG(t, m, "", jpegSegment(markerAPP1, append([]byte("Exif\x00\x00"), exifTIFF(uint16(o))...)))
		got, err := ProcessImage(src, JPEG, testLimits)
		if err != nil {
			t.Fatal(err)
		}
		th, _ := jpeg.Decode(bytes.NewReader(got.Thumb))
		b := th.Bounds()
		x, y := b.Min.X+2+corner.X*(b.Dx()-5), b.Min.Y+2+corner.Y*(b.Dy()-5)
		if r, g, _, _ := th.At(x, y).RGBA(); r>>8 < 200 || g>>8 > 80 {
			t.Errorf("orientation %d: thumbnail %v is not red at (%d,%d)", o, b, x, y)
		}
	}
}

func TestProcessImageRefuses(t *testing.T) {
	m := testImage(64, 48)
	goodPNG := testPNG(t, m)
	// A PNG header on garbage: the signature and IHDR, then noise.
	garbage := append(slices.Clone(goodPNG[:33]), bytes.Repeat([]byte{0x5A}, 4000)...)
	// The same in well-formed chunks: an IDAT of noise, CRC and all.
	garbageIDAT := append(slices.Clone(goodPNG[:33]), pngChunk("IDAT", bytes.Repeat([]byte{0x5A}, 4000))...)
	garbageIDAT = append(garbageIDAT, pngChunk("IEND", nil)...)
	// A decompression bomb: an IHDR declaring 100,000 × 100,000 pixels and
	// a few bytes of data.
	ihdr := binary.BigEndian.AppendUint32(nil, 100_000)
	ihdr = binary.BigEndian.AppendUint32(ihdr, 100_000)
	ihdr = append(ihdr, 8, 2, 0, 0, 0)
	bomb := append(slices.Clone(pngSignature), pngChunk("IHDR", ihdr)...)
	bomb = append(bomb, pngChunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})...)
	bomb = append(bomb, pngChunk("IEND", nil)...)
	// A JPEG whose frame header says 20,000 pixels wide.
	bigJPEG := testJPEG(t, m, "")
	if i := bytes.Index(bigJPEG, []byte{0xFF, 0xC0}); i > 0 {
		binary.BigEndian.PutUint16(bigJPEG[i+7:], 20000)
	}
	truncJPEG := testJPEG(t, m, "")
	truncJPEG = truncJPEG[:len(truncJPEG)/2]
	for _, tc := range []struct {
		name, mime string
		src        []byte
		want       string
	}{
		{"PNG header on garbage", PNG, garbage, "overruns the file"},
		{"PNG chunks of garbage", PNG, garbageIDAT, "does not decode"},
		{"decompression bomb", PNG, bomb, "100000×100000 pixels is over the limit"},
		{"side over the limit", JPEG, bigJPEG, "over the limit"},
		{"declared PNG, is JPEG", PNG, testJPEG(t, m, ""), "is image/jpeg, not the declared image/png"},
		{"not an image", JPEG, []byte("hello, world"), "not an image"},
		{"truncated JPEG", JPEG, truncJPEG, ""},
		{"not an image type", "text/plain", goodPNG, "not an image type"},
		{"PNG chunk overruns", PNG, append(slices.Clone(goodPNG[:33]), 0x7F, 0, 0, 0, 'I', 'D', 'A', 'T'), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ProcessImage(tc.src, tc.mime, testLimits)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalid with %q", err, tc.want)
			}
		})
	}
}

func TestStripWebPSimple(t *testing.T) {
	src, err := os.ReadFile("testdata/blue-purple-pink.lossy.webp")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ProcessImage(src, WebP, testLimits)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Data, src) || len(got.Removed) != 0 {
		t.Fatalf("a simple WebP without metadata was changed (removed %q)", got.Removed)
	}
	if _, err := webp.Decode(bytes.NewReader(got.Data)); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkProcessImage: a 12-megapixel photo (4000×3000 JPEG), the usual
// phone camera's, checked, stripped and thumbnailed.
func BenchmarkProcessImage(b *testing.B) {
	src := testJPEG(b, testImage(4000, 3000), "", jpegSegment(markerAPP1, append([]byte("Exif\x00\x00"), exifTIFF(6)...)))
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ProcessImage(src, JPEG, testLimits); err != nil {
			b.Fatal(err)
		}
	}
}
