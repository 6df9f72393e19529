package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/svrkit/svrkit/tools/internal/cmdline"
)

// up runs a topology on one machine. Its parts, one file each:
//
//	topology.go      the topology file: load and validate
//	placeholders.go  {http}, {routes}, {http:NAME}...: expansion and warnings
//	build.go         one go build for every main, with progress
//	plan.go          what each Logicsvr serves, ports, routing table, configs
//	credentials.go   service keys in {data}/keys, private data files
//	supervisor.go    start, readiness, restart with backoff, stop
//	state.go         the state file (package upstate) and the status table
//	logprefix.go     the services' output, line by line, with their names

func init() {
	register(&command{
		name:    "up",
		summary: "build and run a topology of Logicsvrs and services on this machine",
		help:    upHelp,
		run:     runUp,
	})
}

var upHelp = cmdline.Help{
	Name:  "svrkit up",
	Usage: []string{"svrkit up [flags] DIR|FILE"},
	Text: `Builds and runs, on this machine, every service of a topology file
(DIR/topology.json, or FILE): each Logicsvr and any other go-buildable main.
It picks free loopback ports, writes each service's routing table so the
services find each other, waits until all are ready, streams their logs with
a per-service prefix, prints a status table when all are ready (and again
on Enter), restarts one that crashes (with backoff, on the same ports), and
on Ctrl-C or SIGTERM stops all of them cleanly (SIGTERM, then SIGKILL after
-stop-timeout) and exits 0. To stop an up running in the background of a
shell: kill %1 (its job number; 'jobs' lists them), which signals the whole
job, or kill PID with svrkit's own pid ('go run' does not pass SIGTERM on
to the program it runs; 'go tool' does).

The topology file is JSON:

  {
    "services": [
      {"name": "users", "package": "./logicsvr/users"},
      {"name": "notes", "package": "./logicsvr/notes", "replicas": 2,
       "config": {"drain_delay": "1s"}},
      {"name": "hello", "package": "github.com/svrkit/svrkit/examples/hello/server",
       "kind": "main", "args": ["-rpc", "{rpc}", "-http", "{http}"],
       "serves": ["hello.Greeter"], "ready": "tcp:{rpc}"}
    ]
  }

A topology may also have "usage": lines printed once every service is
ready, telling a person how to talk to the services; {state} is the state
file, {data} and {dir} as below, {http:NAME} (and rpc, admin) the address
of the instance NAME, or of the first instance of the service NAME.

Per service:
  name      unique; instances are named name, or name-1, name-2... with replicas
  package   the Go package of its main: ./relative to the topology file's
            directory, or a full import path
  kind      "logicsvr" (the default): a generated Logicsvr main. up asks the
            binary which services it serves (-buildinfo), gives each instance
            a config file with its ports and routes, and waits for /readyz on
            its admin port. "main": any other main; it gets "args" with
            placeholders replaced, and says what it serves in "serves".
  args      arguments; {http} {rpc} {admin} are the instance's ports
            (host:port), {rpc:NAME} (and http, admin, a named port) those
            of the instance NAME, {routes} a svrkit routing file of every service in
            the topology, {name} the instance name, {dir} the topology's
            directory, {data} the data directory (-datadir), {key} the
            service's private key, {keyring} the trusted public keys,
            {keys} their directory, {http:NAME} (and rpc, admin) another
            instance's or service's address. A Logicsvr's args are added
            after up's own flags. The placeholders work in env values and in
            the strings of config too.
  serves    (kind main) protobuf service names its {rpc} port serves
  ready     (kind main) "tcp:ADDR" (accepts connections) or "http:URL"
            (answers 200); default tcp:{rpc}, else tcp:{http}
  replicas  instances to run (default 1), all in every routing table
  group     the shard group its instances form: the routing tables list
            them as SERVICE/GROUP (im.Storage/0) for each protobuf SERVICE
            they serve, for callers whose config "shards" SERVICE over its
            groups (see package logicsvr)
  config    (kind logicsvr) extra config fields (see package logicsvr),
            merged into the generated config; the Logicsvr's own settings
            go in its "app" object, e.g. {"app": {"dir": "{data}/{name}"}}
  env       extra environment variables
  ports     names of extra ports each instance gets, e.g. ["link"]: {link}
            in its args, env and config, {link:NAME} in usage lines, and
            "ports" in the state file

A placeholder up does not know is left as it is, with a warning.

Every service runs behind service authentication: up gives each identity
(a Logicsvr's name, a main service's name, and "operator", whose key 'svrkit
call' presents) an Ed25519 key in {data}/keys, made once and kept, and
writes each Logicsvr's config with "auth" (its RPC accepts only callers the
IDL lists; see package logicsvr) and "dev": true (a development run; a
topology's config may set either). Everything under {data} is readable by
its owner only (umask 077, inherited by the services).

While it runs, up keeps the state of every instance (pid, state, restarts,
addresses, what it serves) in {data}/up.json, for tools and tests ('svrkit
addr' and 'svrkit call' read it; see package upstate); it is removed at exit.

Binaries are built by one 'go build' from the topology file's directory,
whose module must hold the packages, into a cache directory, so an unchanged
service is not relinked. The first build on a clean build cache compiles
every dependency (minutes on a small machine); up shows its progress. Each
instance keeps its ports across restarts, so routing tables stay valid.

Exit status: 0 when stopped by Ctrl-C or SIGTERM, 1 when a service fails to
build or to get ready, 2 for bad usage.`,
}

