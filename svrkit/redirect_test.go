package svrkit_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svrkit/svrkit/svrkit"
)

// A replica group: whichever endpoint a call reaches, a follower's
// redirect takes it to the leader, and the client then calls the leader
// directly; when the leadership moves, the client follows.
func TestClientFollowsRedirects(t *testing.T) {
	var svcs [3]*testService
	var addrs []string
	for i := range svcs {
		svcs[i] = &testService{}
		addrs = append(addrs, startServer(t, svcs[i]).Addr().String())
	}
	lead := func(l int) {
		for i, s := range svcs {
			if i == l {
				s.redirectTo.Store(nil)
			} else {
				s.redirectTo.Store(&addrs[l])
			}
		}
	}
	c := newClient(t, addrs[0]+","+addrs[1]+","+addrs[2])
	ctx := ctxTimeout(t, 10*time.Second)
	m := keyedEcho() // a key would spread calls; the redirect wins
	call := func(n int) {
		t.Helper()
		for k := range n {
			if err := c.Invoke(ctx, m, wrapperspb.Bytes([]byte(fmt.Sprint("user-", k))), new(wrapperspb.BytesValue)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, l := range []int{2, 0} {
		lead(l)
		before := [3]int64{svcs[0].calls.Load(), svcs[1].calls.Load(), svcs[2].calls.Load()}
		call(100)
		for i, s := range svcs {
			got := s.calls.Load() - before[i]
			if i == l && got != 100 {
				t.Fatalf("leader %d served %d of 100 calls", l, got)
			}
			if i != l && got > 1 {
				t.Fatalf("follower %d was called %d times after its redirect", i, got)
			}
		}
	}
	// A redirect to an endpoint the client was not configured with is not
	// followed: the caller gets the redirect error.
	other := "127.0.0.1:1"
	for _, s := range svcs {
		s.redirectTo.Store(&other)
	}
	err := c.Invoke(ctx, m, wrapperspb.Bytes([]byte("x")), new(wrapperspb.BytesValue))
	if addr, ok := svrkit.RedirectOf(err); !ok || addr != other || svrkit.CodeOf(err) != svrkit.Unavailable {
		t.Fatalf("redirect outside the routing table: %v", err)
	}
}
