// Package imclient is a Go client of the IM backend's client-facing CGIs:
// the account, contact, send, sync, sendmedia and group Logicsvrs (idl/im). imcli, the load
// command and the scenario tests use it; it is also the reference for what a
// mobile client does.
//
// # Transport
//
// Each call is one HTTP POST to the Logicsvr's Connect route
// (/im.Send/SendText and so on; the same handler as its CGI path) with a
// binary protobuf body (Content-Type application/proto), through
// svrkit/cgi.Client over keep-alive connections. Binary protobuf rather than
// JSON because voice clips are bytes and the load command should measure the
// backend, not JSON encoding; curl users can still post JSON to the same
// routes.
//
// After Login, Connect opens the long link to the gateway (link.go; the
// protocol is package examples/im/link): every later call goes over it,
// pushes arrive on it, and Notifies (or the Watch loop) says when to sync,
// so a device learns of a message when it is stored instead of polling.
// The link reconnects by itself after a break, with backoff, and signals
// a sync when it is back.
//
// # Sessions and SyncKeys
//
// Login keeps the session token in the Client and every later call sends it
// as "Authorization: Bearer <token>", until Logout. Login also keeps the
// device cookie the server answers and sends it back on the device's next
// login to the same account: the server then throttles that login on its
// own, so someone guessing the account's password does not lock this
// device out. Sync keeps the device's SyncKey in the
// Client and advances it with every answer. Both live only in memory:
// Session/SetSession and SyncKey/SetSyncKey let a caller persist them (imcli
// keeps them in a state file) — a device should store a new SyncKey only
// together with the items that came with it.
//
// # Sends are exactly once
//
// SendText and SendVoice carry a client_msg_id (made up when the caller
// passes ""). When an attempt fails in a way that leaves it unknown whether
// the message was stored — unavailable (a Logicsvr restarting, a refused or
// broken connection), deadline_exceeded, resource_exhausted — the send is
// retried with the same client_msg_id, with backoff, until it is answered or
// ctx ends. The server stores a message once per (sender, client_msg_id), so
// a send that returns nil is durable and stored exactly once; one that
// returns an error may or may not have been stored, and retrying it with the
// same id later is safe.
//
// # Groups and client versions
//
// A Client speaks the current client API, version 2 (sync.proto, "Client
// versions"): its syncs carry client_version 2 and return GROUPS items and
// group messages as they are. WithClientVersion(1) makes it a client from
// before groups, for tests of how the server serves those: group messages
// then come as one-to-one messages from the group's id. The group calls
// (CreateGroup, InviteMembers, ..., SendGroupText) work whatever the
// version; CreateGroup and the group sends are retried like SendText.
//
// # Media
//
// Upload sends a file in chunks (1 MiB by default), each retried like a
// send, and resumes an upload it is given the id of: it asks the server
// which ranges it has and sends the rest. SendImage and SendVideo then send
// the media id. Download is a plain HTTP GET with the session token, and a
// Range request from an offset, so an interrupted download resumes too.
//
// # Errors
//
// Every error is a *svrkit.Error (match with errors.As or svrkit.CodeOf):
// the server's code and message (unauthenticated, invalid_argument,
// not_found, ...), or unavailable/deadline_exceeded/canceled for transport
// failures. Calls that need a session fail with unauthenticated "not logged
// in" before sending anything when there is none.
//
// A Client is safe for concurrent use, but one Client is one device: its
// SyncKey is one cursor, so concurrent Syncs on one Client make no sense.
package imclient

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/examples/im/link"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/cgi"
	"github.com/svrkit/svrkit/tools/svrkit/upstate"
)

// Addrs are the base URLs ("http://127.0.0.1:8080") of the client-facing
// Logicsvrs, where a bare "host:port" gets "http://" prepended, and the
// gateway's long-link address ("host:port"; empty when the backend has
// none), where Connect goes. Media is optional: without it, the media
// calls fail with unavailable. Group may be empty for a backend without
// groups; the group calls then fail.
type Addrs struct {
	Account, Contact, Send, Sync string
	Media                        string
	Group                        string
	Link                         string
}

// Session is a login: whose, on which device, with which token, and the
// device cookie for the next login (kept after Logout, which clears only
// the token).
type Session struct {
	UserID       uint64 `json:"user_id"`
	Name         string `json:"name,omitempty"`
	DeviceID     string `json:"device_id,omitempty"`
	Token        string `json:"token"`
	ExpiresUnix  int64  `json:"expires_unix"`
	DeviceCookie string `json:"device_cookie,omitempty"`
}

