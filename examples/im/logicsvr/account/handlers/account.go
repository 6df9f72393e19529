// Package handlers implements the account Logicsvr (idl/im/account.proto):
// registration, login and profiles. NewAccount is the constructor its
// generated main calls.
//
// Accounts live behind the AccountData service (idl/im/data.proto), which
// allocates user ids, keeps names unique and publishes profile changes to
// the user's sync inbox; this Logicsvr keeps no state of its own, so any
// number of replicas can run and any can restart.
//
// # Passwords
//
// Only an argon2id hash of a password is stored, as a PHC string
// ($argon2id$v=19$m=19456,t=2,p=1$salt$hash). New hashes use OWASP's
// minimum for argon2id — 19 MiB, 2 passes, 1 lane: tens of milliseconds of
// a core by design (BenchmarkHashPassword measures it) — and a login
// verifies with the parameters stored in the hash, so they can be raised
// without resetting anyone's password.
//
// A hash is deliberately expensive, and Register and Login are the two CGIs
// a stranger can call without a token. Two bounds keep them from starving
// the process: the IDL's max_concurrent (32 each) refuses calls over it at
// once with resource_exhausted, and inside that a semaphore lets only
// kdf_concurrency hashes run at a time (default half the CPUs, at least
// one), so the other CGIs and the runtime's event loops always have a core.
// A call waiting for the semaphore gives up at its deadline.
//
// Login answers an unknown name exactly as a wrong password — same code,
// same message, and the same hashing work (against a dummy hash) — so it
// cannot be used to find out which names exist.
//
// # Sessions
//
// Login issues a stateless token (package
// github.com/svrkit/svrkit/examples/im/internal/session) valid for
// session_ttl; GetProfile and SetProfile take the caller from it.
package handlers

import (
	"context"
	"errors"
	"runtime"
	"time"
	"unicode/utf8"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor"
)

// Config is the account Logicsvr's "app" config object.
type Config struct {
	// SessionSecret keys session tokens; every client-facing Logicsvr
	// needs the same one.
	SessionSecret string `json:"session_secret"`
	// SessionTTL is how long a login lasts (default 24h).
	SessionTTL logicsvr.Duration `json:"session_ttl"`
	// KDFConcurrency bounds the password hashes computed at once (default
	// GOMAXPROCS/2, at least 1).
	KDFConcurrency int `json:"kdf_concurrency"`
}

// Limits of account.proto.
const (
	minNameBytes      = 3
	maxNameBytes      = 32
	minPasswordBytes  = 8
	maxPasswordBytes  = 128
	maxNicknameBytes  = 64
	defaultDeviceID   = "default"
	defaultSessionTTL = 24 * time.Hour
)

var errLogin = svrkit.NewError(svrkit.Unauthenticated, "wrong name or password")

// NewAccount returns the Account handler. It needs im.AccountData in the
// routing table and session_secret in the app config.
func NewAccount(h *logicsvr.Host) (im.AccountServer, error) {
	cfg := Config{SessionTTL: logicsvr.Duration(defaultSessionTTL), KDFConcurrency: max(1, runtime.GOMAXPROCS(0)/2)}
	if err := h.AppConfig(&cfg); err != nil {
		return nil, err
	}
	signer, err := session.ForHost(h, cfg.SessionSecret)
	if err != nil {
		return nil, err
	}
	if cfg.SessionTTL <= 0 || cfg.KDFConcurrency < 1 {
		return nil, errors.New("app config: session_ttl and kdf_concurrency must be positive")
	}
	inv, err := h.Client(im.AccountData_ServiceName)
	if err != nil {
		return nil, err
	}
	s := &accountServer{
		data:   im.NewAccountDataClient(inv),
		signer: signer,
		ttl:    time.Duration(cfg.SessionTTL),
		kdf:    make(chan struct{}, cfg.KDFConcurrency),
	}
	// Register and Login are how a client gets a token; every other CGI
	// wants one.
	h.Use(signer.Require(im.Account_ServiceName, im.Account_Register_FullMethodName, im.Account_Login_FullMethodName))
	if !h.InfoOnly() {
		// The hash Login checks unknown names against, so they cost what
		// a wrong password costs.
		if s.dummyHash, err = hashPassword("no such user"); err != nil {
			return nil, err
		}
	}
	return s, nil
}

type accountServer struct {
	im.UnimplementedAccountServer
	data      im.AccountDataClient
	signer    *session.Signer
	ttl       time.Duration
	kdf       chan struct{} // semaphore of password hashes
	dummyHash string
}

// withKDF runs f holding a hashing slot, or gives up when ctx ends.
func (s *accountServer) withKDF(ctx context.Context, f func()) error {
	select {
	case s.kdf <- struct{}{}:
	case <-ctx.Done():
		return svrkit.NewError(svrkit.Unavailable, "too many logins at once; retry")
	}
	defer func() { <-s.kdf }()
	f()
	return nil
}

