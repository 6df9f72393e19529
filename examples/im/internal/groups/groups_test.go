package groups

import (
	"errors"
	"strings"
	"testing"

	"github.com/svrkit/svrkit/svrkit"
)

func TestIDs(t *testing.T) {
	g := ID(42, "lunch")
	if !IsID(g) || IsUserID(g) {
		t.Fatalf("ID(42, lunch) = %d: IsID %v, IsUserID %v", g, IsID(g), IsUserID(g))
	}
	if ID(42, "lunch") != g || ID(43, "lunch") == g || ID(42, "dinner") == g {
		t.Fatal("group ids are not a function of creator and client id")
	}
	for _, id := range []uint64{1, 1 << 62, 1<<63 - 1} { // accountdata draws ids up to 2^63-1
		if IsID(id) || !IsUserID(id) {
			t.Errorf("%d taken for a group id", id)
		}
	}
	if IsID(0) || IsUserID(0) {
		t.Error("0 is neither a user's nor a group's id")
	}
}

func TestItem(t *testing.T) {
	it := Item{Group: ID(1, "x"), Seq: 7}
	got, err := DecodeItem(it.Payload())
	if err != nil || got != it {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	if !strings.HasSuffix(it.ID(), "-7") || it.Key() == "" {
		t.Errorf("id %q key %q", it.ID(), it.Key())
	}
	for _, bad := range [][]byte{nil, make([]byte, 15), make([]byte, 16), Item{Group: 5, Seq: 1}.Payload(), Item{Group: it.Group}.Payload()} {
		if _, err := DecodeItem(bad); !errors.Is(err, ErrBadItem) {
			t.Errorf("DecodeItem(%x) = %v", bad, err)
		}
	}
}

func TestCheckName(t *testing.T) {
	for name, code := range map[string]svrkit.Code{
		"lunch": svrkit.OK, "": svrkit.InvalidArgument, strings.Repeat("x", 64): svrkit.OK,
		strings.Repeat("x", 65): svrkit.InvalidArgument, "\xff": svrkit.InvalidArgument,
	} {
		if got := svrkit.CodeOf(CheckName(name)); got != code {
			t.Errorf("CheckName(%q) = %v, want %v", name, got, code)
		}
	}
}

func TestQueueConfigCheck(t *testing.T) {
	ok := QueueConfig{URLs: []string{"nats://127.0.0.1:4222"}, Token: "a real token"}
	dev := QueueConfig{URLs: ok.URLs, Token: "dev-only: set your own secret in production"}
	for _, tc := range []struct {
		cfg  QueueConfig
		dev  bool
		want string
	}{
		{ok, false, ""},
		{dev, true, ""},
		{dev, false, "REFUSING TO START"},
		{QueueConfig{Token: "x"}, true, "urls"},
		{QueueConfig{URLs: ok.URLs}, true, "token"},
	} {
		err := tc.cfg.Check(tc.dev)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%+v, dev %v) = %v, want %q", tc.cfg, tc.dev, err, tc.want)
		}
	}
}