// Client calls the IM backend for one device.
type Client struct {
	account im.AccountClient
	contact im.ContactClient
	send    im.SendClient
	sync    im.SyncClient
	group   im.GroupClient
	version uint32
	media   im.SendMediaClient
	// mediaURL and hc serve downloads, which are plain HTTP GETs.
	mediaURL string
	hc       *http.Client

	mu      sync.Mutex
	session Session
	syncKey []byte

	// The long link (link.go): nil until Connect.
	linkAddr string
	link     atomic.Pointer[linkClient]
	notify   chan struct{}

	// Watch skips the sync of a notify its last sync already covered
	// (see covered): seen is the newest item version per SyncType the
	// device has synced (under mu), notified the newest a push named, and
	// mustSync is set by a signal that names no version (the link
	// (re)connected, a notify that did not decode).
	seen     [syncTypes]uint64
	notified [syncTypes]atomic.Uint64
	mustSync atomic.Bool

	// syncRetries counts the syncs Watch retried after a transient error.
	syncRetries atomic.Int64
}

// syncTypes bounds the SyncType values a Client tracks versions of.
const syncTypes = 8

// Option changes a Client.
type Option func(*options)

type options struct {
	hc      *http.Client
	version uint32
}

// WithHTTPClient sets the HTTP client (default: one with keep-alive
// connections and no overall timeout; deadlines come from ctx).
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.hc = hc } }

// ClientVersion is the client API version a Client speaks by default.
const ClientVersion = 2

// WithClientVersion makes the Client speak client API version v (see the
// package doc): 1 to act as a client from before groups.
func WithClientVersion(v uint32) Option { return func(o *options) { o.version = v } }

// New returns a Client of the Logicsvrs at addrs, not logged in.
func New(addrs Addrs, opts ...Option) *Client {
	o := options{version: ClientVersion}
	for _, f := range opts {
		f(&o)
	}
	if o.hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 16
		o.hc = &http.Client{Transport: tr}
	}
	c := &Client{
		version:  o.version,
		mediaURL: baseURL(addrs.Media),
		hc:       o.hc,
		linkAddr: addrs.Link,
		notify:   make(chan struct{}, 1),
	}
	c.account = im.NewAccountClient(transport{c, cgi.NewClient(baseURL(addrs.Account), o.hc)})
	c.contact = im.NewContactClient(transport{c, cgi.NewClient(baseURL(addrs.Contact), o.hc)})
	c.send = im.NewSendClient(transport{c, cgi.NewClient(baseURL(addrs.Send), o.hc)})
	c.sync = im.NewSyncClient(transport{c, cgi.NewClient(baseURL(addrs.Sync), o.hc)})
	c.group = im.NewGroupClient(transport{c, cgi.NewClient(baseURL(addrs.Group), o.hc)})
	c.media = im.NewSendMediaClient(cgi.NewClient(baseURL(addrs.Media), o.hc))
	return c
}

// transport sends a call over the long link when the Client has one
// (Connect) and the method is on it, over HTTP otherwise. Register and
// Login always go over HTTP: a link needs a session before it opens.
// Media stays on HTTP: uploads and downloads are bulk transfers that
// would hold up the link's other calls.
type transport struct {
	c    *Client
	http svrkit.Invoker
}

func (t transport) Invoke(ctx context.Context, m *svrkit.MethodDesc, req, resp proto.Message, opts ...svrkit.CallOption) error {
	if l := t.c.link.Load(); l != nil && m.FullName != im.Account_Register_FullMethodName && m.FullName != im.Account_Login_FullMethodName && link.Default.ByName(m.FullName) != nil {
		return l.Invoke(ctx, m, req, resp, opts...)
	}
	return t.http.Invoke(ctx, m, req, resp, opts...)
}

// signal tells Notifies' reader to sync; signals coalesce.
func (c *Client) signal() {
	c.mustSync.Store(true)
	c.wake()
}

// pushed records a push's sync notify and tells Notifies' reader to
// sync, unless the notify does not decode.
func (c *Client) pushed(body []byte) {
	var n im.SyncNotify
	if proto.Unmarshal(body, &n) != nil || n.GetType() <= 0 || int(n.GetType()) >= syncTypes {
		c.signal()
		return
	}
	v := &c.notified[n.GetType()]
	for {
		old := v.Load()
		if n.GetVersion() <= old || v.CompareAndSwap(old, n.GetVersion()) {
			break
		}
	}
	c.wake()
}

