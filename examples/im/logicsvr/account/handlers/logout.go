package handlers

import (
	"context"
	"strconv"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/examples/im/internal/throttle"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

// passwordPolicy throttles ChangePassword's checks of the current password,
// per user: a stolen token must not be a way to guess the password.
var passwordPolicy = accountPolicy

// passwordConcurrency bounds one user's password changes hashing or
// waiting to at once.
const passwordConcurrency = 2

func (s *accountServer) Logout(ctx context.Context, req *im.LogoutRequest) (*im.LogoutReply, error) {
	caller := session.From(ctx)
	device := caller.DeviceID
	if req.GetAllDevices() {
		device = ""
	}
	if _, err := s.revoke(ctx, &im.RevokeSessionsRequest{UserId: caller.UserID, DeviceId: device}); err != nil {
		return nil, err
	}
	logicsvr.Logger(ctx).Info("logged out", "user", caller.UserID, "device", caller.DeviceID, "all_devices", req.GetAllDevices())
	return &im.LogoutReply{}, nil
}

func (s *accountServer) ChangePassword(ctx context.Context, req *im.ChangePasswordRequest) (*im.LoginReply, error) {
	caller := session.From(ctx)
	if len(req.GetPassword()) > maxPasswordBytes {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "password must be at most %d bytes", maxPasswordBytes)
	}
	if n := len(req.GetNewPassword()); n < minPasswordBytes || n > maxPasswordBytes {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "new_password must be %d to %d bytes", minPasswordBytes, maxPasswordBytes)
	}
	user := strconv.FormatUint(caller.UserID, 10)
	att, wait := s.failures.Admit(throttle.Key{Name: "passwd:" + user, Policy: passwordPolicy})
	if att == nil {
		return nil, s.refuse(ctx, "user:"+user, wait,
			svrkit.Errorf(svrkit.ResourceExhausted, "too many wrong passwords; try again in %d s", int64(max(wait, time.Second)/time.Second)))
	}
	defer att.Abandon()
	rec, err := s.data.GetAccount(ctx, &im.GetAccountRequest{UserId: caller.UserID})
	if err != nil {
		return nil, err
	}
	queue := "user:" + user
	var ok bool
	var verr error
	if err := s.withKDF(ctx, queue, passwordConcurrency, func() { ok, verr = checkPassword(rec.GetPasswordHash(), req.GetPassword()) }); err != nil {
		return nil, err
	}
	if verr != nil {
		logicsvr.Logger(ctx).Error("stored password hash unreadable", "user", caller.UserID, "err", verr)
		return nil, svrkit.NewError(svrkit.Internal, "account damaged; contact support")
	}
	if !ok {
		att.Fail()
		return nil, svrkit.NewError(svrkit.Unauthenticated, "wrong password")
	}
	att.Succeed()
	var hash string
	var herr error
	if err := s.withKDF(ctx, queue, passwordConcurrency, func() { hash, herr = hashPassword(req.GetNewPassword()) }); err != nil {
		return nil, err
	}
	if herr != nil {
		return nil, svrkit.Errorf(svrkit.Internal, "hashing password: %v", herr)
	}
	next, err := s.revoke(ctx, &im.RevokeSessionsRequest{
		UserId: caller.UserID, NewPasswordHash: hash, ExpectPasswordHash: rec.GetPasswordHash(),
	})
	if err != nil {
		return nil, err
	}
	logicsvr.Logger(ctx).Info("password changed; every session ended", "user", caller.UserID)
	return s.issue(next, next.GetProfile().GetName(), caller.DeviceID)
}

// revoke stores the revocation req describes and returns the new record
// once every Logicsvr refuses the tokens it ended: after
// session.RevocationTTL, the bound on how long their checkers may still
// hold the state from before.
func (s *accountServer) revoke(ctx context.Context, req *im.RevokeSessionsRequest) (*im.AccountRecord, error) {
	// A device's floor can go once every token issued before it has
	// expired.
	req.ExpiredBeforeUnix = time.Now().Add(-s.ttl - time.Minute).Unix()
	rec, err := s.data.RevokeSessions(ctx, req)
	if err != nil {
		return nil, err
	}
	s.sessions.Forget(req.GetUserId())
	t := time.NewTimer(session.RevocationTTL)
	defer t.Stop()
	select {
	case <-t.C:
		return rec, nil
	case <-ctx.Done():
		// Stored, but not yet refused everywhere: say so by failing.
		return nil, svrkit.AsError(ctx.Err())
	}
}
