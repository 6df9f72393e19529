package handlers

import (
	"context"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/groups"
	"github.com/svrkit/svrkit/examples/im/internal/shard"
	"github.com/svrkit/svrkit/svrkit"
)

// MaxApplyManyUsers bounds one ApplyMembershipMany: every member a change
// names (a group's creation names them all) fits in one call.
const MaxApplyManyUsers = shard.MaxBatchUsers

// loadParallel bounds the storage reads of one ApplyMembershipMany part
// in flight (the users whose index is not cached).
const loadParallel = 32

// ApplyMembershipMany implements im.UserGroupsServer: ApplyMembership for
// each user, with one Storage.PutMany per storage instance the users
// route to (several run at once), so that the index writes of a change
// naming 500 users cost a few fsyncs, not 500.
//
// Each part (the users of one storage instance) holds the locks of its
// users, taken in stripe order (so two calls, or two parts of one, cannot
// deadlock, and a single ApplyMembership, which holds one lock, waits for
// at most the part it meets), reads each user's index (from the cache,
// else storage), and writes the users whose index changes with PutMany,
// compare-and-set on each record's version. A failed condition (the cache
// was stale: another instance wrote, after a routing change) writes
// nothing of that PutMany; the users not written yet are read again from
// storage and the write tried again, as ApplyMembership does for one.
func (s *UserGroupsServer) ApplyMembershipMany(ctx context.Context, req *im.ApplyMembershipManyRequest) (*im.ApplyMembershipManyReply, error) {
	users, group, seq := req.GetUserIds(), req.GetGroupId(), req.GetSeq()
	if n := len(users); n == 0 || n > MaxApplyManyUsers {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "membership of %d users outside [1, %d]", n, MaxApplyManyUsers)
	}
	if !groups.IsID(group) || seq == 0 {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "need a group id and a seq")
	}
	for _, u := range users {
		if !groups.IsUserID(u) {
			return nil, svrkit.Errorf(svrkit.InvalidArgument, "%d is not a user id", u)
		}
	}
	if err := shard.CheckBatch(users, req.GetUserId()); err != nil {
		return nil, err
	}
	out := &im.ApplyMembershipManyReply{Changed: make([]bool, len(users))}
	parts := shard.Group(users, s.route)
	err := shard.ForEach(ctx, len(parts), len(parts), func(ctx context.Context, k int) error {
		idx := parts[k]
		ids := shard.Pick(users, idx)
		changed := make([]bool, len(ids))
		err := s.applyPart(ctx, ids, group, seq, req.GetMember(), changed)
		for j, i := range idx {
			out.Changed[i] = changed[j]
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// applyPart applies the change to users, which route to one storage
// instance, and sets changed[j] for each users[j] it wrote.
func (s *UserGroupsServer) applyPart(ctx context.Context, users []uint64, group, seq uint64, member bool, changed []bool) error {
	defer s.lockMany(users)()
	pending := make([]int, len(users)) // indexes into users not written yet
	for j := range pending {
		pending[j] = j
	}
	fromStore := false
	for attempt := 0; ; attempt++ {
		cs, err := s.loadMany(ctx, users, pending, fromStore)
		if err != nil {
			return err
		}
		var puts []indexPut
		for k, j := range pending {
			rec := applied(cs[k].rec, group, seq, member)
			if rec == nil {
				continue // a newer change is recorded
			}
			val, err := proto.Marshal(rec)
			if err != nil {
				return svrkit.Errorf(svrkit.Internal, "encode group index: %v", err)
			}
			puts = append(puts, indexPut{j, rec, &im.KVPutRequest{UserId: users[j], Key: keyUserGroups, Value: val, ExpectVersion: cs[k].version}})
		}
		// One PutMany unless the records outgrow its byte limit (users in
		// hundreds of groups): then as many as it takes, each all or
		// nothing on its own. After a conflict the rest wait for the next
		// attempt, read again from storage.
		pending = pending[:0]
		conflict := false
		for _, chunk := range putChunks(puts) {
			var versions []uint64
			if !conflict {
				versions, err = s.putMany(ctx, chunk)
				conflict = svrkit.CodeOf(err) == svrkit.Aborted && attempt+1 < casAttempts
			}
			if conflict {
				for _, p := range chunk {
					pending = append(pending, p.j)
				}
				continue
			}
			if err != nil {
				return err
			}
			for k, p := range chunk {
				s.cache.Put(users[p.j], &userGroups{rec: p.rec, version: versions[k]})
				changed[p.j] = true
			}
		}
		if !conflict {
			return nil
		}
		fromStore = true
	}
}

// indexPut is one user's index write: users[j]'s new record and its put.
type indexPut struct {
	j   int
	rec *im.UserGroupsRecord
	req *im.KVPutRequest
}

// putChunks cuts puts into runs that each fit Storage.PutMany's byte
// limit (a put larger than it alone in its run).
func putChunks(puts []indexPut) [][]indexPut {
	var out [][]indexPut
	for lo := 0; lo < len(puts); {
		hi, bytes := lo, 0
		for hi < len(puts) && (hi == lo || bytes+putBytes(puts[hi].req) <= shard.MaxPutBytes) {
			bytes += putBytes(puts[hi].req)
			hi++
		}
		out = append(out, puts[lo:hi])
		lo = hi
	}
	return out
}

// putMany writes one chunk and returns each put's new version.
func (s *UserGroupsServer) putMany(ctx context.Context, chunk []indexPut) ([]uint64, error) {
	reqs := make([]*im.KVPutRequest, len(chunk))
	for k, p := range chunk {
		reqs[k] = p.req
	}
	r, err := s.storage.PutMany(ctx, &im.KVPutManyRequest{UserId: reqs[0].GetUserId(), Puts: reqs})
	if err != nil {
		return nil, err
	}
	if len(r.GetVersions()) != len(chunk) {
		return nil, svrkit.Errorf(svrkit.Internal, "storage answered %d versions for %d puts", len(r.GetVersions()), len(chunk))
	}
	return r.GetVersions(), nil
}

// putBytes is what a put counts against Storage.PutMany's byte limit.
func putBytes(p *im.KVPutRequest) int { return len(p.GetKey()) + len(p.GetValue()) }

// lockMany locks the stripes of users in ascending order and returns
// their unlock.
func (s *UserGroupsServer) lockMany(users []uint64) func() {
	stripes := make([]int, len(users))
	for j, u := range users {
		stripes[j] = stripe(u)
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, i := range stripes {
		s.locks[i].Lock()
	}
	return func() {
		for _, i := range stripes {
			s.locks[i].Unlock()
		}
	}
}

// loadMany returns the index of users[j] for each j of at, in at's
// order: from the cache unless fromStore, the others read from storage,
// several at once. The caller holds the users' locks.
func (s *UserGroupsServer) loadMany(ctx context.Context, users []uint64, at []int, fromStore bool) ([]*userGroups, error) {
	out := make([]*userGroups, len(at))
	var miss []int // indexes into at
	for k, j := range at {
		if !fromStore {
			if c, ok := s.cache.Get(users[j]); ok {
				out[k] = c
				continue
			}
		}
		miss = append(miss, k)
	}
	err := shard.ForEach(ctx, len(miss), loadParallel, func(ctx context.Context, m int) error {
		k := miss[m]
		c, err := s.load(ctx, users[at[k]], true)
		out[k] = c
		return err
	})
	return out, err
}
