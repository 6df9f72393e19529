// Command queuesvr is svrkit's queue service: a NATS JetStream server
// (package svrkit/queue/embedded) with file storage, run as a service of
// its own so that every other service of a topology reaches one queue.
// svrkit up starts it; svrkit/queue clients connect to its -listen address
// with its credentials.
//
//	SVRKIT_QUEUE_TOKEN=... queuesvr -dir /var/lib/svrkit/queue -listen 127.0.0.1:4222 -admin 127.0.0.1:4280
//
// Credentials come from the environment, never from flags (which any user
// of the machine can read in the process list): SVRKIT_QUEUE_TOKEN, or
// SVRKIT_QUEUE_USER and SVRKIT_QUEUE_PASSWORD, or a file named by
// -token-file. Without them it refuses to start. A cluster node also needs
// SVRKIT_QUEUE_CLUSTER_USER and SVRKIT_QUEUE_CLUSTER_PASSWORD for its
// routes.
//
// -admin serves GET /readyz (and /healthz): 200 once JetStream is usable,
// 503 with the reason before. It says nothing else, so it needs no
// credentials.
//
// SIGINT or SIGTERM stops it cleanly: clients are disconnected, a cluster
// node hands off its leaderships, the store is flushed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/svrkit/svrkit/svrkit/queue/embedded"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "queuesvr:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done. ready, if not nil, is called with the
// client URL and the admin address once the server accepts clients.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready func(url, admin string)) error {
	fs := flag.NewFlagSet("queuesvr", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", embedded.DefaultListen, "client address, host:port (port 0: any free port)")
	admin := fs.String("admin", "", "address of the readiness endpoint (/readyz), host:port; empty: none")
	dir := fs.String("dir", "", "directory of JetStream's file storage (required)")
	name := fs.String("name", "svrkit-queue", "server name, unique in a cluster and stable across restarts")
	syncFlag := fs.String("sync", "1s", `when acknowledged items are fsync'd: "always" (before the acknowledgement), or an interval`)
	maxPayload := fs.Int("max-payload", 1<<20, "largest message a client may publish, headers included, in bytes")
	maxStore := fs.Int64("max-store", 0, "bytes of disk JetStream may use (0: nats-server's default)")
	tokenFile := fs.String("token-file", "", "file holding the client token (instead of SVRKIT_QUEUE_TOKEN)")
	clusterName := fs.String("cluster-name", "", "cluster name: set to run as one node of a JetStream cluster")
	clusterListen := fs.String("cluster-listen", "127.0.0.1:6222", "route address of this node, host:port")
	routes := fs.String("routes", "", "comma-separated route addresses of the cluster's nodes")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: queuesvr -dir DIR [flags]   (credentials in SVRKIT_QUEUE_TOKEN, or SVRKIT_QUEUE_USER and SVRKIT_QUEUE_PASSWORD)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if *dir == "" {
		return errors.New("-dir is required: where the queue keeps its data")
	}
	cfg := embedded.Config{
		Dir: *dir, Listen: *listen, Name: *name, MaxPayload: *maxPayload, MaxStore: *maxStore, Logger: log,
		Token: getenv("SVRKIT_QUEUE_TOKEN"), User: getenv("SVRKIT_QUEUE_USER"), Password: getenv("SVRKIT_QUEUE_PASSWORD"),
	}
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("-token-file: %w", err)
		}
		cfg.Token = strings.TrimSpace(string(b))
	}
	if *syncFlag == "always" {
		cfg.SyncAlways = true
	} else {
		d, err := time.ParseDuration(*syncFlag)
		if err != nil || d <= 0 {
			return fmt.Errorf(`-sync %q: want "always" or a positive duration`, *syncFlag)
		}
		cfg.SyncInterval = d
	}
	if *clusterName != "" {
		cfg.Cluster = &embedded.Cluster{Name: *clusterName, Listen: *clusterListen,
			User: getenv("SVRKIT_QUEUE_CLUSTER_USER"), Password: getenv("SVRKIT_QUEUE_CLUSTER_PASSWORD")}
		for _, r := range strings.Split(*routes, ",") {
			if r = strings.TrimSpace(r); r != "" {
				cfg.Cluster.Routes = append(cfg.Cluster.Routes, r)
			}
		}
	}

	var adminLn net.Listener
	if *admin != "" {
		var err error
		if adminLn, err = net.Listen("tcp", *admin); err != nil {
			return fmt.Errorf("-admin: %w", err)
		}
		defer adminLn.Close()
	}
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	srv, err := embedded.Start(startCtx, cfg)
	cancel()
	if err != nil {
		return err
	}
	defer srv.Shutdown()

	adminAddr := ""
	if adminLn != nil {
		adminAddr = adminLn.Addr().String()
		hs := &http.Server{Handler: readiness(srv), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(adminLn) }()
		defer hs.Close()
	}
	log.Info("queue accepting clients", "url", srv.URL(), "admin", adminAddr, "dir", *dir, "cluster", *clusterName)
	if ready != nil {
		ready(srv.URL(), adminAddr)
	}
	<-ctx.Done()
	log.Info("queue stopping")
	return nil
}

// readiness answers /readyz and /healthz: 200 once JetStream is usable.
func readiness(srv *embedded.Server) http.Handler {
	mux := http.NewServeMux()
	h := func(w http.ResponseWriter, r *http.Request) {
		if err := srv.Healthy(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	}
	mux.HandleFunc("GET /readyz", h)
	mux.HandleFunc("GET /healthz", h)
	return mux
}
