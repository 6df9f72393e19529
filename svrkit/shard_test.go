package svrkit_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svrkit/svrkit/svrkit"
)

// shardRecorder is an Invoker that records which shard got the call.
type shardRecorder struct {
	name string
	got  *[]string
}

func (r shardRecorder) Invoke(ctx context.Context, m *svrkit.MethodDesc, req, resp proto.Message, opts ...svrkit.CallOption) error {
	*r.got = append(*r.got, r.name)
	return nil
}

func TestShardedInvoker(t *testing.T) {
	var got []string
	inv, err := svrkit.NewShardedInvoker([]svrkit.Shard{
		{Name: "b", From: 1 << 63, Invoker: shardRecorder{"b", &got}},
		{Name: "a", From: 0, Invoker: shardRecorder{"a", &got}},
	})
	if err != nil {
		t.Fatal(err)
	}
	keyed := &svrkit.MethodDesc{FullName: "/t.S/Keyed", RoutingKey: func(req proto.Message) string {
		return fmt.Sprint(req.(*wrapperspb.UInt64Value).GetValue())
	}}
	counts := map[string]int{}
	for u := range uint64(1000) {
		got = got[:0]
		if err := inv.Invoke(context.Background(), keyed, wrapperspb.UInt64(u), nil); err != nil {
			t.Fatal(err)
		}
		want := "a"
		if svrkit.KeyHash(fmt.Sprint(u)) >= 1<<63 {
			want = "b"
		}
		if len(got) != 1 || got[0] != want || inv.Owner(fmt.Sprint(u)).Name != want {
			t.Fatalf("user %d went to %v, want %s", u, got, want)
		}
		counts[want]++
		// A batch grouped by Route reaches, for every key, its owner.
		if r := inv.Route(fmt.Sprint(u)); r != want {
			t.Fatalf("Route(%d) = %q, want the owner %s", u, r, want)
		}
	}
	if counts["a"] < 400 || counts["b"] < 400 {
		t.Errorf("1000 users split %v: the hash does not spread them", counts)
	}
	// WithRoutingKey overrides the method's key.
	got = got[:0]
	k := "0"
	inv.Invoke(context.Background(), keyed, wrapperspb.UInt64(1), nil, svrkit.WithRoutingKey(k))
	if got[0] != inv.Owner(k).Name {
		t.Errorf("WithRoutingKey(%q) went to %s", k, got[0])
	}
	unkeyed := &svrkit.MethodDesc{FullName: "/t.S/Unkeyed"}
	if err := inv.Invoke(context.Background(), unkeyed, wrapperspb.UInt64(1), nil); svrkit.CodeOf(err) != svrkit.InvalidArgument {
		t.Errorf("a method without a routing key: %v", err)
	}

	for name, shards := range map[string][]svrkit.Shard{
		"none":            nil,
		"no shard at 0":   {{Name: "a", From: 5, Invoker: shardRecorder{}}},
		"same start":      {{Name: "a", Invoker: shardRecorder{}}, {Name: "b", Invoker: shardRecorder{}}},
		"without invoker": {{Name: "a"}},
	} {
		if _, err := svrkit.NewShardedInvoker(shards); err == nil || !errors.As(err, new(*svrkit.Error)) {
			t.Errorf("%s: %v, want an error", name, err)
		}
	}
}
