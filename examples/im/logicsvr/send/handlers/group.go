package handlers

import (
	"context"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/groups"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor"
)

// Group messages.
//
// A group message is appended once to the group's log by GroupData,
// which checks the sender is a member, deduplicates on (sender,
// client_msg_id) and queues the fan-out before it answers; the reply goes
// out then, before any member's inbox has the message (the fan-out worker
// writes those). SendText and SendVoice to a group id come here too: that
// is how a version 1 client answers a group (sync.proto), with the same
// message a SendGroupText would store.

// SendGroupText implements im.SendServer.
func (s *sendServer) SendGroupText(ctx context.Context, req *im.SendGroupTextRequest) (*im.SendReply, error) {
	caller := session.From(ctx)
	if err := groups.CheckGroupID(req.GetGroupId()); err != nil {
		return nil, err
	}
	if err := CheckText(&im.SendTextRequest{ToUserId: req.GetGroupId(), ClientMsgId: req.GetClientMsgId(), Text: req.GetText()}); err != nil {
		return nil, err
	}
	return s.sendGroup(ctx, req.GetGroupId(), &im.Message{
		FromUserId:  caller.UserID,
		ClientMsgId: req.GetClientMsgId(),
		Type:        im.MessageType_MESSAGE_TYPE_TEXT,
		Text:        req.GetText(),
	})
}

// SendGroupVoice implements im.SendServer.
func (s *sendServer) SendGroupVoice(ctx context.Context, req *im.SendGroupVoiceRequest) (*im.SendReply, error) {
	caller := session.From(ctx)
	if err := groups.CheckGroupID(req.GetGroupId()); err != nil {
		return nil, err
	}
	if err := CheckVoice(&im.SendVoiceRequest{ToUserId: req.GetGroupId(), ClientMsgId: req.GetClientMsgId(), Voice: req.GetVoice(),
		DurationMs: req.GetDurationMs(), Format: req.GetFormat()}); err != nil {
		return nil, err
	}
	return s.sendGroup(ctx, req.GetGroupId(), &im.Message{
		FromUserId:      caller.UserID,
		ClientMsgId:     req.GetClientMsgId(),
		Type:            im.MessageType_MESSAGE_TYPE_VOICE,
		Voice:           req.GetVoice(),
		VoiceDurationMs: req.GetDurationMs(),
		VoiceFormat:     req.GetFormat(),
	})
}

// sendGroup appends m to group's log (see above).
func (s *sendServer) sendGroup(ctx context.Context, group uint64, m *im.Message) (*im.SendReply, error) {
	monitor.Add(im.Monitor_SEND_CALLS_ID, 1)
	m.ToUserId = 0
	r, err := s.groups.AppendMessage(ctx, &im.AppendMessageRequest{GroupId: group, Message: m})
	if err != nil {
		switch svrkit.CodeOf(err) {
		case svrkit.NotFound, svrkit.PermissionDenied, svrkit.InvalidArgument:
		default:
			monitor.Add(im.Monitor_SEND_ERRORS_ID, 1)
		}
		return nil, err
	}
	if !r.GetDuplicate() {
		monitor.Add(messagesID[m.GetType()], 1)
	}
	return &im.SendReply{SentUnixMs: r.GetSentUnixMs(), Duplicate: r.GetDuplicate()}, nil
}
