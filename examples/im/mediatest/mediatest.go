// Package mediatest makes the media files the IM backend's tests upload:
// real JPEG, PNG, GIF and WebP files with the metadata a phone writes (EXIF
// with a GPS position, XMP, comments), MP4 and WebM containers with a
// duration and a location box, and the bad input the sendmedia Logicsvr
// must refuse. Every location it writes contains GPSMarker, so a test
// checks that none survived with one bytes.Contains.
package mediatest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

// XMPUUID is the uuid box type of XMP in MP4.
var XMPUUID = []byte{0xBE, 0x7A, 0xCF, 0xCB, 0x97, 0xA9, 0x42, 0xE8, 0x9C, 0x71, 0x99, 0x94, 0x91, 0xE3, 0xAF, 0xAC}

// testdata is this package's testdata directory.
func testdata() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata")
}

// File reads a file of testdata (see its README).
func File(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata(), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// GPSMarker stands for a location: the tests check it never survives.
const GPSMarker = "GPS-51.5007N-0.1246W"

// Image is a w×h gradient, its top-left corner red so that the
// orientation of a thumbnail can be checked.
func Image(w, h int) *image.RGBA {
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

// EXIF is a little-endian EXIF TIFF structure with an orientation tag
// and a GPS IFD holding GPSMarker.
func EXIF(orientation uint16) []byte {
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
	b = le.AppendUint32(b, uint32(len(GPSMarker)))
	b = le.AppendUint32(b, uint32(len(b)+4+4))
	b = le.AppendUint32(b, 0)
	return append(b, GPSMarker...)
}

// JPEGSegment is a JPEG marker segment.
func JPEGSegment(marker byte, body []byte) []byte {
	s := []byte{0xFF, marker}
	s = binary.BigEndian.AppendUint16(s, uint16(2+len(body)))
	return append(s, body...)
}

// JPEG is a JPEG of m with the given segments after SOI and trailer
// after EOI.
func JPEG(t testing.TB, m image.Image, trailer string, segs ...[]byte) []byte {
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

// PNGChunk is a PNG chunk, CRC and all.
func PNGChunk(typ string, data []byte) []byte {
	c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	c = append(c, typ...)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(append([]byte(typ), data...)))
}

// PNG is a PNG of m with chunks inserted after IHDR.
func PNG(t testing.TB, m image.Image, chunks ...[]byte) []byte {
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

// GIF is a GIF of m with extensions inserted after the global colour
// table.
func GIF(t testing.TB, m image.Image, exts ...[]byte) []byte {
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

// GIFExtension is a GIF extension block of the given sub-blocks.
func GIFExtension(label byte, blocks ...[]byte) []byte {
	e := []byte{0x21, label}
	for _, b := range blocks {
		e = append(e, byte(len(b)))
		e = append(e, b...)
	}
	return append(e, 0)
}

// WebPChunk is a RIFF chunk, padded.
func WebPChunk(fcc string, data []byte) []byte {
	c := append([]byte(fcc), binary.LittleEndian.AppendUint32(nil, uint32(len(data)))...)
	c = append(c, data...)
	if len(data)%2 == 1 {
		c = append(c, 0)
	}
	return c
}

// WebP is a VP8X WebP from testdata with EXIF and XMP chunks appended
// and announced in its flags.
func WebP(t testing.TB) []byte {
	t.Helper()
	out := File(t, "yellow_rose.lossy-with-alpha.webp")
	out[20] |= (1 << 3) | (1 << 2) // the VP8X flags byte
	out = append(out, WebPChunk("EXIF", EXIF(1))...)
	out = append(out, WebPChunk("XMP ", []byte("<x:xmpmeta>"+GPSMarker+"</x:xmpmeta>"))...)
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out
}

// Box is an MP4 box: size, type, payload.
func Box(typ string, payload ...[]byte) []byte {
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

// U32 is v big-endian.
func U32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// mvhd0 is a version-0 movie header.
func mvhd0(timescale, duration uint32) []byte {
	p := make([]byte, 100)
	binary.BigEndian.PutUint32(p[12:], timescale)
	binary.BigEndian.PutUint32(p[16:], duration)
	return Box("mvhd", p)
}

// tkhd0 is a version-0 track header of w×h pixels.
func tkhd0(w, h uint32) []byte {
	p := make([]byte, 84)
	binary.BigEndian.PutUint32(p[76:], w<<16)
	binary.BigEndian.PutUint32(p[80:], h<<16)
	return Box("tkhd", p)
}

func hdlr(kind string) []byte {
	return Box("hdlr", make([]byte, 8), []byte(kind), make([]byte, 13))
}

// MP4 is an MP4 of 12.345 s at 640×480 whose moov carries a location
// (©xyz) in udta and XMP in a uuid Box, with the movie header first or,
// fragmented, only a fragment duration.
func MP4(fragmented bool) []byte {
	mvhd := mvhd0(1000, 12345)
	var mvex []byte
	if fragmented {
		mvhd = mvhd0(90000, 0)
		mvex = Box("mvex", Box("mehd", make([]byte, 4), U32(90000*12345/1000)))
	}
	xyz := Box("\xa9xyz", []byte{0, 17, 0x15, 0xC7}, []byte(GPSMarker))
	moov := Box("moov", mvhd,
		Box("trak", tkhd0(640, 480), Box("mdia", hdlr("vide"))),
		Box("trak", tkhd0(0, 0), Box("mdia", hdlr("soun")), Box("udta", Box("name", []byte("audio")))),
		mvex,
		Box("udta", xyz),
		Box("uuid", XMPUUID, []byte("<x:xmpmeta>"+GPSMarker+"</x:xmpmeta>")),
	)
	return slices.Concat(Box("ftyp", []byte("isom"), U32(512), []byte("isomiso2mp41")), moov, Box("mdat", bytes.Repeat([]byte{7}, 5000)))
}

// EBML is an EBML element with a one-byte (or eight-byte) size.
func EBML(id uint32, payload ...[]byte) []byte {
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

// WebM is a WebM of 2.5 s at 320×240 whose Segment and Cluster have
// unknown sizes, as a live recording's do.
func WebM(docType string, withInfo bool) []byte {
	header := EBML(0x1A45DFA3, EBML(0x4286, []byte{1}), EBML(0x4282, []byte(docType)))
	var info []byte
	if withInfo {
		dur := binary.BigEndian.AppendUint64(nil, math.Float64bits(2500))
		info = EBML(0x1549A966, EBML(0x2AD7B1, U32(1_000_000)), EBML(0x4489, dur))
	}
	tracks := EBML(0x1654AE6B,
		EBML(0xAE, EBML(0x83, []byte{2})),
		EBML(0xAE, EBML(0x83, []byte{1}), EBML(0xE0, EBML(0xB0, []byte{0x01, 0x40}), EBML(0xBA, []byte{0xF0}))))
	cluster := slices.Concat([]byte{0x1F, 0x43, 0xB6, 0x75}, unknownSize, bytes.Repeat([]byte{0xA3, 0x81, 0}, 100))
	return slices.Concat(header, []byte{0x18, 0x53, 0x80, 0x67}, unknownSize, info, tracks, cluster)
}

// Photo is what a phone camera writes: a w×h JPEG with EXIF (an
// orientation and a GPS position holding GPSMarker), XMP with the position
// again, and a comment.
func Photo(t testing.TB, w, h int, orientation uint16) []byte {
	t.Helper()
	return JPEG(t, Image(w, h), "",
		JPEGSegment(0xE1, append([]byte("Exif\x00\x00"), EXIF(orientation)...)),
		JPEGSegment(0xE1, []byte("http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>"+GPSMarker+"</x:xmpmeta>")),
		JPEGSegment(0xFE, []byte("taken at "+GPSMarker)))
}

// PNGHeaderOnGarbage is a PNG signature and a valid header followed by
// noise: raw, or (chunked) wrapped in well-formed IDAT and IEND chunks, so
// that only decoding the pixels finds it out.
func PNGHeaderOnGarbage(t testing.TB, chunked bool) []byte {
	t.Helper()
	head := PNG(t, Image(64, 48))[:33] // signature and IHDR
	noise := bytes.Repeat([]byte{0x5A}, 4000)
	if !chunked {
		return append(head, noise...)
	}
	return slices.Concat(head, PNGChunk("IDAT", noise), PNGChunk("IEND", nil))
}

// PNGBomb is a decompression bomb: a PNG of a few dozen bytes whose header
// declares w×h pixels.
func PNGBomb(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0)
	return slices.Concat([]byte("\x89PNG\r\n\x1a\n"), PNGChunk("IHDR", ihdr),
		PNGChunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01}), PNGChunk("IEND", nil))
}

// MP4WithData is MP4(false) with n bytes of media data: a video of any
// size, for uploads of realistic weight.
func MP4WithData(n int) []byte {
	v := MP4(false)
	small := Box("mdat", bytes.Repeat([]byte{7}, 5000))
	return append(v[:len(v)-len(small)], Box("mdat", bytes.Repeat([]byte{7}, n))...)
}
