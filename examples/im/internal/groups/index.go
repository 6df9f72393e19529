package groups

import (
	"context"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/shard"
	"github.com/svrkit/svrkit/svrkit"
)

// Index writes the user index (UserGroups, idl/im/groupdata.proto) of the
// users a membership change names, for the two writers of it: the group
// Logicsvr before it answers and the fan-out worker from the log.
type Index struct {
	// Client is the UserGroups client.
	Client im.UserGroupsClient
	// Route is its routing (shard.Router of its invoker; nil: one
	// instance).
	Route svrkit.KeyRouter
	// Parallel bounds the calls of one Apply in flight (default 4).
	Parallel int
	// Retry, when set, makes each call: it calls f and may call it again
	// (the fan-out's retry of a busy callee). Nil calls f once.
	Retry func(ctx context.Context, f func() error) error
}

// Batches cuts users into the user lists of ApplyMembershipMany calls:
// grouped by the UserGroups instance each routes to (a user's index must
// be written by the instance its own calls reach, which holds its lock
// and cache), each group cut into even parts of at most
// shard.MaxBatchUsers.
func (x *Index) Batches(users []uint64) [][]uint64 {
	return shard.Batches(users, x.Route, shard.MaxBatchUsers)
}

// Apply records that users joined (member) or left group at seq: one
// UserGroups.ApplyMembershipMany per batch (Batches), so a change naming a
// group's 500 members costs one call per UserGroups instance, and that
// instance one storage write per storage instance. A callee that does not
// know ApplyMembershipMany (unimplemented: a groupdata from before it,
// during a rolling upgrade) gets one ApplyMembership per user instead.
// It returns the first error; the writes are idempotent by seq, so the
// caller may simply call again.
func (x *Index) Apply(ctx context.Context, group uint64, users []uint64, member bool, seq uint64) error {
	if len(users) == 0 {
		return nil
	}
	retry := x.Retry
	if retry == nil {
		retry = func(_ context.Context, f func() error) error { return f() }
	}
	parallel := x.Parallel
	if parallel <= 0 {
		parallel = 4
	}
	batches := x.Batches(users)
	return shard.ForEach(ctx, len(batches), parallel, func(ctx context.Context, i int) error {
		ids := batches[i]
		err := retry(ctx, func() error {
			_, err := x.Client.ApplyMembershipMany(ctx, &im.ApplyMembershipManyRequest{
				UserId: ids[0], UserIds: ids, GroupId: group, Member: member, Seq: seq,
			})
			return err
		})
		if svrkit.CodeOf(err) != svrkit.Unimplemented {
			return err
		}
		return shard.ForEach(ctx, len(ids), 32, func(ctx context.Context, j int) error {
			return retry(ctx, func() error {
				_, err := x.Client.ApplyMembership(ctx, &im.ApplyMembershipRequest{UserId: ids[j], GroupId: group, Member: member, Seq: seq})
				return err
			})
		})
	})
}
