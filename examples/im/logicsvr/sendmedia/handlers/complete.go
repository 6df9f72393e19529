package handlers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/media"
	"github.com/svrkit/svrkit/examples/im/internal/objstore"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/svrkit"
)

// CompleteUpload implements im.SendMediaServer (see the package doc).
func (s *Server) CompleteUpload(ctx context.Context, req *im.CompleteUploadRequest) (*im.MediaInfo, error) {
	caller := session.From(ctx)
	id := req.GetUploadId()
	l := s.staging.lock(id)
	defer s.staging.unlock(id)
	l.Lock()
	defer l.Unlock()
	rec, err := s.upload(ctx, id, caller.UserID)
	if errors.Is(err, errCompleted) {
		m, err := s.record(ctx, id)
		if err != nil {
			return nil, err
		}
		return mediaInfo(m), nil
	}
	if err != nil {
		return nil, err
	}
	// A completion that stored everything and died before it removed the
	// upload: finish it.
	if m, err := s.record(ctx, id); err == nil {
		if _, err := s.store.Stat(ctx, blobKey(m.GetSha256())); err == nil {
			if err := s.staging.remove(id, rec.GetOwnerUserId()); err != nil {
				return nil, svrkit.Errorf(svrkit.Internal, "removing the upload: %v", err)
			}
			return mediaInfo(m), nil
		}
	}
	marks, last, err := s.staging.chunks(id)
	if err != nil {
		return nil, svrkit.Errorf(svrkit.Internal, "%v", err)
	}
	if s.expired(last) {
		return nil, svrkit.Errorf(svrkit.NotFound, "no upload %s (it expired, or was never started)", id)
	}
	if missing := missingRanges(marks, int64(rec.GetChunkSize()), rec.GetSize()); missing != "" {
		return nil, svrkit.Errorf(svrkit.FailedPrecondition, "the upload is incomplete: bytes %s are missing", missing)
	}
	select {
	case s.process <- struct{}{}:
		defer func() { <-s.process }()
	case <-ctx.Done():
		return nil, svrkit.AsError(ctx.Err())
	}
	m, blob, thumb, err := s.processUpload(rec)
	if err != nil {
		if errors.Is(err, media.ErrInvalid) || errors.Is(err, errHashMismatch) {
			// The bytes are at fault: nothing more can come of them.
			_ = s.staging.remove(id, rec.GetOwnerUserId())
			return nil, svrkit.Errorf(svrkit.InvalidArgument, "%v; the upload is deleted: start again", err)
		}
		return nil, svrkit.Errorf(svrkit.Internal, "processing upload %s: %v", id, err)
	}
	// The record first, then the blobs: a blob is never newer than the
	// record that references it (objstore's DeleteIfOlder relies on it).
	if err := s.putRecord(ctx, m); err != nil {
		return nil, err
	}
	if thumb != nil {
		if err := s.store.Put(ctx, blobKey(m.GetThumbSha256()), bytes.NewReader(thumb), int64(len(thumb))); err != nil {
			return nil, svrkit.Errorf(svrkit.Unavailable, "storing the thumbnail: %v", err)
		}
	}
	if err := objstore.PutFile(ctx, s.store, blobKey(m.GetSha256()), blob); err != nil {
		return nil, svrkit.Errorf(svrkit.Unavailable, "storing the media: %v", err)
	}
	if err := s.staging.remove(id, rec.GetOwnerUserId()); err != nil {
		return nil, svrkit.Errorf(svrkit.Internal, "removing the upload: %v", err)
	}
	return mediaInfo(m), nil
}

var errHashMismatch = errors.New("sha256 mismatch")

