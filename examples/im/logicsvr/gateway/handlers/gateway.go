// Package handlers implements the gateway Logicsvr (idl/im/gateway.proto):
// the access layer's long connections, the web chat page, and im.Gateway,
// the internal service presence pushes through. NewGateway is the
// constructor its generated main calls.
//
// # What runs where
//
// The long link itself — TCP and WebSocket on one port, auth, framing,
// heartbeats, backpressure — is package examples/im/internal/gateway (the
// protocol is package examples/im/link). This package connects it to the
// rest of the backend (Backend):
//
//   - Verify checks tokens with the deployment's session secret, like
//     every client-facing Logicsvr, and Online checks the account's
//     revocations (session.Checker) before the auth is answered.
//   - Call forwards a request to the Logicsvr that serves its method, over
//     svrkit RPC with the gateway's service identity, the session in
//     metadata (session.ForwardMetadata: the Logicsvrs believe it from
//     the gateway only) and the user's entry priority, so overload control
//     sheds a user's calls together.
//   - Online and Offline keep presence (idl/im/presence.proto) told which
//     devices this gateway holds.
//
// # Keeping presence right
//
// Every quarter lease (2.5s by default) the gateway renews its lease on
// every presence instance (Lease, to each endpoint of the routing table),
// which also tells it each instance's boot id. When an instance's boot id
// changes — presence restarted and lost its table — the gateway registers
// all its connections again and pushes each a "sync everything" notify,
// since notifies may have been lost while presence was gone. A connection
// whose registration failed (presence down when it authenticated) is
// retried on every renewal and, once registered, asked to sync the same
// way. So presence is repaired within one renewal of coming back, and no
// device stays unaware of a message for longer.
//
// # HTTP
//
// The gateway's HTTP port serves the web chat page at /chat/ (static files
// embedded in the binary; the page opens a WebSocket to the link port, which
// /chat/config.json names) and the client-facing CGIs at their usual paths
// (/cgi-bin/account/login ...), forwarded over RPC with the caller's
// Authorization header and nothing else, so the page logs in from its own
// origin. A forwarded session is never taken from HTTP headers. The media
// download paths are relayed to sendmedia's HTTP port (media.go), so the
// page shows images from its own origin too.
package handlers

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/gateway"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/examples/im/link"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor"
)

// Config is the gateway Logicsvr's "app" settings.
type Config struct {
	// Link is the long link's listen address, TCP and WebSocket
	// (default 127.0.0.1:7080).
	Link string `json:"link,omitempty"`
	// SessionSecret and SessionTTL are the account Logicsvr's
	// session_secret and session_ttl (session.Config).
	SessionSecret string            `json:"session_secret"`
	SessionTTL    logicsvr.Duration `json:"session_ttl,omitempty"`
	// Advertise is the RPC address presence reaches this gateway at
	// (default: the config's "rpc").
	Advertise string `json:"advertise,omitempty"`
	// AuthTimeout, IdleTimeout and Heartbeat: see package gateway
	// (10s, 90s, 30s).
	AuthTimeout logicsvr.Duration `json:"auth_timeout,omitempty"`
	IdleTimeout logicsvr.Duration `json:"idle_timeout,omitempty"`
	Heartbeat   logicsvr.Duration `json:"heartbeat,omitempty"`
	// MaxPending bounds what one connection holds for its client (4 MiB).
	MaxPending int `json:"max_pending,omitempty"`
	// LeaseEvery is how often the presence lease is renewed (2.5s).
	LeaseEvery logicsvr.Duration `json:"lease_every,omitempty"`
	// MediaHTTP is the sendmedia Logicsvr's HTTP address, where the
	// media downloads the web page asks this gateway for are forwarded
	// (media.go); empty: they answer unavailable.
	MediaHTTP string `json:"media_http,omitempty"`
}

