package handlers

import (
	"github.com/svrkit/svrkit/examples/im"
)

// Client API versions (sync.proto, "Client versions").
const (
	// ClientVersion1 is every client from before groups; client_version 0
	// means it too, as such clients do not send the field.
	ClientVersion1 = 1
	// ClientVersionGroups is the first version that knows groups.
	ClientVersionGroups = 2
)

// AdaptForV1 turns r, an answer for a device of user that speaks version
// 1, into what version 1 understands, in place: GROUPS items are dropped
// (the SyncKey still covers them: the device has seen all it can see),
// and each group message becomes the one-to-one message version 1 would
// have shown for it, from the group's id as if the group were a user:
//
//	from another member:   from the group, to the user, "[Lunch] alice: hi"
//	the user's own:        from the user, to the group, "[Lunch] hi"
//
// A voice message keeps its clip and carries the label ("[Lunch] alice")
// as its text. No field version 1 does not know is left set, so a version
// 1 decoder that refuses unknown fields reads the answer as before.
//
// The version 1 device answers the group by sending to its id, which the
// send Logicsvr takes as a send to the group.
func AdaptForV1(r *im.SyncReply, user uint64) {
	items := r.GetItems()[:0]
	for _, it := range r.GetItems() {
		if it.GetType() == im.SyncType_SYNC_TYPE_GROUPS {
			continue
		}
		if m := it.GetMessage(); m != nil && m.GetGroupId() != 0 {
			it.Item = &im.SyncItem_Message{Message: groupMessageForV1(m, user)}
		}
		items = append(items, it)
	}
	r.Items = items
}

func groupMessageForV1(m *im.Message, user uint64) *im.Message {
	out := &im.Message{
		ClientMsgId:     m.GetClientMsgId(),
		Type:            m.GetType(),
		Voice:           m.GetVoice(),
		VoiceDurationMs: m.GetVoiceDurationMs(),
		VoiceFormat:     m.GetVoiceFormat(),
		SentUnixMs:      m.GetSentUnixMs(),
	}
	label := "[" + m.GetGroupName() + "]"
	if m.GetFromUserId() == user {
		out.FromUserId, out.ToUserId = user, m.GetGroupId()
	} else {
		out.FromUserId, out.ToUserId = m.GetGroupId(), user
		label += " " + m.GetFromName()
	}
	switch m.GetType() {
	case im.MessageType_MESSAGE_TYPE_TEXT:
		sep := " "
		if m.GetFromUserId() != user {
			sep = ": "
		}
		out.Text = label + sep + m.GetText()
	default:
		out.Text = label
	}
	return out
}
