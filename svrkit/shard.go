package svrkit

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"google.golang.org/protobuf/proto"
)

// Sharding: a service whose data is split among groups of endpoints — each
// group a replica group that owns one range of the routing keys' hashes,
// such as the IM backend's storage sharded by user id — is called through
// a ShardedInvoker. It hashes a call's routing key (the method's IDL
// routing field, or WithRoutingKey) with KeyHash, finds the shard whose
// range holds the hash, and hands the call to that shard's Invoker
// (usually a Client of the group's endpoints, which follows the group's
// redirects to its leader). Within a shard nothing changes.
//
// A shard owns the hashes from its From up to the next shard's From; the
// first shard starts at 0, so every hash has exactly one owner. The map is
// fixed for the invoker's life: moving a range from one group to another
// moves data, which is an operation of its own, not a routing change.

// Shard is one range of a sharded service's key hashes and who serves it.
type Shard struct {
	// Name names the shard in errors and logs (a routing table name such
	// as "im.Storage/0").
	Name string
	// From is the first key hash the shard owns.
	From uint64
	// Invoker calls the shard's endpoints.
	Invoker Invoker
}

// KeyHash is the hash a ShardedInvoker places a routing key by: 64-bit
// FNV-1a of the key's bytes (for a numeric routing field, its decimal
// form: the user id 42 is the key "42"), then splitmix64's finalizer,
// without which short decimal keys crowd the low half of the hash space.
// It is the hash the Client's rendezvous routing starts from.
func KeyHash(key string) uint64 { return mix64(hashString(key)) }

// ShardedInvoker calls the shard that owns each call's routing key. It is
// safe for concurrent use.
type ShardedInvoker struct {
	shards []Shard // sorted by From; shards[0].From == 0
}

// NewShardedInvoker returns the invoker over shards, which must start at
// hash 0 and name distinct starts.
func NewShardedInvoker(shards []Shard) (*ShardedInvoker, error) {
	s := slices.Clone(shards)
	sort.Slice(s, func(i, j int) bool { return s[i].From < s[j].From })
	if len(s) == 0 || s[0].From != 0 {
		return nil, NewError(InvalidArgument, "svrkit: a shard map must have a shard starting at hash 0")
	}
	for i := range s {
		if s[i].Invoker == nil {
			return nil, Errorf(InvalidArgument, "svrkit: shard %q has no invoker", s[i].Name)
		}
		if i > 0 && s[i].From == s[i-1].From {
			return nil, Errorf(InvalidArgument, "svrkit: shards %q and %q both start at %#x", s[i-1].Name, s[i].Name, s[i].From)
		}
	}
	return &ShardedInvoker{shards: s}, nil
}

// Owner returns the shard that owns key.
func (s *ShardedInvoker) Owner(key string) Shard {
	h := KeyHash(key)
	i := sort.Search(len(s.shards), func(i int) bool { return s.shards[i].From > h }) - 1
	return s.shards[i]
}

// Invoke implements Invoker: the call goes to its routing key's shard. A
// method with no routing key cannot be placed and fails with
// InvalidArgument (call a shard's own Invoker for such methods).
func (s *ShardedInvoker) Invoke(ctx context.Context, m *MethodDesc, req, resp proto.Message, opts ...CallOption) error {
	var co callOptions
	for _, o := range opts {
		o(&co)
	}
	key, ok := co.routingKey, co.hasRoutingKey
	if !ok && m.RoutingKey != nil {
		key, ok = m.RoutingKey(req), true
	}
	if !ok {
		return Errorf(InvalidArgument, "svrkit: %s has no routing key, so no shard of the sharded service can be chosen for it", m.FullName)
	}
	sh := s.Owner(key)
	if err := sh.Invoker.Invoke(ctx, m, req, resp, opts...); err != nil {
		return err
	}
	return nil
}

// Route implements KeyRouter, for callers that group many keys into one
// batch call: keys with equal routes reach the same shard and, when the
// shard's invoker routes by key too, the same endpoint in it.
func (s *ShardedInvoker) Route(key string) string {
	sh := s.Owner(key)
	if r, ok := sh.Invoker.(KeyRouter); ok {
		return sh.Name + " " + r.Route(key)
	}
	return sh.Name
}

func (s *ShardedInvoker) String() string {
	out := "shards:"
	for _, sh := range s.shards {
		out += fmt.Sprintf(" %s@%#x", sh.Name, sh.From)
	}
	return out
}
