package media

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"

	"golang.org/x/image/draw"
)

// thumbQuality is the thumbnails' JPEG quality: small files for a list of
// messages, good enough at 320 pixels.
const thumbQuality = 80

// thumbnail scales img to fit side×side (never up), turns it upright by
// the EXIF orientation, lays it on white (JPEG has no alpha) and encodes it
// as a JPEG.
func thumbnail(img image.Image, orientation, side int) ([]byte, int, int, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w >= h && w > side {
		w, h = side, max(1, h*side/w)
	} else if h > w && h > side {
		w, h = max(1, w*side/h), side
	}
	// A large reduction first averages k×k blocks (fast, and no aliasing),
	// then scales what is left, at most twice the thumbnail, bilinearly.
	src, sb := img, b
	if k := min(b.Dx()/w, b.Dy()/h) / 2; k >= 2 {
		src = boxReduce(img, k)
		sb = src.Bounds()
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	// Over composites alpha on the white.
	draw.BiLinear.Scale(dst, dst.Bounds(), src, sb, draw.Over, nil)
	up := orient(dst, orientation)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, up, &jpeg.Options{Quality: thumbQuality}); err != nil {
		return nil, 0, 0, err
	}
	ub := up.Bounds()
	return buf.Bytes(), ub.Dx(), ub.Dy(), nil
}

// orient applies EXIF orientation o (1 to 8) to m: the image as it should
// be displayed.
func orient(m *image.RGBA, o int) *image.RGBA {
	if o <= 1 || o > 8 {
		return m
	}
	w, h := m.Bounds().Dx(), m.Bounds().Dy()
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	out := image.NewRGBA(image.Rect(0, 0, ow, oh))
	for y := range h {
		for x := range w {
			var dx, dy int
			switch o {
			case 2: // mirrored horizontally
				dx, dy = w-1-x, y
			case 3: // rotated 180°
				dx, dy = w-1-x, h-1-y
			case 4: // mirrored vertically
				dx, dy = x, h-1-y
			case 5: // transposed
				dx, dy = y, x
			case 6: // rotated 90° clockwise to display
				dx, dy = h-1-y, x
			case 7: // transversed
				dx, dy = h-1-y, w-1-x
			case 8: // rotated 90° counter-clockwise to display
				dx, dy = y, w-1-x
			}
			out.SetRGBA(dx, dy, m.RGBAAt(x, y))
		}
	}
	return out
}

// boxReduce returns m shrunk k times each way, each pixel the average of
// a k×k block (premultiplied alpha). It converts m to RGBA first, which
// image/draw does fast for the decoders' image types.
func boxReduce(m image.Image, k int) *image.RGBA {
	b := m.Bounds()
	rgba, ok := m.(*image.RGBA)
	if !ok {
		rgba = image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(rgba, rgba.Bounds(), m, b.Min, draw.Src)
	}
	w, h := rgba.Bounds().Dx()/k, rgba.Bounds().Dy()/k
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	sums := make([]uint32, 4*w)
	n := uint32(k * k)
	for y := range h {
		clear(sums)
		for dy := range k {
			row := rgba.Pix[(y*k+dy)*rgba.Stride:]
			for x := range w {
				px := row[4*x*k : 4*(x+1)*k]
				s := sums[4*x : 4*x+4]
				for i := 0; i < len(px); i += 4 {
					s[0] += uint32(px[i])
					s[1] += uint32(px[i+1])
					s[2] += uint32(px[i+2])
					s[3] += uint32(px[i+3])
				}
			}
		}
		dst := out.Pix[y*out.Stride:]
		for i, v := range sums {
			dst[i] = uint8(v / n)
		}
	}
	return out
}