// NewGateway returns the Gateway handler, with the long link listening
// and the web page and CGI forwarding on the host's HTTP port. It needs
// the client-facing services and im.Presence in the routing table and
// session_secret in the app config.
func NewGateway(h *logicsvr.Host) (im.GatewayServer, error) {
	cfg := Config{Link: "127.0.0.1:7080", LeaseEvery: logicsvr.Duration(2500 * time.Millisecond), SessionTTL: logicsvr.Duration(session.DefaultTTL)}
	if err := h.AppConfig(&cfg); err != nil {
		return nil, err
	}
	checker, err := session.CheckerForHost(h, cfg.SessionSecret, time.Duration(cfg.SessionTTL))
	if err != nil {
		return nil, err
	}
	be := &backend{checker: checker, h: h, clients: map[string]svrkit.Invoker{}, pending: map[uint64]*gateway.Conn{}}
	for _, rt := range link.Default.All() {
		if be.clients[rt.Service] == nil {
			if be.clients[rt.Service], err = h.Client(rt.Service); err != nil {
				return nil, err
			}
		}
	}
	pinv, err := h.Client(im.Presence_ServiceName)
	if err != nil {
		return nil, err
	}
	be.presence = im.NewPresenceClient(pinv)
	be.self = cfg.Advertise
	if be.self == "" {
		be.self = h.Config().RPC
	}
	if host, _, err := net.SplitHostPort(be.self); err != nil || host == "" || net.ParseIP(host).IsUnspecified() {
		return nil, fmt.Errorf("gateway: presence must reach this gateway at a routable address, not %q: set rpc or app advertise", be.self)
	}
	srv := &gatewayServer{}
	mountHTTP(h, be, &cfg)
	if h.InfoOnly() {
		return srv, nil
	}
	gw := gateway.New(gateway.Config{
		Addr:        cfg.Link,
		AuthTimeout: time.Duration(cfg.AuthTimeout),
		IdleTimeout: time.Duration(cfg.IdleTimeout),
		Heartbeat:   time.Duration(cfg.Heartbeat),
		MaxPending:  cfg.MaxPending,
		Logger:      h.Logger(),
	}, be)
	be.gw, srv.gw = gw, gw
	if err := gw.Start(); err != nil {
		return nil, err
	}
	h.Logger().Info("gateway: long link listening", "addr", gw.Addr().String(), "websocket", "ws://"+gw.Addr().String()+link.WebSocketPath)
	ctx, stopLeases := context.WithCancel(context.Background())
	leasesDone := make(chan struct{})
	go func() { defer close(leasesDone); be.renewLeases(ctx, time.Duration(cfg.LeaseEvery)) }()
	h.OnShutdown(func(ctx context.Context) error {
		stopLeases()
		<-leasesDone
		return gw.Shutdown(ctx)
	})
	return srv, nil
}

// gatewayServer is im.Gateway: presence's way in.
type gatewayServer struct {
	im.UnimplementedGatewayServer
	gw *gateway.Server
}

func (s *gatewayServer) Push(_ context.Context, req *im.GatewayPushRequest) (*im.GatewayPushReply, error) {
	return s.push(req), nil
}

// PushMany answers each push as Push does.
func (s *gatewayServer) PushMany(_ context.Context, req *im.GatewayPushManyRequest) (*im.GatewayPushManyReply, error) {
	out := &im.GatewayPushManyReply{Replies: make([]*im.GatewayPushReply, len(req.GetPushes()))}
	for i, p := range req.GetPushes() {
		out.Replies[i] = s.push(p)
	}
	return out, nil
}

// push queues req's notify on the targets this gateway holds and answers
// the others as gone.
func (s *gatewayServer) push(req *im.GatewayPushRequest) *im.GatewayPushReply {
	r := &im.GatewayPushReply{}
	if s.gw == nil || req.GetNotify() == nil {
		return r
	}
	for _, t := range req.GetTargets() {
		if s.gw.Push(t, req.GetNotify()) {
			r.Pushed++
		} else {
			r.Gone = append(r.Gone, t.GetConnId())
		}
	}
	return r
}

func (s *gatewayServer) Kick(_ context.Context, req *im.GatewayKickRequest) (*im.GatewayKickReply, error) {
	if s.gw == nil || req.GetTarget() == nil {
		return &im.GatewayKickReply{}, nil
	}
	return &im.GatewayKickReply{Kicked: s.gw.Kick(req.GetTarget())}, nil
}

// backend is the gateway's Backend: sessions, forwarding and presence.
type backend struct {
	checker  *session.Checker
	h        *logicsvr.Host
	clients  map[string]svrkit.Invoker // by protobuf service; read-only once built
	presence im.PresenceClient
	self     string
	gw       *gateway.Server

	mu      sync.Mutex
	pending map[uint64]*gateway.Conn // registered with presence: not yet
	boots   map[string]uint64        // presence endpoint → its boot id
}

func (b *backend) Verify(token string) (session.Claims, error) {
	return b.checker.Signer().Verify(token)
}

func (b *backend) connectRequest(c *gateway.Conn) *im.PresenceConnectRequest {
	cl := c.Claims()
	return &im.PresenceConnectRequest{UserId: cl.UserID, DeviceId: cl.DeviceID, ConnId: c.ID(), Gateway: b.self, GatewayBoot: b.gw.BootID()}
}

