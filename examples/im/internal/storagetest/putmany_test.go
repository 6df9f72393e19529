package storagetest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/shard"
	storage "github.com/svrkit/svrkit/examples/im/logicsvr/storage/handlers"
	"github.com/svrkit/svrkit/svrkit"
)

// PutMany writes one key per user in one atomic batch: each put
// compare-and-set as Put, all or nothing.
func TestPutMany(t *testing.T) {
	c := start(t)
	ctx, st := ctxT(t), c.Storage(t)
	key := []byte("groups")
	put := func(user uint64, val string, expect uint64) *im.KVPutRequest {
		return &im.KVPutRequest{UserId: user, Key: key, Value: []byte(val), ExpectVersion: expect}
	}
	v8 := must(st.Put(ctx, put(8, "eight", 0))).GetVersion()
	r := must(st.PutMany(ctx, &im.KVPutManyRequest{UserId: 7, Puts: []*im.KVPutRequest{put(7, "a7", 0), put(8, "a8", v8), put(9, "a9", 0)}}))
	vs := r.GetVersions()
	if len(vs) != 3 || vs[1] <= v8 {
		t.Fatalf("versions %v (user 8 was at %d)", vs, v8)
	}
	for i, u := range []uint64{7, 8, 9} {
		got := must(st.Get(ctx, &im.KVGetRequest{UserId: u, Key: key}))
		if string(got.GetValue()) != "a"+string('7'+rune(i)) || got.GetVersion() != vs[i] {
			t.Fatalf("user %d: %q at %d, answered %d", u, got.GetValue(), got.GetVersion(), vs[i])
		}
	}
	// One stale version: aborted, naming it, and nothing written.
	_, err := st.PutMany(ctx, &im.KVPutManyRequest{UserId: 7, Puts: []*im.KVPutRequest{put(7, "b7", vs[0]), put(8, "b8", v8), put(10, "b10", 0)}})
	wantCode(t, "a stale version", err, svrkit.Aborted)
	if !strings.Contains(err.Error(), "user 8") {
		t.Errorf("the conflict does not name user 8: %v", err)
	}
	if got := must(st.Get(ctx, &im.KVGetRequest{UserId: 7, Key: key})); string(got.GetValue()) != "a7" || got.GetVersion() != vs[0] {
		t.Fatalf("an aborted PutMany wrote user 7: %q at %d", got.GetValue(), got.GetVersion())
	}
	_, err = st.Get(ctx, &im.KVGetRequest{UserId: 10, Key: key})
	wantCode(t, "user 10 after an aborted PutMany", err, svrkit.NotFound)
	// any_version skips the check, as Put's.
	must(st.PutMany(ctx, &im.KVPutManyRequest{UserId: 8, Puts: []*im.KVPutRequest{{UserId: 8, Key: key, Value: []byte("c8"), AnyVersion: true}}}))
}

// Bad PutMany requests get invalid_argument and write nothing.
func TestPutManyLimits(t *testing.T) {
	c := start(t)
	ctx, st := ctxT(t), c.Storage(t)
	key := []byte("k")
	puts := func(n, size int) []*im.KVPutRequest {
		out := make([]*im.KVPutRequest, n)
		for i := range out {
			out[i] = &im.KVPutRequest{UserId: uint64(100 + i), Key: key, Value: bytes.Repeat([]byte("x"), size)}
		}
		return out
	}
	for _, tc := range []struct {
		name, says string
		req        *im.KVPutManyRequest
	}{
		{"no puts", "put of 0 users outside [1, 500]", &im.KVPutManyRequest{UserId: 100}},
		{"501 puts", "put of 501 users outside [1, 500]", &im.KVPutManyRequest{UserId: 100, Puts: puts(501, 1)}},
		{"over 3 MiB", "over the limit of 3145728", &im.KVPutManyRequest{UserId: 100, Puts: puts(4, 800<<10)}},
		{"over 1 MiB", "put 0: value of 1048577 bytes", &im.KVPutManyRequest{UserId: 100, Puts: puts(1, 1<<20+1)}},
		{"a user twice", "user 100 named twice", &im.KVPutManyRequest{UserId: 100, Puts: append(puts(2, 1), puts(1, 1)...)}},
		{"no key", "put 0: key of 0 bytes", &im.KVPutManyRequest{UserId: 100, Puts: []*im.KVPutRequest{{UserId: 100}}}},
		{"routing user not among them", "routing user 1 is not one of the 3 users", &im.KVPutManyRequest{UserId: 1, Puts: puts(3, 1)}},
	} {
		_, err := st.PutMany(ctx, tc.req)
		wantCode(t, tc.name, err, svrkit.InvalidArgument)
		if !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v does not say %q", tc.name, err, tc.says)
		}
	}
	for _, u := range []uint64{100, 101, 102} {
		_, err := st.Get(ctx, &im.KVGetRequest{UserId: u, Key: key})
		wantCode(t, "after refused puts", err, svrkit.NotFound)
	}
	// The limits themselves pass.
	must(st.PutMany(ctx, &im.KVPutManyRequest{UserId: 100, Puts: puts(500, 8)}))
	must(st.PutMany(ctx, &im.KVPutManyRequest{UserId: 1000, Puts: []*im.KVPutRequest{
		{UserId: 1000, Key: key, Value: make([]byte, 1<<20)}, {UserId: 1001, Key: key, Value: make([]byte, 1<<20)},
		{UserId: 1002, Key: key, Value: make([]byte, 1<<20-3)}}}))
}

// shard's copy of PutMany's byte limit is storage's.
func TestPutLimitMatchesStorage(t *testing.T) {
	if shard.MaxPutBytes != storage.MaxPutManyBytes || shard.MaxBatchUsers != storage.MaxPutManyUsers {
		t.Fatalf("shard: %d bytes, %d users; storage: %d, %d", shard.MaxPutBytes, shard.MaxBatchUsers, storage.MaxPutManyBytes, storage.MaxPutManyUsers)
	}
}
