// Command monitoragent is the machine's monitor agent (package
// github.com/svrkit/svrkit/svrkit/monitor/agent): it reads the monitor
// regions of every process on the machine and reports them to the monitor
// center.
//
//	monitoragent -center 127.0.0.1:7070                 # the center's RPC address(es), comma-separated
//	monitoragent -routes routes.json                    # or a svrkit routing file naming svrkit.monitoring.MonitorIngest
//	monitoragent -key monitoragent.key ...              # prove the identity "monitoragent" to a center that requires it
//	monitoragent -health 127.0.0.1:9471 ...             # answer GET /healthz there (a supervisor's readiness probe), with the agent's counters
//
// The key file is a svrkit key file (svrkit.ReadKey: PEM, readable by its
// owner only); svrkit up gives the agent its own ({key}). The agent stops
// on SIGTERM or SIGINT.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor"
	"github.com/svrkit/svrkit/svrkit/monitor/agent"
	"github.com/svrkit/svrkit/svrkit/monitor/monitorpb"
)

// Identity is the agent's identity, the one the center's MonitorIngest
// admits (idl/svrkit/monitor.proto).
const Identity = "monitoragent"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("monitoragent", flag.ContinueOnError)
	dir := fs.String("dir", monitor.DefaultDir(), "the monitor region `directory`")
	machine := fs.String("machine", "", "this machine's name (default: the host name)")
	period := fs.Duration("period", time.Second, "how often regions are read and reported")
	buffer := fs.Duration("buffer", 10*time.Minute, "how much reading time is kept while the center is down")
	centerAddr := fs.String("center", "", "the center's RPC `addresses`, comma-separated")
	routes := fs.String("routes", "", "a svrkit routing `file` naming "+monitorpb.MonitorIngest_ServiceName+" (instead of -center)")
	keyFile := fs.String("key", "", "svrkit key `file` (PEM) proving the identity "+Identity)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	health := fs.String("health", "", "serve GET /healthz (the agent's counters as JSON) on this `address`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "monitoragent: -log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	var opts []svrkit.ClientOption
	target := *centerAddr
	switch {
	case *routes != "" && target == "":
		rt, err := svrkit.LoadRouteTable(*routes, time.Second)
		if err != nil {
			log.Error("monitoragent: routes", "err", err)
			return 1
		}
		defer rt.Close()
		opts = append(opts, svrkit.WithResolver(rt))
		target = monitorpb.MonitorIngest_ServiceName
	case target == "" || *routes != "":
		fmt.Fprintln(os.Stderr, "monitoragent: give one of -center and -routes")
		return 2
	}
	if *keyFile != "" {
		key, err := svrkit.ReadKey(*keyFile)
		if err != nil {
			log.Error("monitoragent: identity key", "err", err)
			return 1
		}
		opts = append(opts, svrkit.WithIdentity(Identity, key))
	}
	client, err := svrkit.NewClient(target, opts...)
	if err != nil {
		log.Error("monitoragent: center client", "err", err)
		return 1
	}
	defer client.Close()
	a, err := agent.New(agent.Config{Dir: *dir, Machine: *machine, Period: *period, Buffer: *buffer, Center: client, Logger: log})
	if err != nil {
		log.Error("monitoragent", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if *health != "" {
		ln, err := net.Listen("tcp", *health)
		if err != nil {
			log.Error("monitoragent: -health", "err", err)
			return 1
		}
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(a.Stats())
		})}
		go srv.Serve(ln)
		defer srv.Close()
	}
	log.Info("monitoragent running", "dir", *dir, "center", target, "period", *period)
	if err := a.Run(ctx); err != nil {
		log.Error("monitoragent", "err", err)
		return 1
	}
	st := a.Stats()
	log.Info("monitoragent stopped", "sent", st.Sent, "queued", st.Queued, "merged", st.Merged)
	return 0
}
