package media

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/svrkit/svrkit/examples/im/mediatest"
)

// FuzzStripImage: no input makes a stripper panic or grow a file by more
// than the orientation segment it may add, and what a stripper returns
// holds none of what it says it removed: stripping it again removes
// nothing (but a JPEG's rewritten EXIF).
func FuzzStripImage(f *testing.F) {
	m := mediatest.Image(16, 12)
	f.Add(mediatest.JPEG(f, m, "tail", mediatest.JPEGSegment(markerAPP1, append([]byte("Exif\x00\x00"), mediatest.EXIF(6)...)), mediatest.JPEGSegment(markerCOM, []byte("c"))))
	f.Add(mediatest.PNG(f, m, mediatest.PNGChunk("tEXt", []byte("k\x00v"))))
	f.Add(mediatest.GIF(f, m, mediatest.GIFExtension(0xFE, []byte("c"))))
	f.Add(mediatest.WebP(f))
	f.Fuzz(func(t *testing.T, src []byte) {
		check := func(name string, out []byte, removed []string, err error, again func([]byte) []string) {
			if err != nil {
				return
			}
			if len(out) > len(src)+34 {
				t.Fatalf("%s: grew from %d to %d bytes", name, len(src), len(out))
			}
			for _, r := range again(out) {
				if r != "exif" {
					t.Fatalf("%s: stripping twice removed %q", name, r)
				}
			}
			_ = removed
		}
		out, _, rm, err := stripJPEG(src)
		check("jpeg", out, rm, err, func(b []byte) []string { _, _, r, _ := stripJPEG(b); return r })
		out, rm, err = stripPNG(src)
		check("png", out, rm, err, func(b []byte) []string { _, r, _ := stripPNG(b); return r })
		out, rm, err = stripGIF(src)
		check("gif", out, rm, err, func(b []byte) []string { _, r, _ := stripGIF(b); return r })
		out, rm, _, err = stripWebP(src)
		check("webp", out, rm, err, func(b []byte) []string { _, r, _, _ := stripWebP(b); return r })
		for _, mime := range []string{JPEG, PNG, GIF, WebP} {
			_, _ = ProcessImage(src, mime, ImageLimits{MaxPixels: 1 << 20, MaxSide: 4096, ThumbSide: 64})
		}
	})
}

// FuzzProbeVideo: no input makes ProbeVideo panic or change a file's size,
// and a file it accepted it accepts again, with nothing left to remove.
func FuzzProbeVideo(f *testing.F) {
	f.Add(mediatest.MP4(false))
	f.Add(mediatest.MP4(true))
	f.Add(mediatest.WebM("webm", true))
	f.Fuzz(func(t *testing.T, src []byte) {
		for _, mime := range []string{MP4, WebM} {
			path := filepath.Join(t.TempDir(), "v")
			if err := os.WriteFile(path, src, 0o600); err != nil {
				t.Fatal(err)
			}
			fl, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ProbeVideo(fl, fl, int64(len(src)), mime)
			fl.Close()
			out, rerr := os.ReadFile(path)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if len(out) != len(src) {
				t.Fatalf("size changed: %d -> %d", len(src), len(out))
			}
			if err != nil {
				continue
			}
			r := bytes.NewReader(out)
			again, err := ProbeVideo(r, discardAt{}, int64(len(out)), mime)
			if err != nil {
				t.Fatalf("accepted once, refused after its own rewrite: %v", err)
			}
			if len(again.Removed) != 0 {
				t.Fatalf("left %q to remove", again.Removed)
			}
		}
	})
}

type discardAt struct{}

func (discardAt) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }
