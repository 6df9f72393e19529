package handlers

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
)

func TestAdaptForV1(t *testing.T) {
	const alice, bob, group = 1, 2, 1<<63 | 77
	msg := func(m *im.Message) *im.SyncItem {
		return &im.SyncItem{Type: im.SyncType_SYNC_TYPE_MESSAGES, Version: 5, AtUnixMs: 9, Item: &im.SyncItem_Message{Message: m}}
	}
	groupMsg := func(from uint64, name string, typ im.MessageType, text string) *im.SyncItem {
		return msg(&im.Message{FromUserId: from, ClientMsgId: "c", Type: typ, Text: text,
			GroupId: group, GroupName: "Lunch", FromName: name, SentUnixMs: 7})
	}
	oneToOne := msg(&im.Message{FromUserId: alice, ToUserId: bob, ClientMsgId: "d", Type: im.MessageType_MESSAGE_TYPE_TEXT, Text: "hi"})
	r := &im.SyncReply{Items: []*im.SyncItem{
		{Type: im.SyncType_SYNC_TYPE_GROUPS, Version: 1, Item: &im.SyncItem_Group{Group: &im.GroupChange{Kind: im.GroupChange_KIND_CREATED}}},
		proto.CloneOf(oneToOne),
		groupMsg(alice, "alice", im.MessageType_MESSAGE_TYPE_TEXT, "noon?"),
		groupMsg(bob, "bob", im.MessageType_MESSAGE_TYPE_TEXT, "yes"),
		msg(&im.Message{FromUserId: alice, ClientMsgId: "v", Type: im.MessageType_MESSAGE_TYPE_VOICE, Voice: []byte("clip"),
			VoiceDurationMs: 900, VoiceFormat: "opus", GroupId: group, GroupName: "Lunch", FromName: "alice", SentUnixMs: 8}),
	}, SyncKey: []byte("k")}
	AdaptForV1(r, bob)

	want := []*im.Message{
		oneToOne.GetMessage(),
		{FromUserId: group, ToUserId: bob, ClientMsgId: "c", Type: im.MessageType_MESSAGE_TYPE_TEXT, Text: "[Lunch] alice: noon?", SentUnixMs: 7},
		{FromUserId: bob, ToUserId: group, ClientMsgId: "c", Type: im.MessageType_MESSAGE_TYPE_TEXT, Text: "[Lunch] yes", SentUnixMs: 7},
		{FromUserId: group, ToUserId: bob, ClientMsgId: "v", Type: im.MessageType_MESSAGE_TYPE_VOICE, Text: "[Lunch] alice",
			Voice: []byte("clip"), VoiceDurationMs: 900, VoiceFormat: "opus", SentUnixMs: 8},
	}
	if len(r.GetItems()) != len(want) {
		t.Fatalf("%d items, want %d (the GROUPS item dropped): %v", len(r.GetItems()), len(want), r.GetItems())
	}
	for i, it := range r.GetItems() {
		if it.GetType() != im.SyncType_SYNC_TYPE_MESSAGES || it.GetVersion() != 5 {
			t.Errorf("item %d: type %v version %d, want MESSAGES 5", i, it.GetType(), it.GetVersion())
		}
		if !proto.Equal(it.GetMessage(), want[i]) {
			t.Errorf("item %d = %v\nwant %v", i, it.GetMessage(), want[i])
		}
	}
	// What a version 1 client decodes: nothing it does not know.
	b, err := protojson.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"groupId", "groupName", "fromName", "SYNC_TYPE_GROUPS", `"group"`} {
		if strings.Contains(string(b), field) {
			t.Errorf("a version 1 answer holds %s: %s", field, b)
		}
	}
}
