// Package handlers implements the send Logicsvr (idl/im/message.proto):
// one-to-one text and voice messages, stored and forwarded. NewSend is the
// constructor its generated main calls.
//
// # The write path
//
// A send is checked (the session token names the sender; the limits of
// message.proto) and written by package
// github.com/svrkit/svrkit/examples/im/internal/delivery, which the
// sendmedia Logicsvr shares: the receiver must exist; the message goes into
// the receiver's inbox and then the sender's own, exactly once per
// client_msg_id, and the reply goes out only when both writes are durable.
//
// Group messages take another path (group.go): stored once in the group's
// log through GroupData, which queues their fan-out.
//
// This Logicsvr keeps no state: retries may land on any replica.
package handlers

import (
	"context"
	"unicode/utf8"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/delivery"
	"github.com/svrkit/svrkit/examples/im/internal/groups"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/examples/im/internal/shard"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor"
)

// messagesID is the monitor point counting each type of message.
var messagesID = map[im.MessageType]monitor.ID{
	im.MessageType_MESSAGE_TYPE_TEXT:  im.Monitor_MESSAGES_TEXT_ID,
	im.MessageType_MESSAGE_TYPE_VOICE: im.Monitor_MESSAGES_VOICE_ID,
}

// The limits of message.proto.
const (
	MaxTextBytes        = 4096
	MaxVoiceBytes       = 48 << 10
	MaxVoiceDurationMs  = 60000
	MaxVoiceFormatBytes = 16
	MaxClientMsgIDBytes = delivery.MaxClientMsgIDBytes
)

// NewSend returns the Send handler. It needs im.AccountData (receivers, and
// session revocations), im.MessageData and im.GroupData in the routing
// table and session_secret in the app config.
func NewSend(h *logicsvr.Host) (im.SendServer, error) {
	signer, err := session.FromApp(h)
	if err != nil {
		return nil, err
	}
	accounts, err := h.Client(im.AccountData_ServiceName)
	if err != nil {
		return nil, err
	}
	messages, err := h.Client(im.MessageData_ServiceName)
	if err != nil {
		return nil, err
	}
	groupData, err := h.Client(im.GroupData_ServiceName)
	if err != nil {
		return nil, err
	}
	h.Use(signer.Require(im.Send_ServiceName))
	return &sendServer{receivers: delivery.NewReceivers(im.NewAccountDataClient(accounts)), messages: im.NewMessageDataClient(messages),
		route: shard.Router(messages), groups: im.NewGroupDataClient(groupData)}, nil
}

type sendServer struct {
	im.UnimplementedSendServer
	receivers *delivery.Receivers
	messages  im.MessageDataClient
	// route is messages' routing, for delivery.Deliver.
	route  svrkit.KeyRouter
	groups im.GroupDataClient
}

// CheckText checks a SendTextRequest against message.proto's limits.
func CheckText(req *im.SendTextRequest) error {
	if err := delivery.CheckAddress(req.GetToUserId(), req.GetClientMsgId()); err != nil {
		return err
	}
	if n := len(req.GetText()); n < 1 || n > MaxTextBytes {
		return svrkit.Errorf(svrkit.InvalidArgument, "text must be 1 to %d bytes (got %d)", MaxTextBytes, n)
	}
	if !utf8.ValidString(req.GetText()) {
		return svrkit.NewError(svrkit.InvalidArgument, "text must be valid UTF-8")
	}
	return nil
}

// CheckVoice checks a SendVoiceRequest against message.proto's limits.
func CheckVoice(req *im.SendVoiceRequest) error {
	if err := delivery.CheckAddress(req.GetToUserId(), req.GetClientMsgId()); err != nil {
		return err
	}
	if n := len(req.GetVoice()); n < 1 || n > MaxVoiceBytes {
		return svrkit.Errorf(svrkit.InvalidArgument, "voice must be 1 to %d bytes (got %d)", MaxVoiceBytes, n)
	}
	if d := req.GetDurationMs(); d < 1 || d > MaxVoiceDurationMs {
		return svrkit.Errorf(svrkit.InvalidArgument, "duration_ms must be 1 to %d (got %d)", MaxVoiceDurationMs, d)
	}
	if n := len(req.GetFormat()); n > MaxVoiceFormatBytes {
		return svrkit.Errorf(svrkit.InvalidArgument, "format must be at most %d bytes (got %d)", MaxVoiceFormatBytes, n)
	}
	return nil
}

func (s *sendServer) SendText(ctx context.Context, req *im.SendTextRequest) (*im.SendReply, error) {
	caller := session.From(ctx)
	if err := CheckText(req); err != nil {
		return nil, err
	}
	return s.deliver(ctx, &im.Message{
		FromUserId:  caller.UserID,
		ToUserId:    req.GetToUserId(),
		ClientMsgId: req.GetClientMsgId(),
		Type:        im.MessageType_MESSAGE_TYPE_TEXT,
		Text:        req.GetText(),
	})
}

func (s *sendServer) SendVoice(ctx context.Context, req *im.SendVoiceRequest) (*im.SendReply, error) {
	caller := session.From(ctx)
	if err := CheckVoice(req); err != nil {
		return nil, err
	}
	return s.deliver(ctx, &im.Message{
		FromUserId:      caller.UserID,
		ToUserId:        req.GetToUserId(),
		ClientMsgId:     req.GetClientMsgId(),
		Type:            im.MessageType_MESSAGE_TYPE_VOICE,
		Voice:           req.GetVoice(),
		VoiceDurationMs: req.GetDurationMs(),
		VoiceFormat:     req.GetFormat(),
	})
}

// deliver writes m into the receiver's inbox and then the sender's (see
// package delivery), counting the call, its failures and, once stored,
// the message by type; to a group id, it sends to the group.
func (s *sendServer) deliver(ctx context.Context, m *im.Message) (*im.SendReply, error) {
	if to := m.GetToUserId(); groups.IsID(to) {
		return s.sendGroup(ctx, to, m)
	}
	monitor.Add(im.Monitor_SEND_CALLS_ID, 1)
	if err := s.receivers.Exists(ctx, m.GetToUserId()); err != nil {
		if svrkit.CodeOf(err) != svrkit.NotFound {
			monitor.Add(im.Monitor_SEND_ERRORS_ID, 1)
		}
		return nil, err
	}
	r, err := delivery.Deliver(ctx, s.messages, s.route, m)
	if err != nil {
		monitor.Add(im.Monitor_SEND_ERRORS_ID, 1)
		return nil, err
	}
	if !r.GetDuplicate() {
		monitor.Add(messagesID[m.GetType()], 1)
	}
	return r, nil
}
