package delivery

import (
	"context"
	"testing"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/svrkit"
)

// accounts answers GetAccount for the users in exist and counts the calls.
type accounts struct {
	im.AccountDataClient
	exist map[uint64]bool
	calls int
}

func (a *accounts) GetAccount(_ context.Context, req *im.GetAccountRequest, _ ...svrkit.CallOption) (*im.AccountRecord, error) {
	a.calls++
	if !a.exist[req.GetUserId()] {
		return nil, svrkit.Errorf(svrkit.NotFound, "no user %d", req.GetUserId())
	}
	return &im.AccountRecord{UserId: req.GetUserId()}, nil
}

// TestReceiversRemembersOnlyYes: a receiver found once is not asked
// for again (accounts are never removed), a missing one is asked for
// every time (it may register meanwhile).
func TestReceiversRemembersOnlyYes(t *testing.T) {
	ctx := context.Background()
	a := &accounts{exist: map[uint64]bool{7: true}}
	r := NewReceivers(a)
	for range 3 {
		if err := r.Exists(ctx, 7); err != nil {
			t.Fatalf("Exists(7): %v", err)
		}
	}
	if a.calls != 1 {
		t.Errorf("3 sends to an existing user asked AccountData %d times, want 1", a.calls)
	}
	a.calls = 0
	for range 2 {
		if err := r.Exists(ctx, 8); svrkit.CodeOf(err) != svrkit.NotFound {
			t.Fatalf("Exists(8) = %v, want not_found", err)
		}
	}
	a.exist[8] = true
	if err := r.Exists(ctx, 8); err != nil {
		t.Fatalf("Exists(8) once registered: %v", err)
	}
	if a.calls != 3 {
		t.Errorf("AccountData asked %d times about a user not yet there, want 3", a.calls)
	}
}
