package session

import (
	"context"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/lru"
	"github.com/svrkit/svrkit/svrkit"
)

// RevocationTTL bounds how stale a Checker's view of an account's
// revocations may be: a revoked token is refused by every Checker at most
// this long after the revocation is stored. It is a constant, not a
// setting, so every Logicsvr of one build agrees on it and the account
// Logicsvr can wait it out before Logout answers.
const RevocationTTL = time.Second

// checkerCacheSize bounds the accounts a Checker remembers.
const checkerCacheSize = 100_000

// StateFunc fetches an account's session state (AccountData.GetSessionState);
// an error with code not_found means there is no such account.
type StateFunc func(ctx context.Context, user uint64) (*im.SessionState, error)

// Checker checks session tokens completely: the Signer's checks, then the
// account's revocations. It is safe for concurrent use.
type Checker struct {
	signer *Signer
	state  StateFunc
	cache  *lru.Cache[uint64, cachedState]
	now    func() time.Time
}

// cachedState is an account's session state as fetched, or nil for an
// account that does not exist, valid until expires.
type cachedState struct {
	st      *im.SessionState
	expires time.Time
}

// NewChecker returns a Checker of tokens signed by signer, asking state
// for an account's revocations at most once per RevocationTTL.
func NewChecker(signer *Signer, state StateFunc) *Checker {
	return &Checker{signer: signer, state: state, cache: lru.New[uint64, cachedState](checkerCacheSize, 0), now: time.Now}
}

// Signer returns the Checker's signer.
func (c *Checker) Signer() *Signer { return c.signer }

// Revoked reports whether st revokes the token with claims cl.
func Revoked(st *im.SessionState, cl Claims) bool {
	if cl.Counter < st.GetFloor() {
		return true
	}
	for _, d := range st.GetDevices() {
		if d.GetDeviceId() == cl.DeviceID {
			return cl.Counter < d.GetFloor()
		}
	}
	return false
}

// Caller returns the claims of the token the call in ctx came with if it is
// valid and not revoked: ErrMissing, ErrInvalid or ErrExpired as
// Signer.Caller, ErrRevoked, or unavailable when the account's revocations
// cannot be read now.
func (c *Checker) Caller(ctx context.Context) (Claims, error) {
	cl, err := c.signer.Caller(ctx)
	if err != nil {
		return Claims{}, err
	}
	return c.unrevoked(ctx, cl)
}

// Token checks token as Caller checks the one a call came with, for HTTP
// handlers that are not CGIs (a media download reads it from its
// Authorization header).
func (c *Checker) Token(ctx context.Context, token string) (Claims, error) {
	cl, err := c.signer.Verify(token)
	if err != nil {
		return Claims{}, err
	}
	return c.unrevoked(ctx, cl)
}

// Unrevoked checks claims already verified (the gateway's, whose link
// outlives a token check) against the account's revocations: nil,
// ErrInvalid for no such account, ErrRevoked, or unavailable.
func (c *Checker) Unrevoked(ctx context.Context, cl Claims) error {
	_, err := c.unrevoked(ctx, cl)
	return err
}

// unrevoked returns cl if its account exists and has not revoked it.
func (c *Checker) unrevoked(ctx context.Context, cl Claims) (Claims, error) {
	st, err := c.sessionState(ctx, cl.UserID)
	if err != nil {
		return Claims{}, err
	}
	if st == nil {
		// Signed by us for an account that does not exist: a creation
		// that never finished, or a forged token. Either way, no.
		return Claims{}, ErrInvalid
	}
	if Revoked(st, cl) {
		return Claims{}, ErrRevoked
	}
	return cl, nil
}

// sessionState returns user's session state, nil for no such account.
func (c *Checker) sessionState(ctx context.Context, user uint64) (*im.SessionState, error) {
	now := c.now()
	if e, ok := c.cache.Get(user); ok && now.Before(e.expires) {
		return e.st, nil
	}
	// The entry expires RevocationTTL after the fetch began, not after it
	// ended: a state read before a revocation is stored is gone from the
	// cache RevocationTTL after the revocation, however slow the answer.
	st, err := c.state(ctx, user)
	switch {
	case svrkit.CodeOf(err) == svrkit.NotFound:
		st = nil
	case err != nil:
		return nil, svrkit.NewError(svrkit.Unavailable, "cannot check the session now; retry")
	case st == nil:
		st = &im.SessionState{}
	}
	c.cache.Put(user, cachedState{st: st, expires: now.Add(RevocationTTL)})
	return st, nil
}

// Forget drops what the Checker knows of user's revocations, so its next
// check reads them again: the account Logicsvr calls it after it revoked
// sessions itself.
func (c *Checker) Forget(user uint64) { c.cache.Delete(user) }
