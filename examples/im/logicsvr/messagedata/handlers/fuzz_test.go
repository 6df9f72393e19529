package handlers

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/svrkit"
)

// FuzzDecodeItem: any stored payload decodes to an item of the entry's type
// or to a DataLoss error, never a panic; and what encodeItem wrote decodes
// back to the same item.
func FuzzDecodeItem(f *testing.F) {
	for _, it := range []*im.SyncItem{
		{Type: im.SyncType_SYNC_TYPE_MESSAGES, Item: &im.SyncItem_Message{Message: &im.Message{FromUserId: 1, ToUserId: 2, ClientMsgId: "c", Text: "hi"}}},
		{Type: im.SyncType_SYNC_TYPE_ACCOUNT, Item: &im.SyncItem_Profile{Profile: &im.Profile{UserId: 1, Name: "ada"}}},
		{Type: im.SyncType_SYNC_TYPE_CONTACTS, Item: &im.SyncItem_Contact{Contact: &im.ContactChange{Removed: true, ListVersion: 3}}},
	} {
		b, err := encodeItem(it)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(it.GetType()))
	}
	f.Add([]byte{0xff, 0x01}, uint8(3))
	f.Fuzz(func(t *testing.T, payload []byte, typ uint8) {
		e := &im.InboxEntry{Type: im.InboxType(typ), Version: 9, AtUnixMs: 5, Payload: payload}
		item := new(im.SyncItem)
		if err := decodeItem(item, e); err != nil {
			if svrkit.CodeOf(err) != svrkit.DataLoss {
				t.Fatalf("error %v is not DataLoss", err)
			}
			return
		}
		if it, _ := inboxType(item.GetType()); it != e.GetType() || item.GetVersion() != 9 || item.GetAtUnixMs() != 5 {
			t.Fatalf("decoded %v from an entry of type %v", item, e.GetType())
		}
		if checkItem(item) != "" {
			return // a valid encoding of an item Deliver would refuse
		}
		// encodeItem keeps the type and the content only: fields of the
		// item this build does not know (a newer writer's) do not survive.
		item.ProtoReflect().SetUnknown(nil)
		again, err := encodeItem(item)
		if err != nil {
			t.Fatal(err)
		}
		back := new(im.SyncItem)
		err = decodeItem(back, &im.InboxEntry{Type: e.GetType(), Version: 9, AtUnixMs: 5, Payload: again})
		if err != nil || !proto.Equal(back, item) {
			t.Fatalf("round trip: %v -> %v (%v)", item, back, err)
		}
	})
}