// up is one run of the command.
type up struct {
	e           *env
	dir         string // the topology's directory
	work        string // config files and the routing table
	data        string // where services keep their data: {data}
	keyring     string // the keyring of the topology's identities, in {data}/keys
	readyWait   time.Duration
	stopTimeout time.Duration
	out         *prefixWriter
	instances   []*instance

	// lifeMu orders starts against stopAll: once stopping is set no
	// process is started, so none escapes the stop.
	lifeMu   sync.Mutex
	stopping bool

	stateMu sync.Mutex // serializes saveState
	usage   []string   // the topology's usage lines
}

func runUp(e *env, args []string) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	work := fs.String("workdir", "", "where config files and routing tables are written (default: a temporary directory, removed at exit)")
	dataDir := fs.String("datadir", "", "where services keep their data, {data} in the topology (default: DIR/.data, kept across runs)")
	binDir := fs.String("bindir", "", "where binaries are built (default: a cache directory per topology)")
	readyWait := fs.Duration("ready-timeout", 2*time.Minute, "how long to wait for every service to be ready")
	stopTimeout := fs.Duration("stop-timeout", 15*time.Second, "how long services may drain after SIGTERM before SIGKILL")
	if err := e.parse(fs, args, upHelp); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return e.usagef(upHelp, "give one topology directory or file")
	}
	path := e.abs(fs.Arg(0))
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "topology.json")
	}
	topo, err := loadTopology(path)
	if err != nil {
		return err
	}
	u := &up{e: e, dir: filepath.Dir(path), readyWait: *readyWait, stopTimeout: *stopTimeout, out: newPrefixWriter(e.stdout),
		usage: topo.Usage}
	for _, w := range topo.placeholderWarnings() {
		u.logf("warning: %s", w)
	}
	if *work == "" {
		tmp, err := os.MkdirTemp("", "svrkit-up-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		u.work = tmp
	} else {
		u.work = e.abs(*work)
		if err := os.MkdirAll(u.work, 0o755); err != nil {
			return err
		}
	}
	u.data = filepath.Join(u.dir, ".data")
	if *dataDir != "" {
		u.data = e.abs(*dataDir)
	}
	privateFiles()
	if err := privateData(u.data); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	bins := *binDir
	if bins == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		sum := sha256.Sum256([]byte(path))
		bins = filepath.Join(cache, "svrkit", "up", hex.EncodeToString(sum[:8]))
	}
	if err := u.build(topo, e.abs(bins)); err != nil {
		return err
	}
	routes, err := u.plan(topo)
	if err != nil {
		return err
	}
	if err := u.provisionKeys(); err != nil {
		return err
	}
	if err := u.writeConfigs(routes); err != nil {
		return err
	}
	return u.run()
}

func (u *up) logf(format string, args ...any) {
	u.out.line("svrkit up", fmt.Sprintf(format, args...))
}
