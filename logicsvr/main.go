package logicsvr

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/panjf2000/gnet/v2/pkg/pool/goroutine"
)

// Main is the whole of a generated Logicsvr main:
//
//	func main() {
//		logicsvr.Main("account", func(h *logicsvr.Host) error {
//			impl, err := handlers.NewAccount(h)
//			if err != nil {
//				return err
//			}
//			im.RegisterAccountServer(h, impl)
//			return nil
//		})
//	}
//
// It parses the flags (BindFlags) and the config file, sets up logging,
// builds the host, lets register add the services, then serves until
// SIGTERM or SIGINT and drains (see Host.Shutdown). A second signal during
// the drain exits at once. The exit status is 0 after a complete drain, 1
// when the drain timed out or anything failed, and 2 for bad flags. With
// -buildinfo it prints the BuildInfo as JSON and exits without listening;
// register still runs (that is how the services are known), with clients
// that fail every call, so handler constructors should not do work that
// only a serving process needs.
//
// opts apply after Main's own (the logger the config asks for); a
// hand-written main passes WithInterceptors or WithClientOptions here.
func Main(name string, register func(*Host) error, opts ...Option) {
	// Whatever the process writes (a database, logs, caches) is its own:
	// files 0600 and directories 0700 unless it says otherwise.
	syscall.Umask(0o077)
	// gnet starts a goroutine pool for its client (Enroll) when it is
	// loaded, and the pool's clock ticks twice a second. A Logicsvr uses no
	// gnet client, and those ticks were a third of what woke an idle one
	// (svrkit/internal/beat says why wake-ups cost).
	goroutine.DefaultWorkerPool.Release()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	os.Exit(run(name, register, os.Args[1:], os.Stdout, os.Stderr, sigs, opts...))
}

// run is Main without the process: tests drive it with their own signal
// channel.
func run(name string, register func(*Host) error, args []string, stdout, stderr io.Writer, sigs <-chan os.Signal, extra ...Option) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s [flags]\n\nLogicsvr %s: serves its CGIs over HTTP and binary RPC (see package github.com/svrkit/svrkit/logicsvr).\n\nflags:\n", name, name)
		fs.PrintDefaults()
	}
	flags := BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q\n", name, fs.Args())
		return 2
	}
	cfg, err := flags.Config()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	if cfg.Name != "" && cfg.Name != name {
		fmt.Fprintf(stderr, "%s: config %s is for Logicsvr %q, not %q\n", name, flags.ConfigPath, cfg.Name, name)
		return 1
	}
	cfg.Name = name
	log, err := cfg.NewLogger(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	// The process's logger: what the runtime logs on its own (a routing
	// table that failed to reload, say) comes out in the configured format.
	slog.SetDefault(log)
	opts := append([]Option{WithLogger(log)}, extra...)
	if flags.PrintInfo {
		opts = append(opts, infoOnly())
	}
	h, err := New(cfg, opts...)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if err := register(h); err != nil {
		log.Error("cannot create handlers", "logicsvr", name, "err", err)
		return 1
	}
	if flags.PrintInfo {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(h.BuildInfo()); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			return 1
		}
		return 0
	}
	if err := h.Start(); err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	status := 0
	select {
	case sig := <-sigs:
		log.Info("signal received; draining (send it again to exit at once)", "signal", sig.String())
	case err := <-h.Failed():
		log.Error("listener failed; stopping", "err", err)
		status = 1
	}
	done := make(chan error, 1)
	go func() { done <- h.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			return 1
		}
		return status
	case sig := <-sigs:
		log.Warn("second signal; exiting without draining", "signal", sig.String())
		return 1
	}
}
