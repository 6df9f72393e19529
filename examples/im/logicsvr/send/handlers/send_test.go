package handlers

import (
	"strings"
	"testing"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/svrkit"
)

func TestCheckLimits(t *testing.T) {
	text := func(to uint64, id, s string) error {
		return CheckText(&im.SendTextRequest{ToUserId: to, ClientMsgId: id, Text: s})
	}
	voice := func(n int, d uint32, format string) error {
		return CheckVoice(&im.SendVoiceRequest{ToUserId: 2, ClientMsgId: "m", Voice: make([]byte, n), DurationMs: d, Format: format})
	}
	for _, tc := range []struct {
		name string
		err  error
		want string // "" for valid; else a piece of the message
	}{
		{"text ok", text(2, "m1", "hi"), ""},
		{"text max", text(2, "m1", strings.Repeat("x", MaxTextBytes)), ""},
		{"text empty", text(2, "m1", ""), "text must be 1 to 4096 bytes"},
		{"text over", text(2, "m1", strings.Repeat("x", MaxTextBytes+1)), "text must be 1 to 4096 bytes"},
		{"text not utf8", text(2, "m1", "\xff\xfe"), "valid UTF-8"},
		{"no receiver", text(0, "m1", "hi"), "to_user_id"},
		{"no client_msg_id", text(2, "", "hi"), "client_msg_id must be 1 to 64"},
		{"long client_msg_id", text(2, strings.Repeat("i", 65), "hi"), "client_msg_id must be 1 to 64"},
		{"voice ok", voice(MaxVoiceBytes, 60000, "opus"), ""},
		{"voice empty", voice(0, 1000, "opus"), "voice must be 1 to 49152 bytes"},
		{"voice over", voice(MaxVoiceBytes+1, 1000, "opus"), "voice must be 1 to 49152 bytes"},
		{"voice no duration", voice(10, 0, "opus"), "duration_ms must be 1 to 60000"},
		{"voice long", voice(10, 60001, "opus"), "duration_ms must be 1 to 60000"},
		{"voice format", voice(10, 1000, strings.Repeat("f", 17)), "format must be at most 16 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == "" {
				if tc.err != nil {
					t.Fatalf("refused: %v", tc.err)
				}
				return
			}
			if svrkit.CodeOf(tc.err) != svrkit.InvalidArgument || !strings.Contains(tc.err.Error(), tc.want) {
				t.Fatalf("got %v, want invalid_argument with %q", tc.err, tc.want)
			}
		})
	}
}
