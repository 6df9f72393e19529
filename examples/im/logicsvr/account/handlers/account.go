// Package handlers implements the account Logicsvr (idl/im/account.proto):
// registration, login, logout, password changes and profiles. NewAccount is
// the constructor its generated main calls.
//
// Accounts live behind the AccountData service (idl/im/data.proto), which
// allocates user ids (at random: see its package doc for why), keeps names
// unique, keeps each account's session revocations and publishes profile
// changes to the user's sync inbox. This Logicsvr keeps no state but the
// login throttle's, in memory (see below), so any number of replicas can
// run and any can restart.
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
// a stranger can call without a token. So every hash (Register, Login,
// ChangePassword) waits for one of kdf_concurrency slots (default half the
// CPUs, at least one), so the other CGIs and the runtime's event loops
// always have a core; and the slots are shared fairly among clients
// (package examples/im/internal/throttle): round robin among client
// addresses, with at most source_concurrency attempts (default 8) of one
// address running or waiting; more are refused at once with
// resource_exhausted. One client hammering Login therefore has at most
// that many attempts hashing or waiting to, and a legitimate login waits
// for at most one hash per other busy client, not for the hammer's
// backlog. A call waiting for a slot gives up at its deadline.
//
// # Login throttling
//
// Failed logins are counted per client address (20 free, then a wait of
// 1s doubling up to 5 minutes) and per account name (5 free, then 1s
// doubling up to 15 minutes), both forgotten an hour after the last
// failure. A throttled attempt is refused with resource_exhausted before
// anything else happens: no storage read, no hash. Attempts in flight count
// as failures until they end, so a burst of parallel guesses gets no more
// than the free ones. Names are counted whether they exist or not, so
// throttling tells nothing about which exist; a name no account can have,
// or a password shorter than any account's, is a failure of the address
// without a hash.
//
// A refusal is held a quarter of a second before it is answered (at most
// 64 of one address's at once; throttle.Tarpit). Refusing costs
// microseconds, but a client hammering over many connections would get
// thousands of answers a second, and the HTTP work and the log line of
// each take the CPU that legitimate logins' hashes need; held, each of its
// connections sends four requests a second. So the IDL's max_concurrent of
// Register and Login is high (1024): held refusals sit in it, and the
// per-address bounds, not the method's, are what keep one client from
// filling it.
//
// Locking an account would let an attacker lock its owner out. Device
// cookies (session.DeviceCookie) prevent that: a successful login answers
// one, and an attempt that sends it back is throttled under the cookie
// alone (5 free failures, then the same backoff), queued with its
// account's other trusted attempts rather than behind its address's. So
// the owner's devices keep logging in while the account is under attack;
// what the attack blocks is a first login from a new device, from
// addresses that failed, until it stops.
//
// The client address is the HTTP peer (svrkit/cgi.PeerAddr; an IPv6
// address counts by its /64, one subscriber's allocation). Over binary RPC
// it is the address a trusted front forwards in the "im-client-addr"
// metadata, when the caller's service identity is in trusted_forwarders
// (a gateway); otherwise every RPC caller of one identity shares one
// budget. Behind an HTTP proxy every client would share the proxy's
// address: the account Logicsvr must face clients directly, or be called
// by a trusted front over RPC.
//
// Login answers an unknown name exactly as a wrong password — same code,
// same message, the same hashing work (against a dummy hash), the same
// throttling — so it cannot be used to find out which names exist. A
// password longer than 128 bytes is invalid_argument before any work; one
// shorter than 8, or a name no account can have, is a wrong login without
// a hash, since no account can match it.
//
// # Sessions
//
// Login issues a token (package
// github.com/svrkit/svrkit/examples/im/internal/session) valid for
// session_ttl, carrying the account's session counter; every other method
// takes the caller from it, after the session interceptor checked it was
// not revoked. Logout and ChangePassword revoke through AccountData, then
// wait session.RevocationTTL before answering, so that when they answer no
// Logicsvr accepts the ended tokens any more.
package handlers

import (
	"context"
	"errors"
	"runtime"
	"time"
	"unicode/utf8"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/examples/im/internal/throttle"
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
	// SourceConcurrency bounds the hashing calls (Register, Login) of one
	// client address running or waiting at once (default 8).
	SourceConcurrency int `json:"source_concurrency"`
	// TrustedForwarders are the service identities whose calls over RPC
	// name the client's address in the "im-client-addr" metadata (a
	// gateway's).
	TrustedForwarders []string `json:"trusted_forwarders"`
}

// Limits of account.proto.
const (
	minNameBytes      = 3
	maxNameBytes      = 32
	minPasswordBytes  = 8
	maxPasswordBytes  = 128
	maxNicknameBytes  = 64
	defaultDeviceID   = "default"
	defaultSessionTTL = session.DefaultTTL
	defaultSourceConc = 8
	// trustedConcurrency bounds one account's trusted (device cookie)
	// logins running or waiting at once.
	trustedConcurrency = 4
	// throttleKeys bounds the keys the login throttle remembers.
	throttleKeys = 200_000
)

