package storagetest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/shard"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

// TwoStores is two storage layers of their own, as two shards are, and a
// Logicsvr host whose routing table lists both as the one Storage
// service: its key-routed client sends each user to one of them. It is
// for the tests of the batch methods (DeliverMany, DeliverPair,
// ApplyMembershipMany), which must split their users by the instance each
// user's own calls reach.
type TwoStores struct {
	// Stores are the two storage layers, by their Storage address.
	Stores map[string]*Cluster
	// Host is the Logicsvr under test, with nothing but the routing
	// table; the test builds its handler on it.
	Host *logicsvr.Host
	// Router is the routing of Host's Storage client.
	Router svrkit.KeyRouter
}

// StartTwoStores starts the two stores and a host named name routing to
// both, and stops them when the test ends.
func StartTwoStores(t testing.TB, name string) *TwoStores {
	t.Helper()
	a, b := Start(t, t.TempDir(), nil), Start(t, t.TempDir(), nil)
	addrA, addrB := a.Routes[im.Storage_ServiceName][0], b.Routes[im.Storage_ServiceName][0]
	h, err := logicsvr.New(logicsvr.Config{Name: name, HTTP: logicsvr.Off, RPC: logicsvr.Off,
		Routes: map[string][]string{im.Storage_ServiceName: {addrA, addrB}}},
		logicsvr.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.Shutdown(ctx)
	})
	inv, err := h.Client(im.Storage_ServiceName)
	if err != nil {
		t.Fatal(err)
	}
	return &TwoStores{Stores: map[string]*Cluster{addrA: a, addrB: b}, Host: h, Router: shard.Router(inv)}
}

// Owner is the Storage address user's own calls route to.
func (s *TwoStores) Owner(user uint64) string { return s.Router.Route(shard.Key(user)) }

// Spread returns n user ids and fails the test unless both stores own
// some of them.
func (s *TwoStores) Spread(t testing.TB, n int) []uint64 {
	t.Helper()
	users := make([]uint64, n)
	on := map[string]int{}
	for i := range users {
		users[i] = uint64(1000 + i*7919)
		on[s.Owner(users[i])]++
	}
	if len(on) < 2 {
		t.Fatalf("%d users all routed to one instance: %v", n, on)
	}
	return users
}
