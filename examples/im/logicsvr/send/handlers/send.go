// Package handlers implements the send Logicsvr (idl/im/message.proto):
// one-to-one text and voice messages, stored and forwarded. NewSend is the
// constructor its generated main calls.
//
// # The write path
//
// A send is checked (the session token names the sender; the limits of
// message.proto; the receiver must exist) and then written twice through
// MessageData.Deliver: first into the receiver's inbox, with dedup id
// "<sender>:<client_msg_id>", then into the sender's own (so the sender's
// other devices sync it too), with dedup id "<sender>:<client_msg_id>:self".
// The reply goes out only when both writes are durable. A message to
// oneself is written once.
//
// # Exactly once
//
// Deliver is idempotent on the dedup id: a repeated one writes nothing and
// answers the first write's version and time. So a client that got no reply
// retries with the same client_msg_id, and whatever happened before —
// nothing stored, only the receiver's copy (the send Logicsvr or the
// sender's messagedata died between the writes), or both — the retry leaves
// exactly one copy in each inbox. The reply's sent_unix_ms is the receiver
// copy's storage time, the same on every retry, and duplicate says the
// receiver's copy was already there. The sender's copy carries that same
// time in its Message.sent_unix_ms, so both copies of a retried message are
// identical.
//
// Group messages take another path (group.go): stored once in the group's
// log through GroupData, which queues their fan-out.
//
// This Logicsvr keeps no state: retries may land on any replica.
package handlers

import (
	"context"
	"strconv"
	"unicode/utf8"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/groups"
	"github.com/svrkit/svrkit/examples/im/internal/session"
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
	MaxClientMsgIDBytes = 64
)

// NewSend returns the Send handler. It needs im.AccountData,
// im.MessageData and im.GroupData in the routing table and session_secret
// in the app config.
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
	return &sendServer{accounts: im.NewAccountDataClient(accounts), messages: im.NewMessageDataClient(messages),
		groups: im.NewGroupDataClient(groupData)}, nil
}

type sendServer struct {
	im.UnimplementedSendServer
	accounts im.AccountDataClient
	messages im.MessageDataClient
	groups   im.GroupDataClient
}

func checkCommon(to uint64, clientMsgID string) error {
	if to == 0 {
		return svrkit.NewError(svrkit.InvalidArgument, "to_user_id is required")
	}
	if n := len(clientMsgID); n < 1 || n > MaxClientMsgIDBytes {
		return svrkit.Errorf(svrkit.InvalidArgument, "client_msg_id must be 1 to %d bytes", MaxClientMsgIDBytes)
	}
	return nil
}

// CheckText checks a SendTextRequest against message.proto's limits.
func CheckText(req *im.SendTextRequest) error {
	if err := checkCommon(req.GetToUserId(), req.GetClientMsgId()); err != nil {
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
	if err := checkCommon(req.GetToUserId(), req.GetClientMsgId()); err != nil {
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
	return s.deliver(ctx, caller.UserID, &im.Message{
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
	return s.deliver(ctx, caller.UserID, &im.Message{
		FromUserId:      caller.UserID,
		ToUserId:        req.GetToUserId(),
		ClientMsgId:     req.GetClientMsgId(),
		Type:            im.MessageType_MESSAGE_TYPE_VOICE,
		Voice:           req.GetVoice(),
		VoiceDurationMs: req.GetDurationMs(),
		VoiceFormat:     req.GetFormat(),
	})
}

// deliver writes m into the receiver's inbox and then the sender's (see the
// package doc); to a group id, it sends to the group.
func (s *sendServer) deliver(ctx context.Context, from uint64, m *im.Message) (*im.SendReply, error) {
	to := m.GetToUserId()
	if groups.IsID(to) {
		return s.sendGroup(ctx, to, m)
	}
	monitor.Add(im.Monitor_SEND_CALLS_ID, 1)
	if _, err := s.accounts.GetAccount(ctx, &im.GetAccountRequest{UserId: to}); err != nil {
		if svrkit.CodeOf(err) == svrkit.NotFound {
			return nil, svrkit.Errorf(svrkit.NotFound, "no user %d", to)
		}
		monitor.Add(im.Monitor_SEND_ERRORS_ID, 1)
		return nil, err
	}
	dedup := strconv.FormatUint(from, 10) + ":" + m.GetClientMsgId()
	theirs, err := s.messages.Deliver(ctx, &im.DeliverRequest{
		UserId:  to,
		Item:    &im.SyncItem{Type: im.SyncType_SYNC_TYPE_MESSAGES, Item: &im.SyncItem_Message{Message: m}},
		DedupId: dedup,
	})
	if err != nil {
		monitor.Add(im.Monitor_SEND_ERRORS_ID, 1)
		return nil, err
	}
	if to != from {
		own := &im.Message{
			FromUserId: m.FromUserId, ToUserId: m.ToUserId, ClientMsgId: m.ClientMsgId, Type: m.Type,
			Text: m.Text, Voice: m.Voice, VoiceDurationMs: m.VoiceDurationMs, VoiceFormat: m.VoiceFormat,
			SentUnixMs: theirs.GetAtUnixMs(),
		}
		if _, err := s.messages.Deliver(ctx, &im.DeliverRequest{
			UserId:  from,
			Item:    &im.SyncItem{Type: im.SyncType_SYNC_TYPE_MESSAGES, Item: &im.SyncItem_Message{Message: own}},
			DedupId: dedup + ":self",
		}); err != nil {
			monitor.Add(im.Monitor_SEND_ERRORS_ID, 1)
			return nil, err
		}
	}
	if !theirs.GetDuplicate() {
		monitor.Add(messagesID[m.GetType()], 1)
	}
	return &im.SendReply{SentUnixMs: theirs.GetAtUnixMs(), Duplicate: theirs.GetDuplicate()}, nil
}
