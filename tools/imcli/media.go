package main

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/imclient"
	"github.com/svrkit/svrkit/svrkit"
)

// mediaType returns the MIME type of a file to send: by its first bytes,
// else by its extension.
func mediaType(f *os.File, name string) string {
	var head [12]byte
	n, _ := f.ReadAt(head[:], 0)
	h := head[:n]
	switch {
	case len(h) >= 3 && h[0] == 0xFF && h[1] == 0xD8 && h[2] == 0xFF:
		return "image/jpeg"
	case strings.HasPrefix(string(h), "\x89PNG"):
		return "image/png"
	case strings.HasPrefix(string(h), "GIF8"):
		return "image/gif"
	case len(h) >= 12 && string(h[:4]) == "RIFF" && string(h[8:12]) == "WEBP":
		return "image/webp"
	case len(h) >= 8 && string(h[4:8]) == "ftyp":
		if strings.EqualFold(filepath.Ext(name), ".mov") {
			return "video/quicktime"
		}
		return "video/mp4"
	case strings.HasPrefix(string(h), "\x1a\x45\xdf\xa3"):
		if strings.EqualFold(filepath.Ext(name), ".mkv") {
			return "video/x-matroska"
		}
		return "video/webm"
	}
	return ""
}

// uploadFile uploads a file, resuming an upload of the same file that an
// earlier run did not finish (its id is kept in the state file until the
// upload completes).
func (c *cli) uploadFile(cl *imclient.Client, st *state, statePath, path, wantKind string) (*im.MediaInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	mime := mediaType(f, path)
	if !strings.HasPrefix(mime, wantKind+"/") {
		return nil, usagef("%s is not a JPEG, PNG, GIF or WebP image, nor an MP4, QuickTime or WebM video that could be sent as %s", path, wantKind)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, fi.Size())); err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%x:%d", h.Sum(nil), fi.Size())
	opts := imclient.UploadOptions{
		UploadID: st.Uploads[key],
		Started: func(id string) {
			if st.Uploads == nil {
				st.Uploads = map[string]string{}
			}
			st.Uploads[key] = id
			_ = st.save(statePath)
		},
	}
	if !c.json && opts.UploadID != "" {
		c.printf("resuming the upload of %s", path)
	}
	info, err := cl.Upload(c.ctx, f, fi.Size(), mime, opts)
	if code := svrkit.CodeOf(err); opts.UploadID != "" && (code == svrkit.NotFound || code == svrkit.InvalidArgument) {
		// The kept upload expired (or was refused): start over.
		delete(st.Uploads, key)
		opts.UploadID = ""
		info, err = cl.Upload(c.ctx, f, fi.Size(), mime, opts)
	}
	if err != nil {
		return nil, err
	}
	delete(st.Uploads, key)
	_ = st.save(statePath)
	return info, nil
}

func (c *cli) sendimage(args []string) error {
	if len(args) != 2 {
		return usagef("usage: sendimage NAME|ID FILE")
	}
	st, path, cl, err := c.loggedIn()
	if err != nil {
		return err
	}
	to, err := c.resolve(cl, st, args[0])
	if err != nil {
		return err
	}
	info, err := c.uploadFile(cl, st, path, args[1], "image")
	if err != nil {
		return err
	}
	r, err := cl.SendImage(c.ctx, to, "", info.GetMediaId())
	if err != nil {
		return err
	}
	return c.printSent(args[0], info, r)
}

func (c *cli) sendvideo(args []string) error {
	var cover string
	pos, err := subFlags("sendvideo", args, func(fs *flag.FlagSet) { fs.StringVar(&cover, "cover", "", "") })
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("usage: sendvideo NAME|ID FILE [-cover IMAGE]")
	}
	st, path, cl, err := c.loggedIn()
	if err != nil {
		return err
	}
	to, err := c.resolve(cl, st, pos[0])
	if err != nil {
		return err
	}
	info, err := c.uploadFile(cl, st, path, pos[1], "video")
	if err != nil {
		return err
	}
	var coverID string
	if cover != "" {
		ci, err := c.uploadFile(cl, st, path, cover, "image")
		if err != nil {
			return err
		}
		coverID = ci.GetMediaId()
	}
	r, err := cl.SendVideo(c.ctx, to, "", info.GetMediaId(), coverID)
	if err != nil {
		return err
	}
	return c.printSent(pos[0], info, r)
}