// covered reports whether the device's syncs have already brought every
// version a notify named since: then the sync the notify asks for would
// find nothing new. Versions grow per user and type, and a sync returns
// every item above the key in version order, so an item of version v
// synced means everything of that type up to v is on the device.
//
// Why: under push each message notifies its receiver's and its sender's
// devices, and a notify that lands while the device is syncing usually
// names an item that sync is already bringing; without this check, the
// device syncs again to find nothing — a round trip through the gateway,
// sync, messagedata and storage for nothing (issue #13).
func (c *Client) covered() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for t := range c.notified {
		if c.notified[t].Load() > c.seen[t] {
			return false
		}
	}
	return true
}

// wake signals Notifies' reader; signals coalesce.
func (c *Client) wake() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func baseURL(a string) string {
	if a != "" && !strings.Contains(a, "://") {
		return "http://" + a
	}
	return strings.TrimRight(a, "/")
}

// ReadStateFile reads the addresses of the client-facing Logicsvrs (and
// the gateway's long link, when there is one) from `svrkit up`'s state file ({data}/up.json, examples/im/.data/up.json by
// default; package upstate). With replicas it takes a ready instance of
// each, else the first. The group Logicsvr is optional.
func ReadStateFile(path string) (Addrs, error) {
	st, err := upstate.Read(path)
	if err != nil {
		if errors.Is(err, upstate.ErrNotRunning) {
			return Addrs{}, fmt.Errorf("%w (start the IM backend with: go run ./tools/svrkit up examples/im)", err)
		}
		return Addrs{}, err
	}
	var a Addrs
	for name, p := range map[string]*string{"account": &a.Account, "contact": &a.Contact, "send": &a.Send, "sync": &a.Sync} {
		in, ok := st.Find(name)
		if !ok || in.HTTP == "" {
			return Addrs{}, fmt.Errorf("%s: no %q service", path, name)
		}
		*p = in.HTTP
	}
	if in, ok := st.Find("group"); ok {
		a.Group = in.HTTP
	}
	if in, ok := st.Find("sendmedia"); ok {
		a.Media = in.HTTP
	}
	if in, ok := st.Find("gateway"); ok {
		a.Link = in.Ports["link"]
	}
	return a, nil
}

// FromStateFile returns a Client of the services in up's state file.
func FromStateFile(path string, opts ...Option) (*Client, error) {
	a, err := ReadStateFile(path)
	if err != nil {
		return nil, err
	}
	return New(a, opts...), nil
}

// Session returns the current login (zero before Login or SetSession).
func (c *Client) Session() Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}

// SetSession restores a login saved earlier.
func (c *Client) SetSession(s Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.session = s
}

// SyncKey returns the device's current SyncKey (nil before the first Sync).
func (c *Client) SyncKey() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.syncKey...)
}

// SetSyncKey restores a SyncKey saved earlier; nil starts from scratch.
func (c *Client) SetSyncKey(k []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.syncKey = append([]byte(nil), k...)
	// The key may be older than what was synced: forget the versions seen.
	c.seen = [syncTypes]uint64{}
}

// synced stores the key of a sync answer and the newest version of each
// type among its items. A version 1 client's items may be adapted into
// other types (a group message as a one-to-one one), so it records none.
func (c *Client) synced(r *im.SyncReply) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.syncKey = append([]byte(nil), r.GetSyncKey()...)
	if c.version < 2 {
		return
	}
	for _, it := range r.GetItems() {
		if t := int(it.GetType()); t > 0 && t < syncTypes {
			c.seen[t] = max(c.seen[t], it.GetVersion())
		}
	}
}

var errNotLoggedIn = svrkit.NewError(svrkit.Unauthenticated, "not logged in")

// authed returns ctx carrying the session token.
func (c *Client) authed(ctx context.Context) (context.Context, error) {
	c.mu.Lock()
	tok := c.session.Token
	c.mu.Unlock()
	if tok == "" {
		return nil, errNotLoggedIn
	}
	md := svrkit.Metadata{}
	for k, v := range svrkit.OutgoingMetadata(ctx) {
		md[k] = v
	}
	md[session.MetadataKey] = session.Header(tok)
	return svrkit.WithOutgoingMetadata(ctx, md), nil
}

// Register creates a user and returns its id; it does not log in.
// nickname "" means the name. Like a send, it is retried until answered
// or ctx ends: the server answers a repeated registration (same name and
// password) with the user it created.
func (c *Client) Register(ctx context.Context, name, password, nickname string) (uint64, error) {
	req := &im.RegisterRequest{Name: name, Password: password, Nickname: nickname}
	r, err := retry(ctx, func(ctx context.Context) (*im.RegisterReply, error) { return c.account.Register(ctx, req) })
	if err != nil {
		return 0, err
	}
	return r.GetUserId(), nil
}

