package handlers

import (
	"bytes"
	"context"
	"errors"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/delivery"
	"github.com/svrkit/svrkit/examples/im/internal/objstore"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/svrkit"
)

// The text of IMAGE and VIDEO messages, for clients that predate them
// (message.proto).
const (
	ImageFallbackText = "[Image]"
	VideoFallbackText = "[Video]"
)

// record returns media id's record: not_found for an unknown, deleted or
// expired one.
func (s *Server) record(ctx context.Context, id string) (*im.MediaRecord, error) {
	if !validID(id) {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "media_id %q is not a media id", id)
	}
	m, ok := s.records.Get(id)
	if !ok {
		o, err := s.store.Open(ctx, recordKey(id))
		if errors.Is(err, objstore.ErrNotFound) {
			return nil, svrkit.Errorf(svrkit.NotFound, "no media %s", id)
		}
		if err != nil {
			return nil, svrkit.Errorf(svrkit.Unavailable, "reading media %s: %v", id, err)
		}
		b, err := io.ReadAll(o)
		o.Close()
		if err != nil {
			return nil, svrkit.Errorf(svrkit.Unavailable, "reading media %s: %v", id, err)
		}
		m = &im.MediaRecord{}
		if err := proto.Unmarshal(b, m); err != nil {
			return nil, svrkit.Errorf(svrkit.DataLoss, "media %s: the record does not decode: %v", id, err)
		}
		s.records.Put(id, m)
	}
	if s.now().UnixMilli() >= m.GetExpiresUnixMs() {
		return nil, svrkit.Errorf(svrkit.NotFound, "media %s has expired", id)
	}
	return m, nil
}

func (s *Server) putRecord(ctx context.Context, m *im.MediaRecord) error {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return svrkit.Errorf(svrkit.Internal, "%v", err)
	}
	if err := s.store.Put(ctx, recordKey(m.GetMediaId()), bytes.NewReader(b), int64(len(b))); err != nil {
		return svrkit.Errorf(svrkit.Unavailable, "storing media %s: %v", m.GetMediaId(), err)
	}
	s.records.Put(m.GetMediaId(), m)
	return nil
}

// mayRead reports whether user may download m: its uploader, or a user it
// was sent to.
func (s *Server) mayRead(ctx context.Context, m *im.MediaRecord, user uint64) (bool, error) {
	if m.GetOwnerUserId() == user {
		return true, nil
	}
	key := grantKey(m.GetMediaId(), user)
	if _, ok := s.grants.Get(key); ok {
		return true, nil
	}
	_, err := s.store.Stat(ctx, key)
	if errors.Is(err, objstore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, svrkit.Errorf(svrkit.Unavailable, "reading grants of %s: %v", m.GetMediaId(), err)
	}
	s.grants.Put(key, true)
	return true, nil
}

// grant lets user download m; it is idempotent.
func (s *Server) grant(ctx context.Context, m *im.MediaRecord, user uint64) error {
	if m.GetOwnerUserId() == user {
		return nil
	}
	key := grantKey(m.GetMediaId(), user)
	if err := s.store.Put(ctx, key, bytes.NewReader(nil), 0); err != nil {
		return svrkit.Errorf(svrkit.Unavailable, "granting %s: %v", m.GetMediaId(), err)
	}
	s.grants.Put(key, true)
	return nil
}

// sendable returns the media the caller names for a message of kind:
// its record, if the caller may send it.
func (s *Server) sendable(ctx context.Context, id string, kind im.MediaKind, caller uint64) (*im.MediaRecord, error) {
	m, err := s.record(ctx, id)
	if err != nil {
		return nil, err
	}
	if ok, err := s.mayRead(ctx, m, caller); err != nil {
		return nil, err
	} else if !ok {
		return nil, svrkit.Errorf(svrkit.PermissionDenied, "media %s is neither yours nor sent to you", id)
	}
	if m.GetKind() != kind {
		return nil, svrkit.Errorf(svrkit.FailedPrecondition, "media %s is %s, not %s", id, m.GetKind(), kind)
	}
	return m, nil
}

// SendImage implements im.SendMediaServer.
func (s *Server) SendImage(ctx context.Context, req *im.SendImageRequest) (*im.SendReply, error) {
	caller := session.From(ctx)
	if err := delivery.CheckAddress(req.GetToUserId(), req.GetClientMsgId()); err != nil {
		return nil, err
	}
	m, err := s.sendable(ctx, req.GetMediaId(), im.MediaKind_MEDIA_KIND_IMAGE, caller.UserID)
	if err != nil {
		return nil, err
	}
	ref := mediaRef(m)
	ref.ThumbMediaId = m.GetMediaId()
	return s.send(ctx, caller.UserID, req.GetToUserId(), req.GetClientMsgId(), im.MessageType_MESSAGE_TYPE_IMAGE, ImageFallbackText, ref, m)
}