func validName(name string) bool {
	if len(name) < minNameBytes || len(name) > maxNameBytes {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

func checkNickname(nick string) error {
	if nick == "" || len(nick) > maxNicknameBytes || !utf8.ValidString(nick) {
		return svrkit.Errorf(svrkit.InvalidArgument, "nickname must be 1 to %d bytes of UTF-8", maxNicknameBytes)
	}
	return nil
}

func (s *accountServer) Register(ctx context.Context, req *im.RegisterRequest) (*im.RegisterReply, error) {
	if !validName(req.GetName()) {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "name must be %d to %d characters of a-z, 0-9, '_', '.', '-'", minNameBytes, maxNameBytes)
	}
	if n := len(req.GetPassword()); n < minPasswordBytes || n > maxPasswordBytes {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "password must be %d to %d bytes", minPasswordBytes, maxPasswordBytes)
	}
	nick := req.GetNickname()
	if nick == "" {
		nick = req.GetName()
	}
	if err := checkNickname(nick); err != nil {
		return nil, err
	}
	var hash string
	var herr error
	if err := s.withKDF(ctx, func() { hash, herr = hashPassword(req.GetPassword()) }); err != nil {
		return nil, err
	}
	if herr != nil {
		return nil, svrkit.Errorf(svrkit.Internal, "hashing password: %v", herr)
	}
	rec, err := s.data.CreateAccount(ctx, &im.CreateAccountRequest{Name: req.GetName(), Nickname: nick, PasswordHash: hash})
	if svrkit.CodeOf(err) == svrkit.AlreadyExists {
		if id, ok := s.sameRegistration(ctx, req); ok {
			logicsvr.Logger(ctx).Info("register repeated", "user", id, "name", req.GetName())
			return &im.RegisterReply{UserId: id}, nil
		}
	}
	if err != nil {
		return nil, err
	}
	logicsvr.Logger(ctx).Info("registered", "user", rec.GetUserId(), "name", req.GetName())
	monitor.Add(im.Monitor_REGISTRATIONS_ID, 1)
	return &im.RegisterReply{UserId: rec.GetUserId()}, nil
}

// sameRegistration reports whether the account holding req's name was made
// by this same registration: a client that got no answer (a timeout, a
// restart) registers again with the same name and password, and gets its
// user id instead of already_exists for its own account. Only someone who
// knows the password learns the id, as Login would tell them.
func (s *accountServer) sameRegistration(ctx context.Context, req *im.RegisterRequest) (uint64, bool) {
	rec, err := s.data.LookupAccount(ctx, &im.LookupAccountRequest{Name: req.GetName()})
	if err != nil {
		return 0, false
	}
	var ok bool
	var verr error
	if err := s.withKDF(ctx, func() { ok, verr = checkPassword(rec.GetPasswordHash(), req.GetPassword()) }); err != nil || verr != nil || !ok {
		return 0, false
	}
	return rec.GetUserId(), true
}

func (s *accountServer) Login(ctx context.Context, req *im.LoginRequest) (*im.LoginReply, error) {
	device := req.GetDeviceId()
	if device == "" {
		device = defaultDeviceID
	}
	if len(device) > session.MaxDeviceIDBytes {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "device_id must be 1 to %d bytes", session.MaxDeviceIDBytes)
	}
	hash := s.dummyHash
	var rec *im.AccountRecord
	if validName(req.GetName()) {
		r, err := s.data.LookupAccount(ctx, &im.LookupAccountRequest{Name: req.GetName()})
		switch {
		case err == nil:
			rec, hash = r, r.GetPasswordHash()
		case svrkit.CodeOf(err) != svrkit.NotFound:
			return nil, err
		}
	}
	var ok bool
	var verr error
	if err := s.withKDF(ctx, func() { ok, verr = checkPassword(hash, req.GetPassword()) }); err != nil {
		return nil, err
	}
	if verr != nil {
		logicsvr.Logger(ctx).Error("stored password hash unreadable", "user", rec.GetUserId(), "err", verr)
		return nil, svrkit.NewError(svrkit.Internal, "account damaged; contact support")
	}
	if rec == nil || !ok {
		monitor.Add(im.Monitor_LOGIN_FAILURES_ID, 1)
		return nil, errLogin
	}
	tok, c, err := s.signer.Issue(rec.GetUserId(), device, s.ttl)
	if err != nil {
		return nil, svrkit.Errorf(svrkit.Internal, "issuing token: %v", err)
	}
	monitor.Add(im.Monitor_LOGINS_ID, 1)
	return &im.LoginReply{UserId: c.UserID, Token: tok, ExpiresUnix: c.Expires.Unix()}, nil
}

func (s *accountServer) GetProfile(ctx context.Context, req *im.GetProfileRequest) (*im.Profile, error) {
	caller := session.From(ctx)
	id := req.GetUserId()
	if id == 0 {
		id = caller.UserID
	}
	rec, err := s.data.GetAccount(ctx, &im.GetAccountRequest{UserId: id})
	if err != nil {
		if svrkit.CodeOf(err) == svrkit.NotFound {
			return nil, svrkit.Errorf(svrkit.NotFound, "no user %d", id)
		}
		return nil, err
	}
	return publicProfile(rec), nil
}

// publicProfile is the profile of rec, and nothing else of it (never the
// password hash).
func publicProfile(rec *im.AccountRecord) *im.Profile {
	p := rec.GetProfile()
	return &im.Profile{UserId: rec.GetUserId(), Name: p.GetName(), Nickname: p.GetNickname(), RegisteredUnix: p.GetRegisteredUnix()}
}

func (s *accountServer) SetProfile(ctx context.Context, req *im.SetProfileRequest) (*im.Profile, error) {
	caller := session.From(ctx)
	if err := checkNickname(req.GetNickname()); err != nil {
		return nil, err
	}
	rec, err := s.data.UpdateProfile(ctx, &im.UpdateProfileRequest{UserId: caller.UserID, Nickname: req.GetNickname()})
	if err != nil {
		return nil, err
	}
	return publicProfile(rec), nil
}