// Login opens a session for deviceID ("" means "default") and keeps it,
// sending the device cookie of the Client's last session when it was for
// the same name. It does not touch the SyncKey: a new device starts with
// SetSyncKey(nil). After too many failed logins it fails with
// resource_exhausted, the wait in the message; it does not retry.
func (c *Client) Login(ctx context.Context, name, password, deviceID string) (Session, error) {
	var cookie string
	if prev := c.Session(); prev.Name == name {
		cookie = prev.DeviceCookie
	}
	r, err := c.account.Login(ctx, &im.LoginRequest{Name: name, Password: password, DeviceId: deviceID, DeviceCookie: cookie})
	if err != nil {
		return Session{}, err
	}
	if deviceID == "" {
		deviceID = "default"
	}
	s := c.keep(name, deviceID, r)
	return s, nil
}

// keep makes the session of a login reply the Client's.
func (c *Client) keep(name, deviceID string, r *im.LoginReply) Session {
	s := Session{UserID: r.GetUserId(), Name: name, DeviceID: deviceID, Token: r.GetToken(),
		ExpiresUnix: r.GetExpiresUnix(), DeviceCookie: r.GetDeviceCookie()}
	c.SetSession(s)
	return s
}

// Logout ends the session on the server: this device's, or every device's
// of the user with allDevices. When it returns nil no Logicsvr accepts the
// token any more, and the Client has forgotten it (it keeps the device
// cookie for the next login).
func (c *Client) Logout(ctx context.Context, allDevices bool) error {
	actx, err := c.authed(ctx)
	if err != nil {
		return err
	}
	if _, err := c.account.Logout(actx, &im.LogoutRequest{AllDevices: allDevices}); err != nil {
		return err
	}
	c.mu.Lock()
	c.session.Token, c.session.ExpiresUnix = "", 0
	c.mu.Unlock()
	return nil
}

// ChangePassword replaces the user's password, after the server checked
// the current one, and ends every session of the user on every device; it
// keeps the new session the server opens for this device.
func (c *Client) ChangePassword(ctx context.Context, password, newPassword string) (Session, error) {
	actx, err := c.authed(ctx)
	if err != nil {
		return Session{}, err
	}
	r, err := c.account.ChangePassword(actx, &im.ChangePasswordRequest{Password: password, NewPassword: newPassword})
	if err != nil {
		return Session{}, err
	}
	prev := c.Session()
	return c.keep(prev.Name, prev.DeviceID, r), nil
}

// Profile returns a user's profile; userID 0 is the caller's own.
func (c *Client) Profile(ctx context.Context, userID uint64) (*im.Profile, error) {
	ctx, err := c.authed(ctx)
	if err != nil {
		return nil, err
	}
	return c.account.GetProfile(ctx, &im.GetProfileRequest{UserId: userID})
}

// SetProfile changes the caller's nickname.
func (c *Client) SetProfile(ctx context.Context, nickname string) (*im.Profile, error) {
	ctx, err := c.authed(ctx)
	if err != nil {
		return nil, err
	}
	return c.account.SetProfile(ctx, &im.SetProfileRequest{Nickname: nickname})
}

// AddContact adds the user with this login name to the caller's contacts.
func (c *Client) AddContact(ctx context.Context, name string) (*im.ContactReply, error) {
	ctx, err := c.authed(ctx)
	if err != nil {
		return nil, err
	}
	return c.contact.AddContact(ctx, &im.AddContactRequest{Name: name})
}

// RemoveContact removes a user from the caller's contacts.
func (c *Client) RemoveContact(ctx context.Context, userID uint64) (*im.ContactReply, error) {
	ctx, err := c.authed(ctx)
	if err != nil {
		return nil, err
	}
	return c.contact.RemoveContact(ctx, &im.RemoveContactRequest{UserId: userID})
}

// Contacts returns the caller's contact list.
func (c *Client) Contacts(ctx context.Context) (*im.ContactList, error) {
	ctx, err := c.authed(ctx)
	if err != nil {
		return nil, err
	}
	return c.contact.ListContacts(ctx, &im.ListContactsRequest{})
}

// NewClientMsgID returns a random client_msg_id (32 hex digits).
func NewClientMsgID() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// SendText sends text to a user, retrying until it is answered or ctx ends
// (see the package doc). clientMsgID "" makes one up.
func (c *Client) SendText(ctx context.Context, to uint64, clientMsgID, text string) (*im.SendReply, error) {
	if clientMsgID == "" {
		clientMsgID = NewClientMsgID()
	}
	req := &im.SendTextRequest{ToUserId: to, ClientMsgId: clientMsgID, Text: text}
	return c.retrySend(ctx, func(ctx context.Context) (*im.SendReply, error) { return c.send.SendText(ctx, req) })
}