// NewAccount returns the Account handler. It needs im.AccountData in the
// routing table and session_secret in the app config.
func NewAccount(h *logicsvr.Host) (im.AccountServer, error) {
	cfg := Config{
		SessionTTL:        logicsvr.Duration(defaultSessionTTL),
		KDFConcurrency:    max(1, runtime.GOMAXPROCS(0)/2),
		SourceConcurrency: defaultSourceConc,
	}
	if err := h.AppConfig(&cfg); err != nil {
		return nil, err
	}
	if cfg.SessionTTL <= 0 || cfg.KDFConcurrency < 1 || cfg.SourceConcurrency < 1 {
		return nil, errors.New("app config: session_ttl, kdf_concurrency and source_concurrency must be positive")
	}
	signer, err := session.ForHost(h, cfg.SessionSecret, time.Duration(cfg.SessionTTL))
	if err != nil {
		return nil, err
	}
	inv, err := h.Client(im.AccountData_ServiceName)
	if err != nil {
		return nil, err
	}
	data := im.NewAccountDataClient(inv)
	s := &accountServer{
		data:       data,
		signer:     signer,
		sessions:   session.NewChecker(signer, session.StateFromAccountData(data)),
		ttl:        time.Duration(cfg.SessionTTL),
		kdf:        throttle.NewFair(cfg.KDFConcurrency),
		sourceConc: cfg.SourceConcurrency,
		failures:   throttle.NewBackoff(throttleKeys),
		tarpit:     throttle.NewTarpit(tarpitHold, tarpitPerSource),
		forwarders: cfg.TrustedForwarders,
	}
	// Register and Login are how a client gets a token; every other CGI
	// wants one.
	h.Use(s.sessions.Require(im.Account_ServiceName, im.Account_Register_FullMethodName, im.Account_Login_FullMethodName))
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
	data       im.AccountDataClient
	signer     *session.Signer
	sessions   *session.Checker
	ttl        time.Duration
	kdf        *throttle.Fair // the hashing slots, shared fairly among clients
	sourceConc int
	failures   *throttle.Backoff // failed logins and password checks
	tarpit     *throttle.Tarpit  // where refused logins wait
	forwarders []string
	dummyHash  string
}

// Answers of the hashing slots.
var (
	errBusySource = svrkit.NewError(svrkit.ResourceExhausted, "too many logins from your address at once; retry in a moment")
	errKDFTimeout = svrkit.NewError(svrkit.Unavailable, "too many logins at once; retry")
)

// withKDF runs f holding a hashing slot of queue (a client address, or an
// account's trusted devices), at most limit of queue's at once, or gives
// up when ctx ends.
func (s *accountServer) withKDF(ctx context.Context, queue string, limit int, f func()) error {
	release, err := s.kdf.Acquire(ctx, queue, limit)
	switch {
	case errors.Is(err, throttle.ErrBusy):
		return errBusySource
	case err != nil:
		return errKDFTimeout
	}
	defer release()
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
	source := s.source(ctx)
	var hash string
	var herr error
	if err := s.withKDF(ctx, sourceQueue(source), s.sourceConc, func() { hash, herr = hashPassword(req.GetPassword()) }); err != nil {
		if err == errBusySource {
			return nil, s.refuse(ctx, source, 0, err)
		}
		return nil, err
	}
	if herr != nil {
		return nil, svrkit.Errorf(svrkit.Internal, "hashing password: %v", herr)
	}
	rec, err := s.data.CreateAccount(ctx, &im.CreateAccountRequest{Name: req.GetName(), Nickname: nick, PasswordHash: hash})
	if svrkit.CodeOf(err) == svrkit.AlreadyExists {
		id, terr := s.sameRegistration(ctx, source, req)
		if terr != nil {
			return nil, terr
		}
		if id != 0 {
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

// sameRegistration returns the user id of the account holding req's name
// if this same registration made it (0 otherwise): a client that got no
// answer (a timeout, a restart) registers again with the same name and
// password, and gets its user id instead of already_exists for its own
// account. Only someone who knows the password learns the id, as Login
// would tell them. That makes it a password check, so it is throttled and
// counted as a login is (an error when throttled): otherwise Register would
// be a way around Login's throttle.
func (s *accountServer) sameRegistration(ctx context.Context, source string, req *im.RegisterRequest) (uint64, error) {
	att, wait := s.failures.Admit(untrustedKeys(source, req.GetName())...)
	if att == nil {
		return 0, s.refuse(ctx, source, wait, throttled(wait))
	}
	defer att.Abandon()
	rec, err := s.data.LookupAccount(ctx, &im.LookupAccountRequest{Name: req.GetName()})
	if err != nil {
		return 0, nil
	}
	var ok bool
	var verr error
	if err := s.withKDF(ctx, sourceQueue(source), s.sourceConc, func() { ok, verr = checkPassword(rec.GetPasswordHash(), req.GetPassword()) }); err != nil || verr != nil {
		return 0, nil
	}
	if !ok {
		att.Fail()
		return 0, nil
	}
	att.Succeed()
	return rec.GetUserId(), nil
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
