// Package media checks and prepares the images and videos users send
// (idl/im/media.proto says what the sendmedia Logicsvr promises; this is
// how).
//
// # Images
//
// ProcessImage takes a whole image file (JPEG, PNG, GIF or WebP, at most
// 10 MiB) and
//
//  1. sniffs its format from its first bytes and refuses a file that is
//     not of the declared type;
//  2. reads the dimensions from the header (image.DecodeConfig) and refuses
//     an image over the pixel or side limit before anything is allocated
//     for its pixels: a decompression bomb (a small file declaring a
//     gigantic image) costs a header read;
//  3. rewrites the file without the metadata that can locate or identify
//     the sender (StripImage: per format, see media.proto for what is kept),
//     copying the compressed pixel data untouched;
//  4. decodes the pixels in full, which refuses a valid header on garbage,
//     and makes a JPEG thumbnail turned upright by the EXIF orientation.
//
// The stripping parsers walk the container's structure (JPEG segments, PNG
// and WebP chunks, GIF blocks) with every length checked against what
// remains, and copy what they keep byte for byte; they never decode pixels.
// Each has a fuzz target.
//
// # Video
//
// ProbeVideo checks an MP4/QuickTime or WebM/Matroska file's container
// structure without decoding a frame, reads its duration and dimensions
// where the container states them, and overwrites MP4 user-data and
// metadata boxes (where phones record the location) in place with free
// boxes of the same size. It reads and writes through io.ReaderAt and
// io.WriterAt, so a 100 MiB video is never held in memory.
package media

import (
	"bytes"
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every error about the content of a file: not
// of the declared type, malformed, over a limit, unsupported.
var ErrInvalid = errors.New("media: invalid file")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// The MIME types media.proto accepts.
const (
	JPEG     = "image/jpeg"
	PNG      = "image/png"
	GIF      = "image/gif"
	WebP     = "image/webp"
	MP4      = "video/mp4"
	MOV      = "video/quicktime"
	WebM     = "video/webm"
	Matroska = "video/x-matroska"
)

// IsImage and IsVideo report whether mime is one of the accepted image or
// video types.
func IsImage(mime string) bool { return mime == JPEG || mime == PNG || mime == GIF || mime == WebP }

// IsVideo: see IsImage.
func IsVideo(mime string) bool { return mime == MP4 || mime == MOV || mime == WebM || mime == Matroska }

// SniffImage returns the image type head (a file's first bytes, 12 are
// enough) starts like, or "".
func SniffImage(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		return JPEG
	case bytes.HasPrefix(head, pngSignature):
		return PNG
	case bytes.HasPrefix(head, []byte("GIF87a")), bytes.HasPrefix(head, []byte("GIF89a")):
		return GIF
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		return WebP
	}
	return ""
}

// sameType reports whether a sniffed type satisfies a declared one: the
// video containers come in pairs of names (an MP4 may be declared
// QuickTime and the other way round; WebM is Matroska).
func sameType(declared, sniffed string) bool {
	switch declared {
	case MP4, MOV:
		return sniffed == MP4
	case WebM, Matroska:
		return sniffed == WebM
	}
	return declared == sniffed
}
