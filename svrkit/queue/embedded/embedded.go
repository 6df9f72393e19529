// Package embedded runs a NATS JetStream server inside a Go process, for the
// queue of package svrkit/queue to use on one machine with no setup: file
// storage in one directory, bound to loopback unless told otherwise, and
// never open to anonymous clients.
//
// It is the queue service's engine (svrkit/queue/cmd/queuesvr wraps it in a
// main) and the tests' (a 3-node cluster of these is how the queue proves
// that nothing acknowledged is lost when a node dies). Everything it starts
// is a stock nats-server: a program that outgrows one machine points
// svrkit/queue at an external NATS cluster instead, with no code change.
//
// # Trust boundary
//
// Start refuses a configuration without credentials: clients must present
// the token, or the user and password, given in Config. A cluster's routes
// need their own user and password. The server exposes no HTTP monitoring
// port (nats-server's would answer anyone); Healthy is the readiness check a
// wrapper serves on its own admin port.
//
// # Durability
//
// JetStream writes each message to its file store before it acknowledges
// the publish. Whether the write has also been fsync'd depends on Config's
// Sync: with SyncAlways every acknowledged message is on stable storage
// when the publisher hears of it; otherwise it is in the operating system's
// page cache, which survives the death of this process (SIGKILL, a panic)
// but not of the machine, for up to SyncInterval. A replicated stream (R3)
// acknowledges once a quorum has the message, which survives one machine.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultListen is where a queue server listens for clients unless told
// otherwise: loopback, NATS's usual port.
const DefaultListen = "127.0.0.1:4222"

// ErrNoCredentials is returned by Start when Config names no credentials:
// the queue server never accepts anonymous clients.
var ErrNoCredentials = errors.New("embedded: the queue server needs a token, or a user and password: it accepts no anonymous client")

// Config describes one queue server. Dir and one kind of credentials are
// required; the zero value of every other field is a sensible default.
type Config struct {
	// Dir holds JetStream's file storage (streams, consumers, cluster
	// state). It is created if missing. Required.
	Dir string
	// Listen is the client address, host:port. Empty means DefaultListen;
	// port 0 picks a free port (read it back with URL).
	Listen string
	// Token, or User and Password, is what every client must present.
	Token    string
	User     string
	Password string
	// Name names the server; it must be unique within a cluster and stay
	// the same across restarts of a clustered node. Default "svrkit-queue".
	Name string
	// MaxPayload is the largest message a client may publish, in bytes,
	// headers included. Default 1 MiB (nats-server's default).
	MaxPayload int
	// MaxStore bounds the bytes JetStream keeps on disk. Default: what
	// nats-server picks (most of the free disk).
	MaxStore int64
	// SyncAlways fsyncs every message before acknowledging it. Otherwise
	// JetStream fsyncs every SyncInterval (default 2 minutes, nats-server's
	// own default) and an acknowledged message survives the process but
	// not the machine until then.
	SyncAlways   bool
	SyncInterval time.Duration
	// Cluster, when set, makes this server one node of a JetStream cluster.
	Cluster *Cluster
	// Logger receives the server's notices, warnings and errors. Nil
	// discards them.
	Logger *slog.Logger
}

// Cluster describes how a node meets its peers. Every node of a cluster
// has the same Name, User and Password and lists the others' addresses (or
// all nodes' addresses, its own included) in Routes.
type Cluster struct {
	// Name is the cluster's name, the same on every node. Required.
	Name string
	// Listen is this node's route address, host:port; port 0 picks one.
	Listen string
	// Routes are the peers' route addresses, host:port.
	Routes []string
	// User and Password authenticate routes. Required.
	User     string
	Password string
}

// Server is a running queue server. Its methods are safe for concurrent
// use.
type Server struct {
	ns  *server.Server
	cfg Config
}

// Start starts a server and returns once it accepts clients, or with an
// error if it cannot start before ctx is done. A clustered node accepts
// clients before its cluster has elected a JetStream leader; Healthy says
// when JetStream is usable.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	opts, err := options(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded: storage directory: %w", err)
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	// nats-server reports what stops it from starting (a port in use, a
	// storage directory it cannot use) through Fatalf and expects the
	// logger to exit the process; this one records it instead.
	log := &logger{l: cfg.Logger}
	ns.SetLoggerV2(log, false, false, false)
	ns.Start()
	for !ns.ReadyForConnections(50 * time.Millisecond) {
		err := log.fatal()
		if err == nil && ctx.Err() != nil {
			err = fmt.Errorf("not ready: %w", ctx.Err())
		}
		if err != nil {
			ns.Shutdown()
			ns.WaitForShutdown()
			return nil, fmt.Errorf("embedded: %w", err)
		}
	}
	return &Server{ns: ns, cfg: cfg}, nil
}

