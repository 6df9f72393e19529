package handlers_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/groups"
	"github.com/svrkit/svrkit/examples/im/internal/shard"
	"github.com/svrkit/svrkit/examples/im/internal/storagetest"
	"github.com/svrkit/svrkit/examples/im/logicsvr/groupdata/handlers"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

func userRange(from uint64, n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = from + uint64(i)
	}
	return out
}

func ctx30(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// listOf returns user's groups as s lists them.
func listOf(t *testing.T, ctx context.Context, s im.UserGroupsServer, user uint64) []uint64 {
	t.Helper()
	r, err := s.ListUserGroups(ctx, &im.ListUserGroupsRequest{UserId: user})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetGroupIds()
}

func applyMany(t *testing.T, ctx context.Context, s im.UserGroupsServer, g uint64, users []uint64, member bool, seq uint64) []bool {
	t.Helper()
	r, err := s.ApplyMembershipMany(ctx, &im.ApplyMembershipManyRequest{UserId: users[0], UserIds: users, GroupId: g, Member: member, Seq: seq})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.GetChanged()) != len(users) {
		t.Fatalf("%d results for %d users", len(r.GetChanged()), len(users))
	}
	return r.GetChanged()
}

func count(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// ApplyMembershipMany is ApplyMembership for each user: idempotent by
// seq, a leave at a later seq wins over the join and a late join older
// than the leave changes nothing, and the single method agrees with it.
func TestApplyMembershipMany(t *testing.T) {
	c := storagetest.Start(t, t.TempDir(), nil)
	ctx := ctx30(t)
	s := handlers.NewUserGroupsServer(c.Storage(t), handlers.Config{})
	g, other := groups.ID(1, "a"), groups.ID(1, "b")
	all := userRange(10, handlers.MaxApplyManyUsers)
	if n := count(applyMany(t, ctx, s, g, all, true, 1)); n != len(all) {
		t.Fatalf("the join changed %d of %d users", n, len(all))
	}
	if n := count(applyMany(t, ctx, s, g, all, true, 1)); n != 0 {
		t.Fatalf("a repeated join changed %d users", n)
	}
	leavers := all[100:150]
	if n := count(applyMany(t, ctx, s, g, leavers, false, 4)); n != len(leavers) {
		t.Fatalf("the leave changed %d of %d users", n, len(leavers))
	}
	// A late join (seq 3, older than the leave): the leavers unchanged,
	// the others take it (their index was at seq 1).
	changed := applyMany(t, ctx, s, g, all[90:160], true, 3)
	for i, u := range all[90:160] {
		if want := !slices.Contains(leavers, u); changed[i] != want {
			t.Fatalf("late join, user %d: changed %v, want %v", u, changed[i], want)
		}
	}
	r, err := s.ApplyMembership(ctx, &im.ApplyMembershipRequest{UserId: leavers[0], GroupId: g, Member: true, Seq: 2})
	if err != nil || r.GetChanged() {
		t.Fatalf("single join older than the batch's leave: %v, %v", r, err)
	}
	if _, err := s.ApplyMembership(ctx, &im.ApplyMembershipRequest{UserId: all[0], GroupId: other, Member: true, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	both := []uint64{g, other}
	slices.Sort(both)
	// A fresh instance reads what the batches stored.
	fresh := handlers.NewUserGroupsServer(c.Storage(t), handlers.Config{})
	for _, srv := range []*handlers.UserGroupsServer{s, fresh} {
		for _, u := range all {
			got, want := listOf(t, ctx, srv, u), []uint64{g}
			switch {
			case slices.Contains(leavers, u):
				want = nil
			case u == all[0]:
				want = both
			}
			if !slices.Equal(got, want) {
				t.Fatalf("user %d's groups = %v, want %v", u, got, want)
			}
		}
	}
	// Rejoining at a later seq.
	if n := count(applyMany(t, ctx, fresh, g, leavers, true, 9)); n != len(leavers) {
		t.Fatalf("the rejoin changed %d of %d users", n, len(leavers))
	}
	again := handlers.NewUserGroupsServer(c.Storage(t), handlers.Config{})
	for _, srv := range []*handlers.UserGroupsServer{fresh, again} {
		if got := listOf(t, ctx, srv, leavers[0]); !slices.Equal(got, []uint64{g}) {
			t.Fatalf("after rejoining: %v", got)
		}
	}
}

// An instance whose cache is stale (another instance wrote the users'
// index since, as after a routing change) finds out from the failed
// condition, reads again and keeps the other's write.
func TestApplyMembershipManyAfterAnotherInstanceWrote(t *testing.T) {
	c := storagetest.Start(t, t.TempDir(), nil)
	ctx := ctx30(t)
	a := handlers.NewUserGroupsServer(c.Storage(t), handlers.Config{})
	b := handlers.NewUserGroupsServer(c.Storage(t), handlers.Config{})
	g1, g2, g3 := groups.ID(1, "1"), groups.ID(1, "2"), groups.ID(1, "3")
	us := userRange(20, 30)
	applyMany(t, ctx, a, g1, us, true, 1) // a caches the users at g1
	applyMany(t, ctx, b, g2, us[10:], true, 1)
	if n := count(applyMany(t, ctx, a, g3, us, true, 1)); n != len(us) {
		t.Fatalf("changed %d of %d", n, len(us))
	}
	fresh := handlers.NewUserGroupsServer(c.Storage(t), handlers.Config{})
	for i, u := range us {
		want := []uint64{g1, g3}
		if i >= 10 {
			want = append(want, g2)
		}
		slices.Sort(want)
		if got := listOf(t, ctx, fresh, u); !slices.Equal(got, want) {
			t.Fatalf("user %d: %v, want %v", u, got, want)
		}
	}
}

// Bad requests get invalid_argument, say why, and write nothing.
func TestApplyMembershipManyLimits(t *testing.T) {
	c := storagetest.Start(t, t.TempDir(), nil)
	ctx := ctx30(t)
	s := handlers.NewUserGroupsServer(c.Storage(t), handlers.Config{})
	g := groups.ID(1, "a")
	for _, tc := range []struct {
		name, says string
		req        *im.ApplyMembershipManyRequest
	}{
		{"no users", "membership of 0 users outside [1, 500]", &im.ApplyMembershipManyRequest{UserId: 10, GroupId: g, Member: true, Seq: 1}},
		{"501 users", "membership of 501 users outside [1, 500]",
			&im.ApplyMembershipManyRequest{UserId: 10, UserIds: userRange(10, 501), GroupId: g, Member: true, Seq: 1}},
		{"a user twice", "user 11 named twice", &im.ApplyMembershipManyRequest{UserId: 10, UserIds: []uint64{10, 11, 11}, GroupId: g, Seq: 1}},
		{"routing user not among them", "routing user 9 is not one of the 2 users",
			&im.ApplyMembershipManyRequest{UserId: 9, UserIds: []uint64{10, 11}, GroupId: g, Seq: 1}},
		{"a group as user", "is not a user id", &im.ApplyMembershipManyRequest{UserId: 10, UserIds: []uint64{10, g}, GroupId: g, Seq: 1}},
		{"user 0", "0 is not a user id", &im.ApplyMembershipManyRequest{UserId: 10, UserIds: []uint64{10, 0}, GroupId: g, Seq: 1}},
		{"a user as group", "need a group id and a seq", &im.ApplyMembershipManyRequest{UserId: 10, UserIds: []uint64{10}, GroupId: 5, Seq: 1}},
		{"no seq", "need a group id and a seq", &im.ApplyMembershipManyRequest{UserId: 10, UserIds: []uint64{10}, GroupId: g}},
	} {
		_, err := s.ApplyMembershipMany(ctx, tc.req)
		wantCode(t, tc.name, err, svrkit.InvalidArgument)
		if !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v does not say %q", tc.name, err, tc.says)
		}
	}
	for _, u := range userRange(9, 4) {
		if got := listOf(t, ctx, s, u); len(got) != 0 {
			t.Fatalf("refused requests wrote user %d: %v", u, got)
		}
	}
}

// With two storage instances, each user's index is written on the
// instance its own calls route to.
func TestApplyMembershipManyAcrossStorageShards(t *testing.T) {
	two := storagetest.StartTwoStores(t, "groupdata")
	s, err := handlers.NewUserGroups(two.Host)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctx30(t)
	us := two.Spread(t, 40)
	g := groups.ID(1, "spread")
	if n := count(applyMany(t, ctx, s, g, us, true, 1)); n != len(us) {
		t.Fatalf("changed %d of %d", n, len(us))
	}
	for _, u := range us {
		owner := two.Owner(u)
		for addr, c := range two.Stores {
			_, err := c.Storage(t).Get(ctx, &im.KVGetRequest{UserId: u, Key: []byte("groups")})
			if want := addr == owner; (err == nil) != want {
				t.Errorf("user %d (routed to %s): on %s: %v", u, owner, addr, err)
			}
		}
		if got := listOf(t, ctx, s, u); !slices.Equal(got, []uint64{g}) {
			t.Errorf("user %d: %v", u, got)
		}
	}
}

// oldUserGroups is a UserGroups server from before ApplyMembershipMany.
type oldUserGroups struct {
	im.UnimplementedUserGroupsServer
	s *handlers.UserGroupsServer
}

func (o oldUserGroups) ApplyMembership(ctx context.Context, req *im.ApplyMembershipRequest) (*im.ApplyMembershipReply, error) {
	return o.s.ApplyMembership(ctx, req)
}

// serveUserGroups serves impl over svrkit RPC on loopback and returns a
// client's invoker of it.
func serveUserGroups(t *testing.T, impl im.UserGroupsServer) svrkit.Invoker {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := logicsvr.New(logicsvr.Config{Name: "groupdata", HTTP: logicsvr.Off, RPC: "127.0.0.1:0", Admin: "127.0.0.1:0", Dev: true},
		logicsvr.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	im.RegisterUserGroupsServer(srv, impl)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	cli, err := logicsvr.New(logicsvr.Config{Name: "group", HTTP: logicsvr.Off, RPC: logicsvr.Off,
		Routes: map[string][]string{im.UserGroups_ServiceName: {srv.RPCAddr().String()}}}, logicsvr.WithLogger(log),
		// The old server's 600 calls can raise its admission level on a
		// loaded machine; these tests check what is written, not shedding.
		logicsvr.WithClientOptions(svrkit.WithClientInterceptors(storagetest.RetryOverloaded)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cli.Shutdown(ctx)
		srv.Shutdown(ctx)
	})
	inv, err := cli.Client(im.UserGroups_ServiceName)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// groups.Index writes a change's users with ApplyMembershipMany over RPC,
// and with one ApplyMembership each to a server that does not know it
// (a groupdata not upgraded yet).
func TestIndexApply(t *testing.T) {
	c := storagetest.Start(t, t.TempDir(), nil)
	ctx := ctx30(t)
	for _, tc := range []struct {
		name  string
		first uint64
		impl  func(*handlers.UserGroupsServer) im.UserGroupsServer
	}{
		{"ApplyMembershipMany", 5000, func(s *handlers.UserGroupsServer) im.UserGroupsServer { return s }},
		{"old server", 6000, func(s *handlers.UserGroupsServer) im.UserGroupsServer { return oldUserGroups{s: s} }},
	} {
		s := handlers.NewUserGroupsServer(c.Storage(t), handlers.Config{})
		inv := serveUserGroups(t, tc.impl(s))
		x := &groups.Index{Client: im.NewUserGroupsClient(inv), Route: shard.Router(inv)}
		g := groups.ID(2, tc.name)
		us := userRange(tc.first, 600) // more than one call's worth
		if err := x.Apply(ctx, g, us, true, 1); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := x.Apply(ctx, g, us[:10], false, 2); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for i, u := range us {
			want := []uint64{g}
			if i < 10 {
				want = nil
			}
			if got := listOf(t, ctx, s, u); !slices.Equal(got, want) {
				t.Fatalf("%s: user %d: %v, want %v", tc.name, u, got, want)
			}
		}
	}
}
