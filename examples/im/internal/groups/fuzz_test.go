package groups

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodeItem: a queue payload of any bytes decodes to an item that
// encodes back to the same bytes, or fails with ErrBadItem; never a panic.
// The fan-out worker treats a failure as permanent (the item goes to the
// dead letters), so whatever lands in the stream cannot stop it.
func FuzzDecodeItem(f *testing.F) {
	f.Add(Item{Group: ID(1, "x"), Seq: 1}.Payload())
	f.Add(Item{Group: 1<<64 - 1, Seq: 1<<64 - 1}.Payload())
	f.Add(make([]byte, 16))               // group 0, seq 0
	f.Add([]byte{1, 2, 3})                // short
	f.Add(bytes.Repeat([]byte{0x80}, 17)) // long
	f.Fuzz(func(t *testing.T, b []byte) {
		it, err := DecodeItem(b)
		if err != nil {
			if !errors.Is(err, ErrBadItem) {
				t.Fatalf("error %v is not ErrBadItem", err)
			}
			return
		}
		if !IsID(it.Group) || it.Seq == 0 || !bytes.Equal(it.Payload(), b) {
			t.Fatalf("%x decoded to %+v", b, it)
		}
	})
}
