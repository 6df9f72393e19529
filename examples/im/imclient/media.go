package imclient

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/cgi"
)

// chunkAttempt bounds one chunk's attempt: up to 2 MiB on a slow link.
const chunkAttempt = 30 * time.Second

// UploadOptions change Upload.
type UploadOptions struct {
	// ChunkSize is the size of the chunks (0: the server's default, 1 MiB).
	ChunkSize uint32
	// UploadID resumes an upload started before (by a process that died,
	// or a connection that dropped): Upload asks which ranges the server
	// has and sends only the rest. Empty starts a new upload.
	UploadID string
	// Started, if set, is told the upload's id as soon as it has one, so
	// that the caller can keep it and resume later.
	Started func(uploadID string)
	// Progress, if set, is told the bytes the server has after each chunk.
	Progress func(stored, size int64)
	// StopAfter, if positive, makes Upload return (with the upload
	// unfinished) once at least that many bytes are stored: for tests and
	// benchmarks of resuming.
	StopAfter int64
}

// ErrStopped is what Upload returns when UploadOptions.StopAfter stopped
// it.
var ErrStopped = svrkit.NewError(svrkit.Aborted, "upload stopped as asked (StopAfter)")

// Upload uploads the size bytes of r, a file of type mime, and completes
// the upload (media.proto): it starts an upload (or resumes
// opts.UploadID), sends every chunk the server does not have, in order,
// retrying each on failures that say nothing about the chunk, and
// completes it. It returns the media, whose id SendImage and SendVideo
// take.
func (c *Client) Upload(ctx context.Context, r io.ReaderAt, size int64, mime string, opts UploadOptions) (*im.MediaInfo, error) {
	ctx, err := c.authed(ctx)
	if err != nil {
		return nil, err
	}
	var st *im.UploadState
	if opts.UploadID != "" {
		st, err = retry(ctx, func(ctx context.Context) (*im.UploadState, error) {
			return c.media.GetUpload(ctx, &im.GetUploadRequest{UploadId: opts.UploadID})
		})
		if err != nil {
			return nil, err
		}
	} else {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
			return nil, svrkit.Errorf(svrkit.InvalidArgument, "reading the file: %v", err)
		}
		req := &im.StartUploadRequest{MimeType: mime, Size: size, Sha256: h.Sum(nil), ChunkSize: opts.ChunkSize}
		// Not retried: a retry would start a second upload. A failure
		// leaves at most an empty upload, which expires.
		attempt, cancel := context.WithTimeout(ctx, attemptTimeout)
		st, err = c.media.StartUpload(attempt, req)
		cancel()
		if err != nil {
			return nil, err
		}
	}
	id := st.GetUploadId()
	if opts.Started != nil {
		opts.Started(id)
	}
	if !st.GetCompleted() {
		if err := c.sendChunks(ctx, r, st, opts); err != nil {
			return nil, err
		}
	}
	return retryWithin(ctx, 2*time.Minute, func(ctx context.Context) (*im.MediaInfo, error) {
		return c.media.CompleteUpload(ctx, &im.CompleteUploadRequest{UploadId: id})
	})
}

// sendChunks sends the chunks st does not list as stored.
func (c *Client) sendChunks(ctx context.Context, r io.ReaderAt, st *im.UploadState, opts UploadOptions) error {
	size, cs := st.GetSize(), int64(st.GetChunkSize())
	have := map[int64]bool{}
	for _, rg := range st.GetStored() {
		for off := rg.GetOffset(); off < rg.GetOffset()+rg.GetLength(); off += cs {
			have[off] = true
		}
	}
	stored := st.GetStoredBytes()
	buf := make([]byte, cs)
	for off := int64(0); off < size; off += cs {
		if have[off] {
			continue
		}
		if opts.StopAfter > 0 && stored >= opts.StopAfter {
			return ErrStopped
		}
		chunk := buf[:min(cs, size-off)]
		if _, err := r.ReadAt(chunk, off); err != nil && err != io.EOF {
			return svrkit.Errorf(svrkit.InvalidArgument, "reading the file at %d: %v", off, err)
		}
		req := &im.UploadChunkRequest{UploadId: st.GetUploadId(), Offset: off, Data: chunk}
		got, err := retryWithin(ctx, chunkAttempt, func(ctx context.Context) (*im.UploadState, error) {
			return c.media.UploadChunk(ctx, req)
		})
		if err != nil {
			return err
		}
		stored = got.GetStoredBytes()
		if opts.Progress != nil {
			opts.Progress(stored, size)
		}
	}
	return nil
}

