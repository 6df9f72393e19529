package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// box is an MP4 box: size, type, payload.
func box(typ string, payload ...[]byte) []byte {
	n := 8
	for _, p := range payload {
		n += len(p)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	b = append(b, typ...)
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// mvhd0 is a version-0 movie header.
func mvhd0(timescale, duration uint32) []byte {
	p := make([]byte, 100)
	binary.BigEndian.PutUint32(p[12:], timescale)
	binary.BigEndian.PutUint32(p[16:], duration)
	return box("mvhd", p)
}

// tkhd0 is a version-0 track header of w×h pixels.
func tkhd0(w, h uint32) []byte {
	p := make([]byte, 84)
	binary.BigEndian.PutUint32(p[76:], w<<16)
	binary.BigEndian.PutUint32(p[80:], h<<16)
	return box("tkhd", p)
}

func hdlr(kind string) []byte {
	return box("hdlr", make([]byte, 8), []byte(kind), make([]byte, 13))
}

// testMP4 is an MP4 of 12.345 s at 640×480 whose moov carries a location
// (©xyz) in udta and XMP in a uuid box, with the movie header first or,
// fragmented, only a fragment duration.
func testMP4(fragmented bool) []byte {
	mvhd := mvhd0(1000, 12345)
	var mvex []byte
	if fragmented {
		mvhd = mvhd0(90000, 0)
		mvex = box("mvex", box("mehd", make([]byte, 4), u32(90000*12345/1000)))
	}
	xyz := box("\xa9xyz", []byte{0, 17, 0x15, 0xC7}, []byte(gpsMarker))
	moov := box("moov", mvhd,
		box("trak", tkhd0(640, 480), box("mdia", hdlr("vide"))),
		box("trak", tkhd0(0, 0), box("mdia", hdlr("soun")), box("udta", box("name", []byte("audio")))),
		mvex,
		box("udta", xyz),
		box("uuid", xmpUUID, []byte("<x:xmpmeta>"+gpsMarker+"</x:xmpmeta>")),
	)
	return slices.Concat(box("ftyp", []byte("isom"), u32(512), []byte("isomiso2mp41")), moov, box("mdat", bytes.Repeat([]byte{7}, 5000)))
}

// ebml is an EBML element with a one-byte (or eight-byte) size.
func ebml(id uint32, payload ...[]byte) []byte {
	var b []byte
	switch {
	case id > 0xFFFFFF:
		b = binary.BigEndian.AppendUint32(nil, id)
	case id > 0xFFFF:
		b = []byte{byte(id >> 16), byte(id >> 8), byte(id)}
	case id > 0xFF:
		b = []byte{byte(id >> 8), byte(id)}
	default:
		b = []byte{byte(id)}
	}
	body := slices.Concat(payload...)
	b = append(b, 0x01) // eight-byte size
	b = binary.BigEndian.AppendUint64(b[:len(b)-1], uint64(len(body))|0x01<<56)
	return append(b, body...)
}

var unknownSize = []byte{0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}

// testWebM is a WebM of 2.5 s at 320×240 whose Segment and Cluster have
// unknown sizes, as a live recording's do.
func testWebM(docType string, withInfo bool) []byte {
	header := ebml(ebmlHeader, ebml(0x4286, []byte{1}), ebml(ebmlDocType, []byte(docType)))
	var info []byte
	if withInfo {
		dur := binary.BigEndian.AppendUint64(nil, math.Float64bits(2500))
		info = ebml(mkvInfo, ebml(mkvTimecode, u32(1_000_000)), ebml(mkvDuration, dur))
	}
	tracks := ebml(mkvTracks,
		ebml(mkvTrackEntry, ebml(mkvTrackType, []byte{2})),
		ebml(mkvTrackEntry, ebml(mkvTrackType, []byte{1}), ebml(mkvVideo, ebml(mkvPixelWidth, []byte{0x01, 0x40}), ebml(mkvPixelHeight, []byte{0xF0}))))
	cluster := slices.Concat([]byte{0x1F, 0x43, 0xB6, 0x75}, unknownSize, bytes.Repeat([]byte{0xA3, 0x81, 0}, 100))
	return slices.Concat(header, []byte{0x18, 0x53, 0x80, 0x67}, unknownSize, info, tracks, cluster)
}

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
		{"MP4", MP4, testMP4(false), Video{Container: MP4, DurationMs: 12345, Width: 640, Height: 480, Removed: []string{"udta", "xmp"}}},
		{"fragmented MP4 declared QuickTime", MOV, testMP4(true), Video{Container: MP4, DurationMs: 12345, Width: 640, Height: 480, Removed: []string{"udta", "xmp"}}},
		{"WebM", WebM, testWebM("webm", true), Video{Container: WebM, DurationMs: 2500, Width: 320, Height: 240}},
		{"Matroska", Matroska, testWebM("matroska", true), Video{Container: WebM, DurationMs: 2500, Width: 320, Height: 240}},
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
			if bytes.Contains(out, []byte(gpsMarker)) {
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
	mp4 := testMP4(false)
	truncated := mp4[:len(mp4)-100]
	noMoov := slices.Concat(box("ftyp", []byte("isom"), u32(0)), box("mdat", []byte("x")))
	notFirst := slices.Concat(box("free", nil), mp4)
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
		{"an image", MP4, testPNG(t, testImage(8, 8)), "not an MP4"},
		{"WebM without Info", WebM, testWebM("webm", false), "no segment Info"},
		{"other DocType", WebM, testWebM("avi", true), "DocType"},
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
