package handlers

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/media"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/svrkit"
)

// The limits of media.proto.
const (
	MaxImageBytes    = int64(im.MediaLimit_MEDIA_LIMIT_MAX_IMAGE_BYTES)
	MaxVideoBytes    = int64(im.MediaLimit_MEDIA_LIMIT_MAX_VIDEO_BYTES)
	MinChunkBytes    = uint32(im.MediaLimit_MEDIA_LIMIT_MIN_CHUNK_BYTES)
	MaxChunkBytes    = uint32(im.MediaLimit_MEDIA_LIMIT_MAX_CHUNK_BYTES)
	DefaultChunkSize = 1 << 20
	MaxOpenUploads   = int(im.MediaLimit_MEDIA_LIMIT_MAX_OPEN_UPLOADS)
)

var imageLimits = media.ImageLimits{
	MaxPixels: int(im.MediaLimit_MEDIA_LIMIT_MAX_IMAGE_PIXELS),
	MaxSide:   int(im.MediaLimit_MEDIA_LIMIT_MAX_IMAGE_SIDE),
	ThumbSide: int(im.MediaLimit_MEDIA_LIMIT_THUMB_SIDE),
}

// CheckStart checks a StartUploadRequest against media.proto's limits.
func CheckStart(req *im.StartUploadRequest) error {
	mime := req.GetMimeType()
	limit := MaxVideoBytes
	switch {
	case media.IsImage(mime):
		limit = MaxImageBytes
	case media.IsVideo(mime):
	default:
		return svrkit.Errorf(svrkit.InvalidArgument, "mime_type %q is not one of %s", mime,
			strings.Join([]string{media.JPEG, media.PNG, media.GIF, media.WebP, media.MP4, media.MOV, media.WebM, media.Matroska}, ", "))
	}
	if n := req.GetSize(); n < 1 || n > limit {
		return svrkit.Errorf(svrkit.InvalidArgument, "size must be 1 to %d bytes for %s (got %d)", limit, mime, n)
	}
	if n := len(req.GetSha256()); n != 32 {
		return svrkit.Errorf(svrkit.InvalidArgument, "sha256 must be 32 bytes (got %d)", n)
	}
	if c := req.GetChunkSize(); c != 0 && (c < MinChunkBytes || c > MaxChunkBytes) {
		return svrkit.Errorf(svrkit.InvalidArgument, "chunk_size must be %d to %d bytes (got %d)", MinChunkBytes, MaxChunkBytes, c)
	}
	return nil
}

// StartUpload implements im.SendMediaServer.
func (s *Server) StartUpload(ctx context.Context, req *im.StartUploadRequest) (*im.UploadState, error) {
	caller := session.From(ctx)
	if err := CheckStart(req); err != nil {
		return nil, err
	}
	cs := req.GetChunkSize()
	if cs == 0 {
		cs = DefaultChunkSize
	}
	rec := &im.UploadRecord{
		UploadId:      newUploadID(),
		OwnerUserId:   caller.UserID,
		MimeType:      req.GetMimeType(),
		Size:          req.GetSize(),
		Sha256:        req.GetSha256(),
		ChunkSize:     cs,
		CreatedUnixMs: s.now().UnixMilli(),
	}
	if err := s.staging.create(rec, MaxOpenUploads); err != nil {
		if errors.Is(err, errTooManyUploads) {
			return nil, svrkit.Errorf(svrkit.ResourceExhausted, "%d uploads in progress: complete one, or let one expire", MaxOpenUploads)
		}
		return nil, svrkit.Errorf(svrkit.Internal, "starting upload: %v", err)
	}
	return s.state(rec, nil, s.now())
}

// upload loads the caller's upload id: not_found for an unknown, expired
// or another user's upload, failed_precondition for one completed.
func (s *Server) upload(ctx context.Context, id string, caller uint64) (*im.UploadRecord, error) {
	if !validID(id) {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "upload_id %q is not an upload id", id)
	}
	rec, err := s.staging.record(id)
	if errors.Is(err, fs.ErrNotExist) {
		if m, err := s.record(ctx, id); err == nil && m.GetOwnerUserId() == caller {
			return nil, errCompleted
		}
		return nil, svrkit.Errorf(svrkit.NotFound, "no upload %s (it expired, or was never started)", id)
	}
	if err != nil {
		return nil, svrkit.Errorf(svrkit.Internal, "%v", err)
	}
	if rec.GetOwnerUserId() != caller {
		return nil, svrkit.Errorf(svrkit.NotFound, "no upload %s (it expired, or was never started)", id)
	}
	return rec, nil
}

var errCompleted = svrkit.NewError(svrkit.FailedPrecondition, "the upload is completed: it is media now (its media_id is the upload_id)")