func (c *cli) printSent(to string, info *im.MediaInfo, r *im.SendReply) error {
	if c.json {
		c.printJSON(map[string]any{"media_id": info.GetMediaId(), "mime_type": info.GetMimeType(), "size": info.GetSize(),
			"width": info.GetWidth(), "height": info.GetHeight(), "duration_ms": info.GetDurationMs(),
			"stripped": info.GetStripped(), "sent_unix_ms": r.GetSentUnixMs(), "duplicate": r.GetDuplicate()})
		return nil
	}
	what := fmt.Sprintf("%s %d×%d, %s", info.GetMimeType(), info.GetWidth(), info.GetHeight(), byteSize(info.GetSize()))
	if d := info.GetDurationMs(); d > 0 {
		what += fmt.Sprintf(", %.1fs", float64(d)/1000)
	}
	if s := info.GetStripped(); len(s) > 0 {
		what += "; removed " + strings.Join(s, ", ")
	}
	c.printf("sent %s to %s at %s (media %s)", what, to, time.UnixMilli(r.GetSentUnixMs()).Format(time.TimeOnly), info.GetMediaId())
	return nil
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// download writes a media's file to -o (default: the media id with the
// type's extension), through FILE.part, resuming a .part an earlier run
// left.
func (c *cli) download(args []string) error {
	var out string
	var thumb bool
	pos, err := subFlags("download", args, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "o", "", "")
		fs.BoolVar(&thumb, "thumb", false, "")
	})
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("usage: download MEDIA_ID [-thumb] [-o FILE]")
	}
	id := pos[0]
	_, _, cl, err := c.loggedIn()
	if err != nil {
		return err
	}
	if out == "" {
		out = id
		if thumb {
			out += ".thumb"
		}
	}
	part := out + ".part"
	f, err := os.OpenFile(part, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	off, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	d, err := cl.Download(c.ctx, id, thumb, off, f)
	if svrkit.CodeOf(err) == svrkit.OutOfRange && off > 0 {
		// The .part is whole already (or longer than the file): again.
		if err := f.Truncate(0); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		off = 0
		d, err = cl.Download(c.ctx, id, thumb, 0, f)
	}
	if err != nil {
		if d != nil && d.Written > 0 {
			return fmt.Errorf("%w (%d bytes are in %s: run the same command again to resume)", err, off+d.Written, part)
		}
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if out == id || out == id+".thumb" {
		out += extension(d.MimeType)
	}
	if err := os.Rename(part, out); err != nil {
		return err
	}
	if c.json {
		c.printJSON(map[string]any{"media_id": id, "file": out, "size": d.Size, "mime_type": d.MimeType, "resumed_at": off})
		return nil
	}
	if off > 0 {
		c.printf("resumed at %s", byteSize(off))
	}
	c.printf("downloaded %s (%s, %s) to %s", id, d.MimeType, byteSize(d.Size), out)
	return nil
}

func extension(mime string) string {
	switch mime {
	case "image/jpeg":
		return ".jpg"
	case "image/png":
		return ".png"
	case "image/gif":
		return ".gif"
	case "image/webp":
		return ".webp"
	case "video/mp4":
		return ".mp4"
	case "video/quicktime":
		return ".mov"
	case "video/webm":
		return ".webm"
	case "video/x-matroska":
		return ".mkv"
	}
	return ""
}

// mediaLine is how a media message prints.
func mediaLine(m *im.Message) string {
	r := m.GetMedia()
	kind := "image"
	if m.GetType() == im.MessageType_MESSAGE_TYPE_VIDEO {
		kind = "video"
	}
	s := fmt.Sprintf("(%s %d×%d, %s", kind, r.GetWidth(), r.GetHeight(), byteSize(r.GetSize()))
	if d := r.GetDurationMs(); d > 0 {
		s += fmt.Sprintf(", %.1fs", float64(d)/1000)
	}
	return s + "; imcli download " + r.GetMediaId() + ")"
}
