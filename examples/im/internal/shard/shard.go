// Package shard groups user ids by the instance a key-routed service's
// client sends each to, for the callers of batch methods
// (MessageData.DeliverMany, Storage.DeliverMany, Storage.PutMany,
// UserGroups.ApplyMembershipMany, Push.NotifyMany, and the DeliverPairs
// of a message's two copies): a batch about many users must reach, for
// every user in it, the instance the user's own calls reach, because that
// instance holds the user's per-user lock (storage), cache (messagedata)
// or online devices (presence). Callers group the users with Group (or
// ask Together of two) and send each group routed by one of its users,
// side by side with ForEach; the callee checks the request with
// CheckBatch.
package shard

import (
	"context"
	"slices"
	"strconv"
	"sync"

	"github.com/svrkit/svrkit/svrkit"
)

// Limits of one batch write about many users (MessageData.DeliverMany and
// Storage.DeliverMany, as idl/im/data.proto and storage.proto state them):
// at most MaxBatchUsers users, and users × the stored item's bytes at
// most MaxBatchBytes. They are the store's (package inbox's MaxManyUsers
// and MaxManyBytes, which a test keeps equal), repeated here so that a
// caller can cut its batches without linking the store.
const (
	MaxBatchUsers = 500
	MaxBatchBytes = 4 << 20
)

// MaxPutBytes bounds the keys' and values' bytes of one Storage.PutMany
// (storage.proto; the storage handlers' MaxPutManyBytes, which a test
// keeps equal): its values travel in the request, which must fit in one
// 4 MiB frame.
const MaxPutBytes = 3 << 20

// Key is user's routing key: the string generated clients hash for a
// uint64 routing field (decimal).
func Key(user uint64) string { return strconv.FormatUint(user, 10) }

// Group returns the indexes of users grouped by r's route for each, in
// the order the routes first appear and the users' order within a group.
// With a nil r (an invoker that does not route by key, as in-process test
// doubles) every user is in one group.
func Group(users []uint64, r svrkit.KeyRouter) [][]int {
	if r == nil {
		all := make([]int, len(users))
		for i := range all {
			all[i] = i
		}
		return [][]int{all}
	}
	var out [][]int
	at := map[string]int{}
	for i, u := range users {
		addr := r.Route(Key(u))
		k, ok := at[addr]
		if !ok {
			k = len(out)
			at[addr] = k
			out = append(out, nil)
		}
		out[k] = append(out[k], i)
	}
	return out
}

// Together reports whether r routes a and b to the same instance, so that
// one call about both (MessageData.DeliverPair, Storage.DeliverPair) can
// reach the instance each one's own calls reach. A nil r routes every
// user to one instance. A user r cannot place (no endpoint) is with no
// one.
func Together(r svrkit.KeyRouter, a, b uint64) bool {
	if r == nil {
		return true
	}
	ra := r.Route(Key(a))
	return ra != "" && ra == r.Route(Key(b))
}

// Router returns inv as a KeyRouter if it routes by key (a *svrkit.Client
// and a *svrkit.ShardedInvoker do), nil otherwise.
func Router(inv svrkit.Invoker) svrkit.KeyRouter {
	r, _ := inv.(svrkit.KeyRouter)
	return r
}

// Batches cuts users into the user lists of batch calls: grouped by r's
// route for each (Group), each group cut into even parts of at most limit
// users, so that 129 users under a limit of 128 go as 65 and 64, not 128
// and 1.
func Batches(users []uint64, r svrkit.KeyRouter, limit int) [][]uint64 {
	var out [][]uint64
	for _, idx := range BatchIndexes(users, r, limit) {
		out = append(out, Pick(users, idx))
	}
	return out
}

// Pick returns xs[idx[0]], xs[idx[1]], …: the members of one group of
// Group or BatchIndexes, or anything indexed alike.
func Pick[T any](xs []T, idx []int) []T {
	out := make([]T, len(idx))
	for j, i := range idx {
		out[j] = xs[i]
	}
	return out
}

// BatchIndexes is Batches by index into users, for a caller whose batch
// entries carry more than the user (Push.NotifyMany's notifies, where a
// user may appear once per inbox type: each of its entries routes alike).
func BatchIndexes(users []uint64, r svrkit.KeyRouter, limit int) [][]int {
	var out [][]int
	for _, idx := range Group(users, r) {
		parts := (len(idx) + limit - 1) / limit
		for p := range parts {
			lo, hi := p*len(idx)/parts, (p+1)*len(idx)/parts
			out = append(out, idx[lo:hi:hi])
		}
	}
	return out
}

// Repeated returns a user named more than once in users, if any: a batch
// names each user once (one result per user, and one lock each).
func Repeated(users []uint64) (uint64, bool) {
	sorted := slices.Clone(users)
	slices.Sort(sorted)
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return sorted[i], true
		}
	}
	return 0, false
}

// CheckBatch is what every batch method about many users checks of its
// request: each user named once (one result and one lock each), and the
// routing user one of them, so that the request reached the instance the
// users' own calls reach (the caller grouped them with Group). Its error
// is InvalidArgument.
func CheckBatch(users []uint64, routing uint64) error {
	if u, ok := Repeated(users); ok {
		return svrkit.Errorf(svrkit.InvalidArgument, "user %d named twice", u)
	}
	if !slices.Contains(users, routing) {
		return svrkit.Errorf(svrkit.InvalidArgument, "routing user %d is not one of the %d users", routing, len(users))
	}
	return nil
}

// ForEach calls f(ctx, i) for i in [0, n), at most parallel at a time,
// and returns the first error; after one, the calls not started yet are
// not made and the running ones see ctx cancelled. It is how the IM
// services make one call per instance of a batch (parallel = the number
// of batches) or one call per member of a group (up to its 500) without
// one goroutine per member or one member at a time.
func ForEach(ctx context.Context, n, parallel int, f func(ctx context.Context, i int) error) error {
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= n || first != nil {
			return 0, false
		}
		next++
		return next - 1, true
	}
	for range min(max(parallel, 1), n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i, ok := take()
				if !ok {
					return
				}
				if err := f(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