func (b *backend) Online(ctx context.Context, c *gateway.Conn) error {
	// A link's auth is the long link's login: its calls (the revocation
	// read, the presence registration) carry Login's priority and the
	// user's, so an overloaded backend sheds them after profile reads and
	// syncs, not before, and a device is not kept offline by load it does
	// not cause.
	ctx = svrkit.WithEntryPriority(ctx, loginPriority, strconv.FormatUint(c.Claims().UserID, 10))
	if err := b.checker.Unrevoked(ctx, c.Claims()); err != nil {
		return err // revoked, or cannot be checked now: the client retries
	}
	if _, err := b.presence.Connect(ctx, b.connectRequest(c)); err != nil {
		// Presence is down or overloaded: the device works, but is not
		// notified until the next renewal registers it.
		b.mu.Lock()
		b.pending[c.ID()] = c
		b.mu.Unlock()
		b.h.Logger().Debug("gateway: presence connect", "conn", c.ID(), "err", err)
	}
	return nil
}

func (b *backend) Offline(c *gateway.Conn) {
	b.mu.Lock()
	delete(b.pending, c.ID())
	b.mu.Unlock()
	cl := c.Claims()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = b.presence.Disconnect(ctx, &im.PresenceDisconnectRequest{UserId: cl.UserID, DeviceId: cl.DeviceID, ConnId: c.ID()})
}

func (b *backend) Call(ctx context.Context, c *gateway.Conn, rt *link.Route, req, resp proto.Message) error {
	cl := c.Claims()
	if _, ok := ctx.Deadline(); !ok {
		d := rt.Method.Timeout
		if d <= 0 {
			d = 30 * time.Second
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	ctx = svrkit.WithOutgoingMetadata(ctx, session.ForwardMetadata(cl))
	ctx = svrkit.WithEntryPriority(ctx, 0, strconv.FormatUint(cl.UserID, 10))
	monitor.Add(im.Monitor_LINK_REQUESTS_ID, 1)
	return b.clients[rt.Service].Invoke(ctx, rt.Method, req, resp)
}

// loginPriority is im.Account/Login's business priority, from the IDL.
var loginPriority = func() uint8 {
	for _, m := range im.Account_ServiceDesc.Methods {
		if m.FullName == im.Account_Login_FullMethodName {
			return m.Priority
		}
	}
	return 0
}()

// resyncNotify asks a device to sync everything (see im.SyncNotify).
var resyncNotify = &im.SyncNotify{}

// renewLeases renews the gateway's lease on every presence instance every
// d, and repairs presence when an instance restarted or a registration
// failed (see the package doc).
func (b *backend) renewLeases(ctx context.Context, d time.Duration) {
	b.boots = map[string]uint64{}
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		b.renewOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (b *backend) renewOnce(ctx context.Context) {
	addrs, err := b.h.Endpoints(im.Presence_ServiceName)
	if err != nil {
		b.h.Logger().Warn("gateway: presence endpoints", "err", err)
		return
	}
	restarted := false
	for _, addr := range addrs {
		inv, err := b.h.EndpointClient(im.Presence_ServiceName, addr)
		if err != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		r, err := im.NewPresenceClient(inv).Lease(cctx, &im.PresenceLeaseRequest{Gateway: b.self, GatewayBoot: b.gw.BootID()})
		cancel()
		if err != nil {
			continue // down: its restart shows as a new boot id later
		}
		if prev, known := b.boots[addr]; known && prev != r.GetBootId() {
			restarted = true
			b.h.Logger().Info("gateway: presence restarted; registering every connection again", "presence", addr)
		}
		b.boots[addr] = r.GetBootId()
	}
	var again []*gateway.Conn
	if restarted {
		b.gw.Authenticated(func(c *gateway.Conn) bool { again = append(again, c); return true })
	} else {
		b.mu.Lock()
		for _, c := range b.pending {
			again = append(again, c)
		}
		b.mu.Unlock()
	}
	b.register(ctx, again)
}

// register registers conns with presence, a few at a time, and asks each
// one registered to sync everything.
func (b *backend) register(ctx context.Context, conns []*gateway.Conn) {
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for _, c := range conns {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := b.presence.Connect(cctx, b.connectRequest(c))
			cancel()
			b.mu.Lock()
			if err != nil {
				b.pending[c.ID()] = c
			} else {
				delete(b.pending, c.ID())
			}
			b.mu.Unlock()
			if err == nil {
				b.gw.Push(&im.LinkTarget{UserId: c.Claims().UserID, DeviceId: c.Claims().DeviceID, ConnId: c.ID()}, resyncNotify)
			}
		}()
	}
	wg.Wait()
}
