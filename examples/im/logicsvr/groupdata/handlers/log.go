package handlers

import (
	"context"
	"encoding/binary"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/groups"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor"
)

// maxClientMsgID bounds a message's client_msg_id (message.proto).
const maxClientMsgID = 64

// AppendMessage implements im.GroupDataServer.
func (s *Server) AppendMessage(ctx context.Context, req *im.AppendMessageRequest) (*im.AppendMessageReply, error) {
	group, m := req.GetGroupId(), req.GetMessage()
	if err := groups.CheckGroupID(group); err != nil {
		return nil, err
	}
	if m == nil || !groups.IsUserID(m.GetFromUserId()) {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "message needs a sender (from_user_id)")
	}
	if n := len(m.GetClientMsgId()); n < 1 || n > maxClientMsgID {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "client_msg_id must be 1 to %d bytes", maxClientMsgID)
	}
	switch m.GetType() {
	case im.MessageType_MESSAGE_TYPE_TEXT, im.MessageType_MESSAGE_TYPE_VOICE:
	default:
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "message type %v cannot be sent to a group", m.GetType())
	}
	reply, wake, err := s.appendLocked(ctx, group, m)
	if err != nil {
		return nil, err
	}
	if wake != 0 {
		if err := s.publish(ctx, group, wake); err != nil {
			return nil, err
		}
	}
	if !reply.GetDuplicate() {
		monitor.Add(im.Monitor_GROUP_MESSAGES_ID, 1)
	}
	return reply, nil
}

// appendLocked is AppendMessage's part under the group's lock; wake is the
// seq to publish.
func (s *Server) appendLocked(ctx context.Context, group uint64, in *im.Message) (*im.AppendMessageReply, uint64, error) {
	defer s.lock(group)()
	sender := in.GetFromUserId()
	dk := dedupKey(sender, in.GetClientMsgId())
	fromStore := false
	for attempt := 0; ; attempt++ {
		st, err := s.loadGroup(ctx, group, fromStore)
		if err != nil {
			return nil, 0, err
		}
		m, ok := member(st.rec, sender)
		if !ok {
			// A sender removed since their message was stored gets the
			// repeat its retry is, not a refusal.
			if r, wake, err := s.repeat(ctx, group, st, dk); r != nil || err != nil {
				return r, wake, err
			}
			return nil, 0, notMember(group, sender)
		}
		seq := st.lastSeq + 1
		msg := proto.CloneOf(in)
		msg.ToUserId, msg.GroupId = 0, group
		msg.GroupName, msg.FromName = st.rec.GetInfo().GetName(), m.GetMember().GetName()
		msg.SentUnixMs = s.now().UnixMilli()
		entry, err := proto.Marshal(&im.GroupLogEntry{Entry: &im.GroupLogEntry_Message{Message: msg}})
		if err != nil {
			return nil, 0, svrkit.Errorf(svrkit.InvalidArgument, "message does not encode: %v", err)
		}
		_, err = s.storage.Batch(ctx, &im.BatchRequest{UserId: group, Ops: []*im.BatchOp{
			{Kind: im.BatchOp_KIND_CHECK, Key: keyGroup, ExpectVersion: st.version},
			{Kind: im.BatchOp_KIND_PUT, Key: dk, Value: binary.BigEndian.AppendUint64(nil, seq)},
			{Kind: im.BatchOp_KIND_PUT_ENTRY, Key: rowLog, Version: seq, Value: entry},
		}})
		if svrkit.CodeOf(err) == svrkit.Aborted {
			// A repeat, or the cache was stale.
			if r, wake, err := s.repeat(ctx, group, st, dk); r != nil || err != nil {
				return r, wake, err
			}
			if attempt+1 < casAttempts {
				fromStore = true
				continue
			}
		}
		if err != nil {
			return nil, 0, err
		}
		next := *st
		next.lastSeq = seq
		s.cache.Put(group, &next)
		return &im.AppendMessageReply{Seq: seq, SentUnixMs: msg.GetSentUnixMs()}, seq, nil
	}
}