// SendVoice sends a voice clip to a user, retrying as SendText does.
func (c *Client) SendVoice(ctx context.Context, to uint64, clientMsgID string, voice []byte, durationMs uint32, format string) (*im.SendReply, error) {
	if clientMsgID == "" {
		clientMsgID = NewClientMsgID()
	}
	req := &im.SendVoiceRequest{ToUserId: to, ClientMsgId: clientMsgID, Voice: voice, DurationMs: durationMs, Format: format}
	return c.retrySend(ctx, func(ctx context.Context) (*im.SendReply, error) { return c.send.SendVoice(ctx, req) })
}

// attemptTimeout bounds one send attempt, so a Logicsvr that accepted the
// connection and then hangs does not hold the send until ctx ends.
const attemptTimeout = 10 * time.Second

// Retryable reports whether a failed call may be retried as it is: the
// failure says nothing about the request itself (the service was
// restarting, out of a resource, or did not answer in time). Sends are
// retried on it.
func Retryable(err error) bool {
	switch svrkit.CodeOf(err) {
	case svrkit.Unavailable, svrkit.DeadlineExceeded, svrkit.ResourceExhausted:
		return true
	}
	return false
}

// Transient reports whether a call that repeats anyway — a poll, a
// watch's sync — should simply go on after a pause: Retryable, or refused
// by overload control (overloaded). A refusal is not Retryable: the
// service is shedding, and a send that was shed is the user's to repeat,
// not the client's to hammer; but a device that stops syncing because one
// sync was shed would never see its messages.
func Transient(err error) bool {
	return Retryable(err) || svrkit.CodeOf(err) == svrkit.Overloaded
}

func (c *Client) retrySend(ctx context.Context, call func(context.Context) (*im.SendReply, error)) (*im.SendReply, error) {
	actx, err := c.authed(ctx)
	if err != nil {
		return nil, err
	}
	return retry(actx, call)
}

// retry calls call until it succeeds, fails in a way that is not
// Retryable, or ctx ends; each attempt is bounded by attemptTimeout. Only
// for calls that are safe to repeat.
func retry[T any](ctx context.Context, call func(context.Context) (T, error)) (T, error) {
	return retryWithin(ctx, attemptTimeout, call)
}

// retryWithin is retry with each attempt bounded by attempt.
func retryWithin[T any](ctx context.Context, attempt time.Duration, call func(context.Context) (T, error)) (T, error) {
	var zero T
	backoff := 20 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, attempt)
		r, err := call(actx)
		cancel()
		if err == nil || !Retryable(err) {
			return r, err
		}
		if ctx.Err() != nil {
			return zero, svrkit.AsError(ctx.Err())
		}
		// Full jitter: senders that failed together do not retry together.
		t := time.NewTimer(rand.N(backoff) + time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return zero, svrkit.AsError(ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

// DefaultSyncLimit is the number of items Sync asks for by default.
const DefaultSyncLimit = 100

// Sync runs one round of the SyncKey protocol from the Client's SyncKey
// (limit 0: DefaultSyncLimit) and, on success, keeps the new key. The
// reply's ContinueFlag says whether more items are waiting; Gap, that the
// device missed trimmed items and should reload its state.
func (c *Client) Sync(ctx context.Context, limit uint32) (*im.SyncReply, error) {
	ctx, err := c.authed(ctx)
	if err != nil {
		return nil, err
	}
	req := &im.SyncRequest{SyncKey: c.SyncKey(), Limit: limit}
	if c.version > 1 {
		// A version 1 client sends no version: the request a client
		// from before groups sends, byte for byte.
		req.ClientVersion = c.version
	}
	r, err := c.sync.Sync(ctx, req)
	if err != nil {
		return nil, err
	}
	c.synced(r)
	return r, nil
}

// SyncAll syncs until nothing more is waiting and returns every item, in
// the server's order, and whether any answer had Gap set. On an error it
// returns the items of the rounds that succeeded (their key is kept).
func (c *Client) SyncAll(ctx context.Context) (items []*im.SyncItem, gap bool, err error) {
	for {
		r, err := c.Sync(ctx, 0)
		if err != nil {
			return items, gap, err
		}
		items = append(items, r.GetItems()...)
		gap = gap || r.GetGap()
		if !r.GetContinueFlag() {
			return items, gap, nil
		}
	}
}