// GetUpload returns what the server has of an upload.
func (c *Client) GetUpload(ctx context.Context, uploadID string) (*im.UploadState, error) {
	ctx, err := c.authed(ctx)
	if err != nil {
		return nil, err
	}
	return c.media.GetUpload(ctx, &im.GetUploadRequest{UploadId: uploadID})
}

// SendImage sends an image (a media id from Upload, or of an image sent
// to the caller) to a user, retrying as SendText does.
func (c *Client) SendImage(ctx context.Context, to uint64, clientMsgID, mediaID string) (*im.SendReply, error) {
	if clientMsgID == "" {
		clientMsgID = NewClientMsgID()
	}
	req := &im.SendImageRequest{ToUserId: to, ClientMsgId: clientMsgID, MediaId: mediaID}
	return c.retrySend(ctx, func(ctx context.Context) (*im.SendReply, error) { return c.media.SendImage(ctx, req) })
}

// SendVideo sends a video, with an optional cover image, as SendImage
// does.
func (c *Client) SendVideo(ctx context.Context, to uint64, clientMsgID, mediaID, coverMediaID string) (*im.SendReply, error) {
	if clientMsgID == "" {
		clientMsgID = NewClientMsgID()
	}
	req := &im.SendVideoRequest{ToUserId: to, ClientMsgId: clientMsgID, MediaId: mediaID, CoverMediaId: coverMediaID}
	return c.retrySend(ctx, func(ctx context.Context) (*im.SendReply, error) { return c.media.SendVideo(ctx, req) })
}

// DeleteMedia deletes media the caller uploaded.
func (c *Client) DeleteMedia(ctx context.Context, mediaID string) (*im.DeleteMediaReply, error) {
	ctx, err := c.authed(ctx)
	if err != nil {
		return nil, err
	}
	return c.media.DeleteMedia(ctx, &im.DeleteMediaRequest{MediaId: mediaID})
}

// Download is what one download got.
type Download struct {
	// Written is the bytes written to w; Size the whole file's.
	Written, Size int64
	// MimeType and ETag (the quoted SHA-256) as the server sent them.
	MimeType, ETag string
}

// DownloadURL is where a media's file (or, with thumb, its thumbnail) is.
func (c *Client) DownloadURL(mediaID string, thumb bool) string {
	if thumb {
		return c.mediaURL + im.MediaThumbPath + mediaID
	}
	return c.mediaURL + im.MediaDownloadPath + mediaID
}

// Download writes a media's file (or its thumbnail) from byte offset on
// to w: a Range request when offset > 0, so that an interrupted download
// resumes where it stopped. Failures are *svrkit.Error, as for the CGIs:
// permission_denied for a user the media was not sent to, not_found,
// out_of_range for an offset past the end.
func (c *Client) Download(ctx context.Context, mediaID string, thumb bool, offset int64, w io.Writer) (*Download, error) {
	c.mu.Lock()
	tok := c.session.Token
	c.mu.Unlock()
	if tok == "" {
		return nil, errNotLoggedIn
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.DownloadURL(mediaID, thumb), nil)
	if err != nil {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "%v", err)
	}
	req.Header.Set("Authorization", session.Header(tok))
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, svrkit.AsError(ctx.Err())
		}
		return nil, svrkit.Errorf(svrkit.Unavailable, "%v", err)
	}
	defer res.Body.Close()
	d := &Download{MimeType: res.Header.Get("Content-Type"), ETag: res.Header.Get("ETag")}
	switch res.StatusCode {
	case http.StatusOK:
		if offset > 0 {
			return nil, svrkit.Errorf(svrkit.Internal, "asked for bytes %d- and got the whole file", offset)
		}
		d.Size = res.ContentLength
	case http.StatusPartialContent:
		// Content-Range: bytes first-last/size
		cr := res.Header.Get("Content-Range")
		var first, last int64
		if _, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &first, &last, &d.Size); err != nil || first != offset {
			return nil, svrkit.Errorf(svrkit.Internal, "unexpected Content-Range %q for bytes %d-", cr, offset)
		}
	case http.StatusRequestedRangeNotSatisfiable:
		return nil, svrkit.Errorf(svrkit.OutOfRange, "offset %d is past the end (%s)", offset, res.Header.Get("Content-Range"))
	default:
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		var eb cgi.ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Code != "" {
			return nil, eb.Err()
		}
		return nil, svrkit.Errorf(svrkit.Unknown, "HTTP %s: %s", res.Status, strings.TrimSpace(string(b)))
	}
	n, err := io.Copy(w, res.Body)
	d.Written = n
	if err != nil {
		if ctx.Err() != nil {
			return d, svrkit.AsError(ctx.Err())
		}
		return d, svrkit.Errorf(svrkit.Unavailable, "download cut after %d bytes: %v", n, err)
	}
	return d, nil
}
