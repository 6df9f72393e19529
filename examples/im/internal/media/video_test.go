package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/svrkit/svrkit/examples/im/mediatest"
)

// probe writes src to a file and probes it in place, as the sendmedia
// Logicsvr does.
func probe(t *testing.T, src []byte, mime string) (*Video, []byte, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := ProbeVideo(f, f, int64(len(src)), mime)
	out, rerr := os.ReadFile(path)
	if rerr != nil {
		t.Fatal(rerr)
	}
	return v, out, err
}

func TestProbeVideo(t *testing.T) {
	for _, tc := range []struct {
		name, mime string
		src        []byte
		want       Video
	}{
		{"MP4", MP4, mediatest.MP4(false), Video{Container: MP4, DurationMs: 12345, Width: 640, Height: 480, Removed: []string{"udta", "xmp"}}},
		{"fragmented MP4 declared QuickTime", MOV, mediatest.MP4(true), Video{Container: MP4, DurationMs: 12345, Width: 640, Height: 480, Removed: []string{"udta", "xmp"}}},
		{"WebM", WebM, mediatest.WebM("webm", true), Video{Container: WebM, DurationMs: 2500, Width: 320, Height: 240}},
		{"Matroska", Matroska, mediatest.WebM("matroska", true), Video{Container: WebM, DurationMs: 2500, Width: 320, Height: 240}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, out, err := probe(t, tc.src, tc.mime)
			if err != nil {
				t.Fatal(err)
			}
			if v.Container != tc.want.Container || v.DurationMs != tc.want.DurationMs || v.Width != tc.want.Width ||
				v.Height != tc.want.Height || !slices.Equal(v.Removed, tc.want.Removed) {
				t.Fatalf("got %+v, want %+v", *v, tc.want)
			}
			if len(out) != len(tc.src) {
				t.Fatalf("the file changed size: %d -> %d", len(tc.src), len(out))
			}
			if bytes.Contains(out, []byte(mediatest.GPSMarker)) {
				t.Fatal("the location survived")
			}
			// What was overwritten is still a valid file: probe it again.
			again, _, err := probe(t, out, tc.mime)
			if err != nil || again.DurationMs != v.DurationMs || len(again.Removed) != 0 {
				t.Fatalf("probing the result: %+v, %v", again, err)
			}
			if tc.want.Container == MP4 && !bytes.Contains(out, []byte("free")) {
				t.Fatal("no free box in place of the metadata")
			}
		})
	}
}

func TestProbeVideoRefuses(t *testing.T) {
	mp4 := mediatest.MP4(false)
	truncated := mp4[:len(mp4)-100]
	noMoov := slices.Concat(mediatest.Box("ftyp", []byte("isom"), mediatest.U32(0)), mediatest.Box("mdat", []byte("x")))
	notFirst := slices.Concat(mediatest.Box("free", nil), mp4)
	huge := slices.Clone(mp4)
	binary.BigEndian.PutUint32(huge[0:], 1<<31) // ftyp claims 2 GiB
	for _, tc := range []struct {
		name, mime string
		src        []byte
		want       string
	}{
		{"truncated MP4", MP4, truncated, "overruns"},
		{"box size past the end", MP4, huge, "overruns"},
		{"no moov", MP4, noMoov, "no movie box"},
		{"ftyp not first", MP4, notFirst, "not an MP4"},
		{"declared WebM, is MP4", WebM, mp4, "is video/mp4, not the declared video/webm"},
		{"an image", MP4, mediatest.PNG(t, mediatest.Image(8, 8)), "not an MP4"},
		{"WebM without Info", WebM, mediatest.WebM("webm", false), "no segment Info"},
		{"other DocType", WebM, mediatest.WebM("avi", true), "DocType"},
		{"not a video type", "video/avi", mp4, "not a video type"},
		{"empty", MP4, nil, "not an MP4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := probe(t, tc.src, tc.mime)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalid with %q", err, tc.want)
			}
		})
	}
}
