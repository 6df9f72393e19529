package groups

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
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

func TestForEach(t *testing.T) {
	var n, running, most atomic.Int64
	err := ForEach(context.Background(), 100, 8, func(ctx context.Context, i int) error {
		r := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if r <= m || most.CompareAndSwap(m, r) {
				break
			}
		}
		n.Add(1)
		return nil
	})
	if err != nil || n.Load() != 100 || most.Load() > 8 {
		t.Fatalf("ForEach: %v, %d calls, %d at once", err, n.Load(), most.Load())
	}
	boom := errors.New("boom")
	n.Store(0)
	err = ForEach(context.Background(), 1000, 4, func(ctx context.Context, i int) error {
		n.Add(1)
		if i == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || n.Load() >= 1000 {
		t.Fatalf("after an error: %v, %d calls", err, n.Load())
	}
}