// SendVideo implements im.SendMediaServer.
func (s *Server) SendVideo(ctx context.Context, req *im.SendVideoRequest) (*im.SendReply, error) {
	caller := session.From(ctx)
	if err := delivery.CheckAddress(req.GetToUserId(), req.GetClientMsgId()); err != nil {
		return nil, err
	}
	m, err := s.sendable(ctx, req.GetMediaId(), im.MediaKind_MEDIA_KIND_VIDEO, caller.UserID)
	if err != nil {
		return nil, err
	}
	ref := mediaRef(m)
	granted := []*im.MediaRecord{m}
	if id := req.GetCoverMediaId(); id != "" {
		cover, err := s.sendable(ctx, id, im.MediaKind_MEDIA_KIND_IMAGE, caller.UserID)
		if err != nil {
			return nil, err
		}
		ref.ThumbMediaId, ref.ThumbWidth, ref.ThumbHeight = cover.GetMediaId(), cover.GetThumbWidth(), cover.GetThumbHeight()
		granted = append(granted, cover)
	}
	return s.send(ctx, caller.UserID, req.GetToUserId(), req.GetClientMsgId(), im.MessageType_MESSAGE_TYPE_VIDEO, VideoFallbackText, ref, granted...)
}

func mediaRef(m *im.MediaRecord) *im.MediaRef {
	return &im.MediaRef{
		MediaId: m.GetMediaId(), MimeType: m.GetMimeType(), Size: m.GetSize(),
		Width: m.GetWidth(), Height: m.GetHeight(), DurationMs: m.GetDurationMs(),
		ThumbWidth: m.GetThumbWidth(), ThumbHeight: m.GetThumbHeight(),
	}
}

// send grants the receiver the media, then delivers the message: once the
// receiver can see the message, it can download what it names.
func (s *Server) send(ctx context.Context, from, to uint64, clientMsgID string, typ im.MessageType, text string, ref *im.MediaRef, media ...*im.MediaRecord) (*im.SendReply, error) {
	if err := delivery.ReceiverExists(ctx, s.accounts, to); err != nil {
		return nil, err
	}
	for _, m := range media {
		if err := s.grant(ctx, m, to); err != nil {
			return nil, err
		}
	}
	return delivery.Deliver(ctx, s.messages, s.route, &im.Message{
		FromUserId:  from,
		ToUserId:    to,
		ClientMsgId: clientMsgID,
		Type:        typ,
		Text:        text,
		Media:       ref,
	})
}

// DeleteMedia implements im.SendMediaServer: the record goes first (so no
// download starts after it), then the grants; the sweeper reclaims the
// blobs no other record references.
func (s *Server) DeleteMedia(ctx context.Context, req *im.DeleteMediaRequest) (*im.DeleteMediaReply, error) {
	caller := session.From(ctx)
	id := req.GetMediaId()
	m, err := s.record(ctx, id)
	if svrkit.CodeOf(err) == svrkit.NotFound {
		return &im.DeleteMediaReply{}, nil // deleted already, or expired (the sweeper's)
	}
	if err != nil {
		return nil, err
	}
	if m.GetOwnerUserId() != caller.UserID {
		return nil, svrkit.Errorf(svrkit.PermissionDenied, "media %s is not yours to delete", id)
	}
	if err := s.deleteMedia(ctx, id); err != nil {
		return nil, err
	}
	return &im.DeleteMediaReply{Deleted: true}, nil
}

// deleteMedia removes media id's record and grants.
func (s *Server) deleteMedia(ctx context.Context, id string) error {
	if err := s.store.Delete(ctx, recordKey(id)); err != nil {
		return svrkit.Errorf(svrkit.Unavailable, "deleting media %s: %v", id, err)
	}
	s.records.Delete(id)
	return s.deleteGrants(ctx, id)
}

func (s *Server) deleteGrants(ctx context.Context, id string) error {
	var keys []string
	if err := s.store.List(ctx, "grants/"+id+"/", func(i objstore.Info) error {
		keys = append(keys, i.Key)
		return nil
	}); err != nil {
		return svrkit.Errorf(svrkit.Unavailable, "listing grants of %s: %v", id, err)
	}
	for _, k := range keys {
		if err := s.store.Delete(context.WithoutCancel(ctx), k); err != nil {
			return svrkit.Errorf(svrkit.Unavailable, "deleting grants of %s: %v", id, err)
		}
		s.grants.Delete(k)
	}
	return nil
}
