package handlers

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/examples/im/internal/throttle"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/cgi"
	"github.com/svrkit/svrkit/svrkit/monitor"
)

// ClientAddrKey is the metadata key in which a trusted front (a gateway,
// in Config.TrustedForwarders) names the client's address ("ip" or
// "ip:port") when it calls Login over binary RPC on the client's behalf.
const ClientAddrKey = "im-client-addr"

// The login throttle's policies (see the package doc).
var (
	sourcePolicy  = &throttle.Policy{Free: 20, Base: time.Second, Max: 5 * time.Minute, Forget: time.Hour}
	accountPolicy = &throttle.Policy{Free: 5, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour, ResetOnSuccess: true}
	cookiePolicy  = &throttle.Policy{Free: 5, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour, ResetOnSuccess: true}
)

var errLogin = svrkit.NewError(svrkit.Unauthenticated, "wrong name or password")

// throttled is the answer to an attempt the throttle refused.
func throttled(wait time.Duration) error {
	secs := int64((wait + time.Second - 1) / time.Second)
	return svrkit.Errorf(svrkit.ResourceExhausted, "too many failed logins; try again in %d s", max(secs, 1))
}

// tarpitHold is how long a refused login is held before it is answered, and
// tarpitPerSource how many of one client's are held at once (see
// throttle.Tarpit).
const (
	tarpitHold      = 250 * time.Millisecond
	tarpitPerSource = 64
)

// refuse returns err, the answer to a refused attempt of source, after
// holding it in the tarpit (for at most wait, when positive).
func (s *accountServer) refuse(ctx context.Context, source string, wait time.Duration, err error) error {
	s.tarpit.Hold(ctx, source, wait)
	return err
}

// source names the client of the call in ctx for throttling: its address
// as the HTTP front saw it, or as a trusted forwarder says over RPC; else
// the RPC caller's identity.
func (s *accountServer) source(ctx context.Context) string {
	if a, ok := cgi.PeerAddr(ctx); ok {
		return addrKey(a)
	}
	id := svrkit.CallerIdentity(ctx)
	if id != "" && slices.Contains(s.forwarders, id) {
		if a := svrkit.IncomingMetadata(ctx)[ClientAddrKey]; a != "" {
			return addrKey(a)
		}
	}
	return "rpc:" + id
}

// addrKey is the throttling key of a client address: an IPv4 address, or
// the /64 of an IPv6 one (a subscriber gets a whole /64, so counting single
// addresses would give one client 2^64 budgets).
func addrKey(a string) string {
	host := a
	if h, _, err := net.SplitHostPort(a); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "addr:" + host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

func sourceQueue(source string) string { return "src:" + source }

// untrustedKeys are what an attempt without a device cookie is throttled
// under: its client address and its account name.
func untrustedKeys(source, name string) []throttle.Key {
	return []throttle.Key{{Name: "src:" + source, Policy: sourcePolicy}, {Name: "acct:" + name, Policy: accountPolicy}}
}

func (s *accountServer) Login(ctx context.Context, req *im.LoginRequest) (*im.LoginReply, error) {
	device := req.GetDeviceId()
	if device == "" {
		device = defaultDeviceID
	}
	if len(device) > session.MaxDeviceIDBytes {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "device_id must be 1 to %d bytes", session.MaxDeviceIDBytes)
	}
	name, password := req.GetName(), req.GetPassword()
	if len(password) > maxPasswordBytes {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "password must be at most %d bytes", maxPasswordBytes)
	}
	source := s.source(ctx)
	if !validName(name) || len(password) < minPasswordBytes {
		// No account has such a name or password: a wrong login without a
		// hash (both facts are public, so answering fast tells nothing),
		// counted against the client address like any other.
		att, wait := s.failures.Admit(throttle.Key{Name: "src:" + source, Policy: sourcePolicy})
		if att == nil {
			return nil, s.refuse(ctx, source, wait, throttled(wait))
		}
		att.Fail()
		monitor.Add(im.Monitor_LOGIN_FAILURES_ID, 1)
		return nil, errLogin
	}

	// A device that logged in to this account before is throttled on its
	// own; anyone else under the client address and the account.
	keys, queue, limit := untrustedKeys(source, name), sourceQueue(source), s.sourceConc
	if ck, ok := s.signer.VerifyDeviceCookie(req.GetDeviceCookie(), name); ok {
		keys = []throttle.Key{{Name: "cookie:" + strconv.FormatUint(ck.ID, 16), Policy: cookiePolicy}}
		queue, limit = "trusted:"+name, trustedConcurrency
	}
	att, wait := s.failures.Admit(keys...)
	if att == nil {
		return nil, s.refuse(ctx, source, wait, throttled(wait))
	}
	defer att.Abandon() // unless the password was checked

	hash := s.dummyHash
	var rec *im.AccountRecord
	r, err := s.data.LookupAccount(ctx, &im.LookupAccountRequest{Name: name})
	switch {
	case err == nil:
		rec, hash = r, r.GetPasswordHash()
	case svrkit.CodeOf(err) != svrkit.NotFound:
		return nil, err
	}
	var ok bool
	var verr error
	if err := s.withKDF(ctx, queue, limit, func() { ok, verr = checkPassword(hash, password) }); err != nil {
		if err == errBusySource {
			return nil, s.refuse(ctx, source, 0, err)
		}
		return nil, err
	}
	if verr != nil {
		logicsvr.Logger(ctx).Error("stored password hash unreadable", "user", rec.GetUserId(), "err", verr)
		return nil, svrkit.NewError(svrkit.Internal, "account damaged; contact support")
	}
	if rec == nil || !ok {
		att.Fail()
		monitor.Add(im.Monitor_LOGIN_FAILURES_ID, 1)
		return nil, errLogin
	}
	att.Succeed()
	return s.issue(rec, name, device)
}

// issue opens a session of rec's user on device, with a fresh device
// cookie.
func (s *accountServer) issue(rec *im.AccountRecord, name, device string) (*im.LoginReply, error) {
	tok, c, err := s.signer.Issue(rec.GetUserId(), device, rec.GetSessions().GetCounter(), s.ttl)
	if err != nil {
		return nil, svrkit.Errorf(svrkit.Internal, "issuing token: %v", err)
	}
	monitor.Add(im.Monitor_LOGINS_ID, 1)
	return &im.LoginReply{
		UserId:       c.UserID,
		Token:        tok,
		ExpiresUnix:  c.Expires.Unix(),
		DeviceCookie: s.signer.IssueDeviceCookie(rec.GetUserId(), name),
	}, nil
}