// repeat answers a message whose dedup key dk exists: its seq and time,
// and a wake-up to publish if the fan-out has not passed it. It returns
// nil, 0, nil when the key does not exist.
func (s *Server) repeat(ctx context.Context, group uint64, st *groupState, dk []byte) (*im.AppendMessageReply, uint64, error) {
	r, err := s.storage.Get(ctx, &im.KVGetRequest{UserId: group, Key: dk})
	if svrkit.CodeOf(err) == svrkit.NotFound {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	if len(r.GetValue()) != 8 {
		return nil, 0, svrkit.Errorf(svrkit.DataLoss, "group %d: a dedup record of %d bytes", group, len(r.GetValue()))
	}
	seq := binary.BigEndian.Uint64(r.GetValue())
	out := &im.AppendMessageReply{Seq: seq, Duplicate: true}
	page, err := s.storage.Scan(ctx, &im.TableScanRequest{UserId: group, Row: rowLog, AfterVersion: seq - 1, Limit: 1})
	if err != nil {
		return nil, 0, err
	}
	if es := page.GetEntries(); len(es) == 1 && es[0].GetVersion() == seq {
		var e im.GroupLogEntry
		if err := proto.Unmarshal(es[0].GetValue(), &e); err != nil {
			return nil, 0, svrkit.Errorf(svrkit.DataLoss, "group %d log entry %d does not decode: %v", group, seq, err)
		}
		out.SentUnixMs = e.GetMessage().GetSentUnixMs()
	}
	if seq > page.GetMaxVersion() {
		return nil, 0, svrkit.Errorf(svrkit.DataLoss, "group %d: a message deduplicated at seq %d, beyond the log's end %d", group, seq, page.GetMaxVersion())
	}
	st, err = s.withFanned(ctx, group, st)
	if err != nil {
		return nil, 0, err
	}
	var wake uint64
	if seq > st.fanned {
		wake = seq
	}
	return out, wake, nil
}

// ReadLog implements im.GroupDataServer.
func (s *Server) ReadLog(ctx context.Context, req *im.ReadLogRequest) (*im.ReadLogReply, error) {
	group, limit := req.GetGroupId(), req.GetLimit()
	if err := groups.CheckGroupID(group); err != nil {
		return nil, err
	}
	if limit < 1 || limit > MaxReadLog {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "limit must be 1 to %d (got %d)", MaxReadLog, limit)
	}
	defer s.lock(group)()
	st, err := s.loadGroup(ctx, group, false)
	if err != nil {
		return nil, err
	}
	if st, err = s.withFanned(ctx, group, st); err != nil {
		return nil, err
	}
	after := req.GetAfterSeq()
	if req.GetAfterFanned() {
		after = st.fanned
	}
	page, err := s.storage.Scan(ctx, &im.TableScanRequest{UserId: group, Row: rowLog, AfterVersion: after, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := &im.ReadLogReply{
		Entries:   make([]*im.LogEntry, len(page.GetEntries())),
		FannedSeq: st.fanned,
		More:      page.GetMore(),
	}
	for i, e := range page.GetEntries() {
		le := &im.LogEntry{Seq: e.GetVersion(), Entry: new(im.GroupLogEntry)}
		if err := proto.Unmarshal(e.GetValue(), le.Entry); err != nil {
			// Returned empty, for the worker to skip: no retry can fan
			// it out, and failing would stop the group's fan-out for good.
			logicsvr.Logger(ctx).Error("group log entry does not decode", "group", group, "seq", e.GetVersion(), "err", err)
			le.Entry = nil
		}
		out.Entries[i] = le
	}
	out.Record = proto.CloneOf(st.rec)
	out.Record.LastSeq = max(st.lastSeq, page.GetMaxVersion())
	return out, nil
}

// SetFanned implements im.GroupDataServer.
func (s *Server) SetFanned(ctx context.Context, req *im.SetFannedRequest) (*im.SetFannedReply, error) {
	group, seq := req.GetGroupId(), req.GetSeq()
	if err := groups.CheckGroupID(group); err != nil {
		return nil, err
	}
	defer s.lock(group)()
	st, err := s.loadGroup(ctx, group, false)
	if err != nil {
		return nil, err
	}
	if st, err = s.withFanned(ctx, group, st); err != nil {
		return nil, err
	}
	if seq <= st.fanned {
		return &im.SetFannedReply{FannedSeq: st.fanned}, nil
	}
	if seq > st.lastSeq {
		// Appended elsewhere (a routing change)? Ask storage.
		if st, err = s.loadGroup(ctx, group, true); err != nil {
			return nil, err
		}
		if st, err = s.withFanned(ctx, group, st); err != nil {
			return nil, err
		}
	}
	if seq > st.lastSeq {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "group %d: fanned seq %d beyond the log's end %d", group, seq, st.lastSeq)
	}
	if _, err := s.storage.Put(ctx, &im.KVPutRequest{UserId: group, Key: keyFanned, Value: binary.BigEndian.AppendUint64(nil, seq), AnyVersion: true}); err != nil {
		return nil, err
	}
	next := *st
	next.fanned = seq
	s.cache.Put(group, &next)
	return &im.SetFannedReply{FannedSeq: seq}, nil
}