// processUpload checks and processes a complete upload and returns its
// record, the path of the file to store as its blob, and its thumbnail.
func (s *Server) processUpload(rec *im.UploadRecord) (*im.MediaRecord, string, []byte, error) {
	id := rec.GetUploadId()
	data := s.staging.path(id, "data")
	created := time.UnixMilli(rec.GetCreatedUnixMs())
	m := &im.MediaRecord{
		MediaId:        id,
		OwnerUserId:    rec.GetOwnerUserId(),
		MimeType:       rec.GetMimeType(),
		CreatedUnixMs:  rec.GetCreatedUnixMs(),
		ExpiresUnixMs:  created.Add(time.Duration(s.cfg.MediaRetention)).UnixMilli(),
		OriginalSha256: rec.GetSha256(),
		OriginalSize:   rec.GetSize(),
	}
	if media.IsImage(rec.GetMimeType()) {
		src, err := os.ReadFile(data)
		if err != nil {
			return nil, "", nil, err
		}
		if int64(len(src)) != rec.GetSize() {
			return nil, "", nil, fmt.Errorf("staged %d bytes of %d", len(src), rec.GetSize())
		}
		if sum := sha256.Sum256(src); !bytes.Equal(sum[:], rec.GetSha256()) {
			return nil, "", nil, fmt.Errorf("%w: the bytes have SHA-256 %x, not the declared %x", errHashMismatch, sum, rec.GetSha256())
		}
		img, err := media.ProcessImage(src, rec.GetMimeType(), imageLimits)
		if err != nil {
			return nil, "", nil, err
		}
		out := s.staging.path(id, "processed")
		if err := writeSynced(out, img.Data); err != nil {
			return nil, "", nil, err
		}
		sum, tsum := sha256.Sum256(img.Data), sha256.Sum256(img.Thumb)
		m.Kind = im.MediaKind_MEDIA_KIND_IMAGE
		m.Size, m.Sha256 = int64(len(img.Data)), sum[:]
		m.Width, m.Height = uint32(img.Width), uint32(img.Height)
		m.ThumbSha256, m.ThumbSize = tsum[:], int64(len(img.Thumb))
		m.ThumbWidth, m.ThumbHeight = uint32(img.ThumbWidth), uint32(img.ThumbHeight)
		m.Stripped = img.Removed
		return m, out, img.Thumb, nil
	}
	// A video is processed in place: check the hash once, and remember it
	// is checked, before changing a byte.
	if !s.staging.verified(id) {
		sum, n, err := hashFile(data)
		if err != nil {
			return nil, "", nil, err
		}
		if n != rec.GetSize() {
			return nil, "", nil, fmt.Errorf("staged %d bytes of %d", n, rec.GetSize())
		}
		if !bytes.Equal(sum, rec.GetSha256()) {
			return nil, "", nil, fmt.Errorf("%w: the bytes have SHA-256 %x, not the declared %x", errHashMismatch, sum, rec.GetSha256())
		}
		if err := s.staging.markVerified(id); err != nil {
			return nil, "", nil, err
		}
	}
	f, err := os.OpenFile(data, os.O_RDWR, 0)
	if err != nil {
		return nil, "", nil, err
	}
	v, err := media.ProbeVideo(f, f, rec.GetSize(), rec.GetMimeType())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, "", nil, err
	}
	sum, _, err := hashFile(data)
	if err != nil {
		return nil, "", nil, err
	}
	m.Kind = im.MediaKind_MEDIA_KIND_VIDEO
	m.Size, m.Sha256 = rec.GetSize(), sum
	m.Width, m.Height, m.DurationMs = uint32(v.Width), uint32(v.Height), v.DurationMs
	m.Stripped = v.Removed
	return m, data, nil, nil
}

func hashFile(path string) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return h.Sum(nil), n, err
}

// missingRanges names the ranges not stored ("0-1048575, 2097152-2500000"),
// or "".
func missingRanges(marks []byte, cs, size int64) string {
	var parts []string
	for i := int64(0); i < int64(len(marks)); i++ {
		if marks[i] == 1 {
			continue
		}
		j := i
		for j+1 < int64(len(marks)) && marks[j+1] != 1 {
			j++
		}
		parts = append(parts, fmt.Sprintf("%d-%d", i*cs, min((j+1)*cs, size)-1))
		i = j
	}
	return strings.Join(parts, ", ")
}

// mediaInfo is what the uploader sees of a record.
func mediaInfo(m *im.MediaRecord) *im.MediaInfo {
	return &im.MediaInfo{
		MediaId: m.GetMediaId(), Kind: m.GetKind(), MimeType: m.GetMimeType(),
		Size: m.GetSize(), Sha256: m.GetSha256(),
		Width: m.GetWidth(), Height: m.GetHeight(), DurationMs: m.GetDurationMs(),
		ThumbWidth: m.GetThumbWidth(), ThumbHeight: m.GetThumbHeight(), ThumbSize: m.GetThumbSize(),
		Stripped: m.GetStripped(), ExpiresUnixMs: m.GetExpiresUnixMs(),
	}
}

// The object store's keys (see the package doc).
func recordKey(id string) string { return "media/" + id[:2] + "/" + id }

func blobKey(sum []byte) string {
	h := hex.EncodeToString(sum)
	return "blobs/" + h[:2] + "/" + h
}

func grantKey(id string, user uint64) string { return fmt.Sprintf("grants/%s/%d", id, user) }
