package queue_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/svrkit/svrkit/svrkit/queue"
)

// FuzzDecodeDeadLetter: whatever headers a dead letter carries (the
// subject is writable by any client with the credentials), decoding
// neither panics nor accepts nonsense, and what it accepts encodes back
// to the same.
func FuzzDecodeDeadLetter(f *testing.F) {
	f.Add("id-1", "group-7", "boom", "3", "2", "42", "2026-11-29T10:00:00.123456789Z")
	f.Add("", "", "", "", "", "", "")
	f.Add("x", "k", "r", "-1", "0", "1", "2026-11-29T10:00:00Z")
	f.Add("x", "k", "r", "1", "99999", "18446744073709551615", "not a time")
	f.Fuzz(func(t *testing.T, id, key, reason, deliveries, partition, seq, published string) {
		h := nats.Header{}
		for k, v := range map[string]string{"Svrkit-Id": id, "Svrkit-Key": key, "Svrkit-Reason": reason,
			"Svrkit-Deliveries": deliveries, "Svrkit-Partition": partition, "Svrkit-Seq": seq, "Svrkit-Published": published} {
			h.Set(k, v)
		}
		d, err := queue.DecodeDeadLetter(h)
		if err != nil {
			return
		}
		if d.ID == "" || d.Deliveries < 0 || d.Partition < 0 || d.Partition >= queue.MaxPartitions {
			t.Fatalf("accepted %+v", d)
		}
		again, err := queue.DecodeDeadLetter(queue.EncodeDeadLetter(d))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if again.ID != d.ID || again.Key != d.Key || again.Deliveries != d.Deliveries || again.Partition != d.Partition ||
			again.Seq != d.Seq || !again.Published.Equal(d.Published) {
			t.Fatalf("round trip: %+v became %+v", d, again)
		}
		if again.Reason != queue.HeaderSafe(d.Reason, 2048) {
			t.Fatalf("reason %q became %q", d.Reason, again.Reason)
		}
	})
}

// FuzzItemHeader: a key and id that pass the checks travel through the
// headers unchanged, and cannot forge another header; the reason kept
// with a dead letter always fits on one header line.
func FuzzItemHeader(f *testing.F) {
	f.Add("id-1", "group-7")
	f.Add("a\r\nNats-Msg-Id: x", "k\n")
	f.Add("é", strings.Repeat("k", 300))
	f.Fuzz(func(t *testing.T, id, key string) {
		if queue.CheckID(id) == nil && queue.CheckKey(key) == nil {
			gotID, gotKey := queue.DecodeItem(queue.ItemHeader(id, key), 1)
			if gotID != id || gotKey != key {
				t.Fatalf("(%q, %q) became (%q, %q)", id, key, gotID, gotKey)
			}
			if strings.ContainsAny(id+key, "\r\n") {
				t.Fatalf("accepted a line break in %q / %q", id, key)
			}
		}
		s := queue.HeaderSafe(key, 64)
		if len(s) > 64 || strings.ContainsAny(s, "\r\n\x00") || !utf8.ValidString(s) {
			t.Fatalf("HeaderSafe(%q) = %q", key, s)
		}
	})
}
