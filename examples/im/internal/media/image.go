package media

import (
	"bytes"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/webp"
)

// ImageLimits bound what ProcessImage accepts and makes.
type ImageLimits struct {
	// MaxPixels bounds width × height, MaxSide each of them.
	MaxPixels, MaxSide int
	// ThumbSide is the thumbnail's longest side.
	ThumbSide int
}

// Image is a processed image.
type Image struct {
	// Data is the file to serve: the upload without its metadata.
	Data []byte
	// Width and Height are as displayed: the EXIF orientation applied.
	Width, Height int
	// Orientation is the EXIF orientation, 1 to 8 (1: as stored).
	Orientation int
	// Removed names what StripImage removed ("exif", "xmp", ...).
	Removed []string
	// Thumb is a JPEG of at most ThumbSide pixels a side, upright.
	Thumb                   []byte
	ThumbWidth, ThumbHeight int
}

// ProcessImage checks, strips and thumbnails src, a whole file declared
// to be of type mime (see the package doc). Its errors wrap ErrInvalid
// when the file is at fault.
func ProcessImage(src []byte, mime string, lim ImageLimits) (*Image, error) {
	if !IsImage(mime) {
		return nil, invalidf("%q is not an image type", mime)
	}
	if got := SniffImage(src); got != mime {
		if got == "" {
			return nil, invalidf("the file is not an image (declared %s)", mime)
		}
		return nil, invalidf("the file is %s, not the declared %s", got, mime)
	}
	cfg, err := decodeConfig(src, mime)
	if err != nil {
		return nil, invalidf("%s header: %v", mime, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > lim.MaxSide || cfg.Height > lim.MaxSide ||
		int64(cfg.Width)*int64(cfg.Height) > int64(lim.MaxPixels) {
		return nil, invalidf("an image of %d×%d pixels is over the limit (%d pixels, %d a side)",
			cfg.Width, cfg.Height, lim.MaxPixels, lim.MaxSide)
	}
	out := &Image{Orientation: 1, Width: cfg.Width, Height: cfg.Height}
	var animated bool
	switch mime {
	case JPEG:
		out.Data, out.Orientation, out.Removed, err = stripJPEG(src)
	case PNG:
		out.Data, out.Removed, err = stripPNG(src)
	case GIF:
		out.Data, out.Removed, err = stripGIF(src)
	case WebP:
		out.Data, out.Removed, animated, err = stripWebP(src)
	}
	if err != nil {
		return nil, err
	}
	if animated {
		return nil, invalidf("animated WebP is not supported (send it as a video or a GIF)")
	}
	// Decode what will be served: a file the stripper mangled is refused
	// rather than served.
	img, err := decode(out.Data, mime)
	if err != nil {
		return nil, invalidf("%s does not decode: %v", mime, err)
	}
	// (A GIF's first frame may cover part of the screen only.)
	if b := img.Bounds(); mime != GIF && (b.Dx() != cfg.Width || b.Dy() != cfg.Height) {
		return nil, invalidf("%s decodes to %d×%d, its header says %d×%d", mime, b.Dx(), b.Dy(), cfg.Width, cfg.Height)
	}
	if out.Orientation >= 5 {
		out.Width, out.Height = out.Height, out.Width
	}
	out.Thumb, out.ThumbWidth, out.ThumbHeight, err = thumbnail(img, out.Orientation, lim.ThumbSide)
	if err != nil {
		return nil, err
	}
	return out, nil
}

func decodeConfig(src []byte, mime string) (image.Config, error) {
	r := bytes.NewReader(src)
	switch mime {
	case JPEG:
		return jpeg.DecodeConfig(r)
	case PNG:
		return png.DecodeConfig(r)
	case GIF:
		return gif.DecodeConfig(r)
	}
	return webp.DecodeConfig(r)
}

// decode decodes an image whose header passed decodeConfig and the limits.
// A GIF decodes to its first frame.
func decode(src []byte, mime string) (image.Image, error) {
	r := bytes.NewReader(src)
	switch mime {
	case JPEG:
		return jpeg.Decode(r)
	case PNG:
		return png.Decode(r)
	case GIF:
		return gif.Decode(r)
	}
	return webp.Decode(r)
}