// options turns a Config into nats-server options, checking it.
func options(cfg Config) (*server.Options, error) {
	if cfg.Dir == "" {
		return nil, errors.New("embedded: Config.Dir is required (JetStream's file storage)")
	}
	switch {
	case cfg.Token != "" && (cfg.User != "" || cfg.Password != ""):
		return nil, errors.New("embedded: give a token or a user and password, not both")
	case cfg.Token == "" && (cfg.User == "" || cfg.Password == ""):
		return nil, ErrNoCredentials
	}
	listen := cfg.Listen
	if listen == "" {
		listen = DefaultListen
	}
	host, port, err := splitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("embedded: Listen: %w", err)
	}
	name := cfg.Name
	if name == "" {
		name = "svrkit-queue"
	}
	opts := &server.Options{
		ServerName:    name,
		Host:          host,
		Port:          port,
		Authorization: cfg.Token,
		Username:      cfg.User,
		Password:      cfg.Password,
		JetStream:     true,
		StoreDir:      cfg.Dir,
		SyncAlways:    cfg.SyncAlways,
		SyncInterval:  cfg.SyncInterval,
		NoSigs:        true, // the embedding program owns its signals
		NoLog:         cfg.Logger == nil,
		MaxPayload:    int32(cfg.MaxPayload),
		HTTPPort:      0, // no monitoring port: it would answer anyone
	}
	if cfg.MaxPayload < 0 || cfg.MaxPayload > 64<<20 {
		return nil, fmt.Errorf("embedded: MaxPayload %d out of range (0 for the default, at most 64 MiB)", cfg.MaxPayload)
	}
	if cfg.MaxStore > 0 {
		opts.JetStreamMaxStore = cfg.MaxStore
	}
	if c := cfg.Cluster; c != nil {
		if c.Name == "" || c.User == "" || c.Password == "" {
			return nil, errors.New("embedded: a cluster needs a name, and a user and password for its routes")
		}
		chost, cport, err := splitHostPort(c.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded: Cluster.Listen: %w", err)
		}
		opts.Cluster = server.ClusterOpts{Name: c.Name, Host: chost, Port: cport, Username: c.User, Password: c.Password}
		for _, r := range c.Routes {
			if _, _, err := net.SplitHostPort(r); err != nil {
				return nil, fmt.Errorf("embedded: route %q: %w", r, err)
			}
			opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats", Host: r, User: url.UserPassword(c.User, c.Password)})
		}
	}
	return opts, nil
}

// splitHostPort parses host:port; port 0 becomes nats-server's "pick a
// free port" (-1), since its 0 means 4222.
func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return host, port, nil
}

// URL returns the address clients dial, nats://host:port.
func (s *Server) URL() string { return s.ns.ClientURL() }

// ClusterAddr returns the node's route address, or "" when not clustered.
func (s *Server) ClusterAddr() string {
	if a := s.ns.ClusterAddr(); a != nil {
		return a.String()
	}
	return ""
}

// Name returns the server's name, as JetStream reports it in stream and
// consumer cluster information.
func (s *Server) Name() string { return s.ns.Name() }

// Healthy returns nil when the server accepts clients and JetStream is
// usable: enabled and, on a cluster node, in contact with a current
// JetStream leader. It does not wait.
func (s *Server) Healthy() error {
	if !s.ns.Running() {
		return errors.New("embedded: server is stopped")
	}
	h := s.ns.Healthz(&server.HealthzOptions{JSMetaOnly: s.cfg.Cluster != nil, JSEnabledOnly: s.cfg.Cluster == nil})
	if h.Error != "" {
		return fmt.Errorf("embedded: %s", h.Error)
	}
	if h.Status != "ok" {
		return fmt.Errorf("embedded: status %s", h.Status)
	}
	return nil
}

// WaitHealthy waits until Healthy returns nil or ctx is done.
func (s *Server) WaitHealthy(ctx context.Context) error {
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	for {
		err := s.Healthy()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// Shutdown stops the server and waits until it has stopped: clients are
// disconnected, a cluster node hands off the leaderships it holds, and the
// file store is flushed and closed. Safe to call more than once.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// logger adapts a slog.Logger (nil: discard) to nats-server's logging
// interface and keeps the first fatal error.
type logger struct {
	l         *slog.Logger
	mu        sync.Mutex
	fatalText string
}

func (l *logger) log(level slog.Level, format string, v []any) {
	if l.l != nil {
		l.l.Log(context.Background(), level, fmt.Sprintf(format, v...))
	}
}

func (l *logger) Noticef(format string, v ...any) { l.log(slog.LevelInfo, format, v) }
func (l *logger) Warnf(format string, v ...any)   { l.log(slog.LevelWarn, format, v) }
func (l *logger) Errorf(format string, v ...any)  { l.log(slog.LevelError, format, v) }
func (l *logger) Debugf(format string, v ...any)  { l.log(slog.LevelDebug, format, v) }
func (l *logger) Tracef(format string, v ...any)  { l.log(slog.LevelDebug, format, v) }

func (l *logger) Fatalf(format string, v ...any) {
	l.log(slog.LevelError, format, v)
	l.mu.Lock()
	if l.fatalText == "" {
		l.fatalText = fmt.Sprintf(format, v...)
	}
	l.mu.Unlock()
}

func (l *logger) fatal() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fatalText == "" {
		return nil
	}
	return errors.New(l.fatalText)
}