// expired reports whether an upload last active at last has expired.
func (s *Server) expired(last time.Time) bool {
	return s.now().Sub(last) > time.Duration(s.cfg.UploadTTL)
}

// UploadChunk implements im.SendMediaServer.
func (s *Server) UploadChunk(ctx context.Context, req *im.UploadChunkRequest) (*im.UploadState, error) {
	caller := session.From(ctx)
	id := req.GetUploadId()
	l := s.staging.lock(id)
	defer s.staging.unlock(id)
	l.RLock()
	defer l.RUnlock()
	rec, err := s.upload(ctx, id, caller.UserID)
	if err != nil {
		return nil, err
	}
	_, last, err := s.staging.chunks(id)
	if err != nil {
		return nil, svrkit.Errorf(svrkit.Internal, "%v", err)
	}
	if s.expired(last) {
		return nil, svrkit.Errorf(svrkit.NotFound, "no upload %s (it expired, or was never started)", id)
	}
	off, n, size, cs := req.GetOffset(), int64(len(req.GetData())), rec.GetSize(), int64(rec.GetChunkSize())
	switch {
	case off < 0 || off >= size:
		return nil, svrkit.Errorf(svrkit.OutOfRange, "offset %d is outside the declared size of %d bytes", off, size)
	case off%cs != 0:
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "offset %d is not a multiple of chunk_size %d: chunks may not overlap", off, cs)
	case off+n > size:
		return nil, svrkit.Errorf(svrkit.OutOfRange, "the chunk at %d ends at %d, past the declared size of %d bytes", off, off+n, size)
	case n != min(cs, size-off):
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "the chunk at %d must be %d bytes (got %d)", off, min(cs, size-off), n)
	}
	if err := s.staging.writeChunk(id, off/cs, off, req.GetData()); err != nil {
		if errors.Is(err, errChunkDiffers) {
			return nil, svrkit.Errorf(svrkit.FailedPrecondition, "the chunk at %d is already stored, with other bytes", off)
		}
		return nil, svrkit.Errorf(svrkit.Internal, "storing chunk: %v", err)
	}
	marks, last, err := s.staging.chunks(id)
	if err != nil {
		return nil, svrkit.Errorf(svrkit.Internal, "%v", err)
	}
	return s.state(rec, marks, last)
}

// GetUpload implements im.SendMediaServer.
func (s *Server) GetUpload(ctx context.Context, req *im.GetUploadRequest) (*im.UploadState, error) {
	caller := session.From(ctx)
	id := req.GetUploadId()
	rec, err := s.upload(ctx, id, caller.UserID)
	if errors.Is(err, errCompleted) {
		m, err := s.record(ctx, id)
		if err != nil {
			return nil, err
		}
		return &im.UploadState{UploadId: id, MimeType: m.GetMimeType(), Size: m.GetOriginalSize(), Completed: true,
			Stored: []*im.ByteRange{{Offset: 0, Length: m.GetOriginalSize()}}, StoredBytes: m.GetOriginalSize()}, nil
	}
	if err != nil {
		return nil, err
	}
	marks, last, err := s.staging.chunks(id)
	if err != nil {
		return nil, svrkit.Errorf(svrkit.Internal, "%v", err)
	}
	if s.expired(last) {
		return nil, svrkit.Errorf(svrkit.NotFound, "no upload %s (it expired, or was never started)", id)
	}
	return s.state(rec, marks, last)
}

// state describes an upload: marks are its chunk marks, last its last
// activity.
func (s *Server) state(rec *im.UploadRecord, marks []byte, last time.Time) (*im.UploadState, error) {
	st := &im.UploadState{
		UploadId:      rec.GetUploadId(),
		MimeType:      rec.GetMimeType(),
		Size:          rec.GetSize(),
		ChunkSize:     rec.GetChunkSize(),
		ExpiresUnixMs: last.Add(time.Duration(s.cfg.UploadTTL)).UnixMilli(),
	}
	st.Stored, st.StoredBytes = storedRanges(marks, int64(rec.GetChunkSize()), rec.GetSize())
	return st, nil
}

// storedRanges merges the marked chunks into ranges.
func storedRanges(marks []byte, cs, size int64) ([]*im.ByteRange, int64) {
	var out []*im.ByteRange
	var total int64
	for i := int64(0); i < int64(len(marks)); i++ {
		if marks[i] != 1 {
			continue
		}
		off := i * cs
		n := min(cs, size-off)
		total += n
		if k := len(out); k > 0 && out[k-1].Offset+out[k-1].Length == off {
			out[k-1].Length += n
			continue
		}
		out = append(out, &im.ByteRange{Offset: off, Length: n})
	}
	return out, total
}
