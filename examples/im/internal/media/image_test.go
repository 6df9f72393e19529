package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/jpeg"
	"slices"
	"strings"
	"testing"

	"golang.org/x/image/webp"

	"github.com/svrkit/svrkit/examples/im/mediatest"
)

var testLimits = ImageLimits{MaxPixels: 50_000_000, MaxSide: 16384, ThumbSide: 320}

func TestProcessImage(t *testing.T) {
	m := mediatest.Image(640, 480)
	icc := mediatest.JPEGSegment(markerAPP2, []byte("ICC_PROFILE\x00\x01\x01fake profile"))
	xmp := []byte("<x:xmpmeta><exif:GPSLatitude>" + mediatest.GPSMarker + "</exif:GPSLatitude></x:xmpmeta>")
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
			src: mediatest.JPEG(t, m, "junk after EOI",
				mediatest.JPEGSegment(markerAPP0, []byte("JFIF\x00\x01\x02\x00\x00\x01\x00\x01\x00\x00")),
				mediatest.JPEGSegment(markerAPP1, append([]byte("Exif\x00\x00"), mediatest.EXIF(6)...)),
				mediatest.JPEGSegment(markerAPP1, append([]byte("http://ns.adobe.com/xap/1.0/\x00"), xmp...)),
				mediatest.JPEGSegment(markerAPPD, []byte("Photoshop 3.0\x00"+mediatest.GPSMarker)),
				mediatest.JPEGSegment(markerCOM, []byte("taken at "+mediatest.GPSMarker)),
				icc),
			removed: []string{"exif", "xmp", "iptc", "comment", "trailer"},
			keep:    []string{"JFIF\x00", "ICC_PROFILE\x00", "Exif\x00\x00MM"},
			w:       480, h: 640, orient: 6,
		},
		{
			name: "JPEG without metadata", mime: JPEG, src: mediatest.JPEG(t, m, ""),
			w: 640, h: 480, orient: 1,
		},
		{
			name: "PNG with eXIf and XMP text", mime: PNG,
			src: mediatest.PNG(t, m, mediatest.PNGChunk("eXIf", mediatest.EXIF(1)), mediatest.PNGChunk("iTXt", append([]byte("XML:com.adobe.xmp\x00\x00\x00\x00\x00"), xmp...)),
				mediatest.PNGChunk("tEXt", []byte("Comment\x00"+mediatest.GPSMarker)), mediatest.PNGChunk("tIME", []byte{7, 234, 11, 29, 12, 0, 0}), mediatest.PNGChunk("pHYs", []byte{0, 0, 11, 19, 0, 0, 11, 19, 1})),
			removed: []string{"exif", "text", "time"}, keep: []string{"pHYs"},
			w: 640, h: 480, orient: 1,
		},
		{
			name: "GIF with comment and XMP", mime: GIF,
			src: mediatest.GIF(t, m,
				mediatest.GIFExtension(0xFF, []byte("NETSCAPE2.0"), []byte{1, 0, 0}),
				mediatest.GIFExtension(0xFE, []byte(mediatest.GPSMarker)),
				mediatest.GIFExtension(0xFF, []byte("XMP DataXMP"), xmp)),
			removed: []string{"comment", "application"}, keep: []string{"NETSCAPE2.0"},
			w: 640, h: 480, orient: 1,
		},
		{
			name: "WebP with EXIF and XMP", mime: WebP, src: mediatest.WebP(t),
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
			if bytes.Contains(got.Data, []byte(mediatest.GPSMarker)) {
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
	m := mediatest.Image(400, 200) // red at the top left as stored
	for o, corner := range map[int]image.Point{1: {0, 0}, 3: {1, 1}, 6: {1, 0}, 8: {0, 1}, 2: {1, 0}, 4: {0, 1}} {
		src := mediatest.JPEG(t, m, "", mediatest.JPEGSegment(markerAPP1, append([]byte("Exif\x00\x00"), mediatest.EXIF(uint16(o))...)))
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
	m := mediatest.Image(64, 48)
	goodPNG := mediatest.PNG(t, m)
	garbage := mediatest.PNGHeaderOnGarbage(t, false)
	garbageIDAT := mediatest.PNGHeaderOnGarbage(t, true)
	bomb := mediatest.PNGBomb(100_000, 100_000)
	// A JPEG whose frame header says 20,000 pixels wide.
	bigJPEG := mediatest.JPEG(t, m, "")
	if i := bytes.Index(bigJPEG, []byte{0xFF, 0xC0}); i > 0 {
		binary.BigEndian.PutUint16(bigJPEG[i+7:], 20000)
	}
	truncJPEG := mediatest.JPEG(t, m, "")
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
		{"declared PNG, is JPEG", PNG, mediatest.JPEG(t, m, ""), "is image/jpeg, not the declared image/png"},
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
	src, err := mediatest.File(t, "blue-purple-pink.lossy.webp"), error(nil)
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
	src := mediatest.JPEG(b, mediatest.Image(4000, 3000), "", mediatest.JPEGSegment(markerAPP1, append([]byte("Exif\x00\x00"), mediatest.EXIF(6)...)))
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ProcessImage(src, JPEG, testLimits); err != nil {
			b.Fatal(err)
		}
	}
}
