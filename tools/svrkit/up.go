package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

func init() {
	register(&command{
		name:    "up",
		usage:   "up [flags] DIR|FILE",
		summary: "build and run a topology of Logicsvrs and services on this machine",
		run:     runUp,
	})
}

const upHelp = `usage: svrkit up [flags] DIR|FILE

Builds and runs, on this machine, every service of a topology file
(DIR/topology.json, or FILE): each Logicsvr and any other go-buildable main.
It picks free loopback ports, writes each service's routing table so the
services find each other, waits until all are ready, streams their logs with
a per-service prefix, prints a status table when all are ready (and again
on Enter), restarts one that crashes (with backoff, on the same ports), and
on Ctrl-C stops all of them cleanly (SIGTERM, then SIGKILL after
-stop-timeout).

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
file, {http:NAME} (and rpc, admin) an instance's address.

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
            (host:port), {routes} a svrkit routing file of every service in
            the topology, {name} the instance name, {dir} the topology's
            directory, {data} the data directory (-datadir). A Logicsvr's
            args are added after up's own flags. The placeholders work in
            env values and in the strings of config too.
  serves    (kind main) protobuf service names its {rpc} port serves
  ready     (kind main) "tcp:ADDR" (accepts connections) or "http:URL"
            (answers 200); default tcp:{rpc}, else tcp:{http}
  replicas  instances to run (default 1), all in every routing table
  config    (kind logicsvr) extra config fields (see package logicsvr),
            merged into the generated config; the Logicsvr's own settings
            go in its "app" object, e.g. {"app": {"dir": "{data}/{name}"}}
  env       extra environment variables

While it runs, up keeps the state of every instance (pid, state, restarts,
addresses) in {data}/up.json, for tools and tests; it is removed at exit.

Binaries are built with 'go build' into a cache directory (so an unchanged
service is not relinked) from the topology file's directory, whose module
must hold the packages. Each instance keeps its ports across restarts, so
routing tables stay valid.

flags:
`

// topology is the file's content.
type topology struct {
	Services []*topoService `json:"services"`
	// Usage is printed once every service is ready: how to talk to them.
	Usage []string `json:"usage,omitempty"`
}

type topoService struct {
	Name     string            `json:"name"`
	Package  string            `json:"package"`
	Kind     string            `json:"kind,omitempty"`
	Args     []string          `json:"args,omitempty"`
	Serves   []string          `json:"serves,omitempty"`
	Ready    string            `json:"ready,omitempty"`
	Replicas int               `json:"replicas,omitempty"`
	Config   json.RawMessage   `json:"config,omitempty"`
	Env      map[string]string `json:"env,omitempty"`

	bin string // built binary
}

const (
	kindLogicsvr = "logicsvr"
	kindMain     = "main"
)

var instanceName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

// loadTopology reads and validates a topology file.
func loadTopology(path string) (*topology, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t topology
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(t.Services) == 0 {
		return nil, fmt.Errorf("%s: no services", path)
	}
	seen := map[string]bool{}
	for i, s := range t.Services {
		where := fmt.Sprintf("%s: service %d (%s)", path, i+1, s.Name)
		switch {
		case !instanceName.MatchString(s.Name):
			return nil, fmt.Errorf("%s: name must be letters, digits, '_' and '-', starting with a letter", where)
		case seen[s.Name]:
			return nil, fmt.Errorf("%s: name used twice", where)
		case s.Package == "":
			return nil, fmt.Errorf("%s: no package", where)
		case s.Replicas < 0:
			return nil, fmt.Errorf("%s: negative replicas", where)
		}
		seen[s.Name] = true
		if s.Replicas == 0 {
			s.Replicas = 1
		}
		switch s.Kind {
		case "", kindLogicsvr:
			s.Kind = kindLogicsvr
			if len(s.Serves) > 0 || s.Ready != "" {
				return nil, fmt.Errorf("%s: a Logicsvr says what it serves and when it is ready itself; drop serves and ready", where)
			}
		case kindMain:
			if len(s.Config) > 0 {
				return nil, fmt.Errorf("%s: config is for Logicsvrs; pass flags in args", where)
			}
		default:
			return nil, fmt.Errorf("%s: kind must be logicsvr or main, not %q", where, s.Kind)
		}
		if len(s.Config) > 0 {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(s.Config, &obj); err != nil {
				return nil, fmt.Errorf("%s: config must be an object: %w", where, err)
			}
		}
	}
	return &t, nil
}

// instance is one running copy of a service, supervised by up.
type instance struct {
	svc              *topoService
	name             string
	http, rpc, admin string // reserved loopback addresses, kept across restarts

	mu       sync.Mutex
	state    string // starting, ready, crashed, stopping, stopped
	restarts int
	cmd      *exec.Cmd     // the current (or last) process; nil before the first start
	exited   chan struct{} // closed when the current process has exited
}

// pidLocked is the current (or last) process's pid, 0 before the first
// start. in.mu must be held.
func (in *instance) pidLocked() int {
	if in.cmd == nil {
		return 0
	}
	return in.cmd.Process.Pid
}

func (in *instance) setState(s string) {
	in.mu.Lock()
	in.state = s
	in.mu.Unlock()
}

// up is one run of the command.
type up struct {
	e           *env
	dir         string // the topology's directory
	work        string // config files and the routing table
	data        string // where services keep their data: {data}
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
	fs.SetOutput(e.stderr)
	work := fs.String("workdir", "", "where config files and routing tables are written (default: a temporary directory, removed at exit)")
	dataDir := fs.String("datadir", "", "where services keep their data, {data} in the topology (default: DIR/.data, kept across runs)")
	binDir := fs.String("bindir", "", "where binaries are built (default: a cache directory per topology)")
	readyWait := fs.Duration("ready-timeout", 2*time.Minute, "how long to wait for every service to be ready")
	stopTimeout := fs.Duration("stop-timeout", 15*time.Second, "how long services may drain after SIGTERM before SIGKILL")
	fs.Usage = func() {
		fmt.Fprint(e.stderr, upHelp)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(e.stderr, "svrkit up: give one topology directory or file")
		fs.Usage()
		return errUsage
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
	if err := u.writeConfigs(routes); err != nil {
		return err
	}
	return u.run()
}

func (u *up) logf(format string, args ...any) {
	u.out.line("svrkit up", fmt.Sprintf(format, args...))
}

// build compiles every service's main, two at a time.
func (u *up) build(topo *topology, binDir string) error {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	start := time.Now()
	u.logf("building %d services into %s", len(topo.Services), binDir)
	sem := make(chan struct{}, 2)
	errs := make([]error, len(topo.Services))
	var wg sync.WaitGroup
	for i, s := range topo.Services {
		s.bin = filepath.Join(binDir, s.Name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := exec.CommandContext(u.e.ctx, "go", "build", "-o", s.bin, s.Package)
			cmd.Dir = u.dir
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("building %s (%s): %v\n%s", s.Name, s.Package, err, out)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	u.logf("built in %v", time.Since(start).Round(time.Millisecond))
	return nil
}

// plan asks each Logicsvr what it serves, reserves ports for every
// instance and returns the routing table of the whole topology.
func (u *up) plan(topo *topology) (map[string][]string, error) {
	routes := map[string][]string{}
	for _, s := range topo.Services {
		if s.Kind == kindLogicsvr {
			out, err := exec.CommandContext(u.e.ctx, s.bin, "-buildinfo").Output()
			if err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					return nil, fmt.Errorf("%s -buildinfo: %v\n%s", s.Name, err, ee.Stderr)
				}
				return nil, fmt.Errorf("%s -buildinfo: %v", s.Name, err)
			}
			var bi struct {
				Logicsvr string
				Services []struct{ Name string }
			}
			if err := json.Unmarshal(out, &bi); err != nil || bi.Logicsvr == "" {
				return nil, fmt.Errorf("%s: %s is not a Logicsvr (its -buildinfo printed %.200q); set \"kind\": \"main\"", s.Name, s.Package, out)
			}
			s.Serves = nil
			for _, svc := range bi.Services {
				s.Serves = append(s.Serves, svc.Name)
			}
		}
		for r := 1; r <= s.Replicas; r++ {
			in := &instance{svc: s, name: s.Name, state: "starting"}
			if s.Replicas > 1 {
				in.name = fmt.Sprintf("%s-%d", s.Name, r)
			}
			u.instances = append(u.instances, in)
		}
	}
	ports, err := freePorts(3 * len(u.instances))
	if err != nil {
		return nil, err
	}
	for i, in := range u.instances {
		in.http, in.rpc, in.admin = ports[3*i], ports[3*i+1], ports[3*i+2]
		for _, svc := range in.svc.Serves {
			routes[svc] = append(routes[svc], in.rpc)
		}
	}
	return routes, nil
}

// freePorts reserves n distinct free loopback ports. They are released
// before the services bind them; another process could take one in between,
// which the service then reports as a failed listen.
func freePorts(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	var addrs []string
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// writeConfigs writes the routing table and each Logicsvr instance's
// config file.
func (u *up) writeConfigs(routes map[string][]string) error {
	b, err := json.MarshalIndent(map[string]any{"services": routes}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(u.routesPath(), append(b, '\n'), 0o644); err != nil {
		return err
	}
	for _, in := range u.instances {
		if in.svc.Kind != kindLogicsvr {
			continue
		}
		cfg := map[string]any{}
		if len(in.svc.Config) > 0 {
			if err := json.Unmarshal(in.svc.Config, &cfg); err != nil {
				return err
			}
			cfg = u.expandJSON(in, cfg).(map[string]any)
		}
		cfg["http"], cfg["rpc"], cfg["admin"], cfg["routes"] = in.http, in.rpc, in.admin, routes
		if _, set := cfg["drain_timeout"]; !set {
			cfg["drain_timeout"] = u.stopTimeout.String()
		}
		b, err := json.MarshalIndent(cfg, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(u.configPath(in), append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// routesPath is the routing table of the whole topology, {routes}.
func (u *up) routesPath() string { return filepath.Join(u.work, "routes.json") }

// configPath is a Logicsvr instance's config file.
func (u *up) configPath(in *instance) string { return filepath.Join(u.work, in.name+".json") }

// expand replaces an instance's placeholders in s.
func (u *up) expand(in *instance, s string) string {
	return strings.NewReplacer("{http}", in.http, "{rpc}", in.rpc, "{admin}", in.admin,
		"{routes}", u.routesPath(), "{name}", in.name, "{dir}", u.dir, "{data}", u.data).Replace(s)
}

// expandUsage replaces {data}, {dir} and {state} (the state file) in the
// topology's usage text, and {http:NAME} {rpc:NAME} {admin:NAME} with an
// instance's addresses.
func (u *up) expandUsage(s string) string {
	pairs := []string{"{data}", u.data, "{dir}", u.dir, "{state}", u.statePath()}
	for _, in := range u.instances {
		pairs = append(pairs, "{http:"+in.name+"}", in.http, "{rpc:"+in.name+"}", in.rpc, "{admin:"+in.name+"}", in.admin)
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// expandJSON replaces placeholders in every string of a decoded JSON value.
func (u *up) expandJSON(in *instance, v any) any {
	switch v := v.(type) {
	case string:
		return u.expand(in, v)
	case map[string]any:
		for k, e := range v {
			v[k] = u.expandJSON(in, e)
		}
	case []any:
		for i, e := range v {
			v[i] = u.expandJSON(in, e)
		}
	}
	return v
}

// run starts every instance, waits for readiness, supervises until the
// command's context ends, then stops everything.
func (u *up) run() error {
	ctx := u.e.ctx
	var wg sync.WaitGroup
	for _, in := range u.instances {
		if err := u.start(in); err != nil {
			u.stopAll()
			return err
		}
	}
	for _, in := range u.instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u.supervise(ctx, in)
		}()
	}
	readyCtx, cancel := context.WithTimeout(ctx, u.readyWait)
	err := u.waitAllReady(readyCtx)
	cancel()
	if err != nil && ctx.Err() == nil {
		u.logf("%v", err)
		u.stopAll()
		wg.Wait()
		return err
	}
	if ctx.Err() == nil {
		u.printStatus()
		u.logf("all services ready; Enter shows their status, Ctrl-C stops them")
		if len(u.usage) > 0 {
			u.out.block(u.expandUsage(strings.Join(u.usage, "\n")) + "\n")
		}
		go func() {
			// Each line on standard input asks for the status table.
			sc := bufio.NewScanner(u.e.stdin)
			for sc.Scan() && ctx.Err() == nil {
				u.printStatus()
			}
		}()
	}
	<-ctx.Done()
	u.logf("stopping %d services", len(u.instances))
	u.stopAll()
	wg.Wait()
	_ = os.Remove(u.statePath())
	u.printStatus()
	return nil
}

// start launches an instance's process, its output streamed with its
// prefix. It runs in its own process group so that a terminal's Ctrl-C
// reaches only up, which then stops each service once, in order.
func (u *up) start(in *instance) error {
	u.lifeMu.Lock()
	defer u.lifeMu.Unlock()
	if u.stopping {
		return errStopping
	}
	s := in.svc
	var args []string
	if s.Kind == kindLogicsvr {
		args = append(args, "-config", u.configPath(in))
	}
	for _, a := range s.Args {
		args = append(args, u.expand(in, a))
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = u.dir
	cmd.Env = os.Environ()
	for k, v := range s.Env {
		cmd.Env = append(cmd.Env, k+"="+u.expand(in, v))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	dieWithParent(cmd.SysProcAttr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", in.name, err)
	}
	exited := make(chan struct{})
	var streams sync.WaitGroup
	streams.Add(2)
	go func() { defer streams.Done(); u.out.stream(in.name, stdout) }()
	go func() { defer streams.Done(); u.out.stream(in.name, stderr) }()
	go func() {
		streams.Wait()
		_ = cmd.Wait()
		close(exited)
	}()
	in.mu.Lock()
	in.cmd, in.exited, in.state = cmd, exited, "starting"
	in.mu.Unlock()
	u.saveState()
	return nil
}

var errStopping = errors.New("stopping")

// readyCheck reports whether the instance answers its readiness probe.
func (u *up) readyCheck(ctx context.Context, in *instance) bool {
	probe := in.svc.Ready
	switch {
	case in.svc.Kind == kindLogicsvr:
		probe = "http:http://" + in.admin + "/readyz"
	case probe == "" && len(in.svc.Serves) > 0:
		probe = "tcp:{rpc}"
	case probe == "":
		probe = "tcp:{http}"
	}
	probe = u.expand(in, probe)
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if addr, ok := strings.CutPrefix(probe, "tcp:"); ok {
		c, err := (&net.Dialer{}).DialContext(cctx, "tcp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	url := strings.TrimPrefix(probe, "http:")
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

func (u *up) waitAllReady(ctx context.Context) error {
	for {
		var waiting []string
		for _, in := range u.instances {
			in.mu.Lock()
			st := in.state
			in.mu.Unlock()
			if st != "ready" {
				waiting = append(waiting, in.name)
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %s", u.readyWait, strings.Join(waiting, ", "))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Restart backoff: doubling from backoffMin to backoffMax, back to the
// minimum after a process has run stableAfter.
const (
	backoffMin  = 250 * time.Millisecond
	backoffMax  = 10 * time.Second
	stableAfter = 10 * time.Second
)

// supervise watches one instance: it marks it ready when its probe passes,
// and restarts it with backoff when it exits on its own.
func (u *up) supervise(ctx context.Context, in *instance) {
	backoff := backoffMin
	for {
		in.mu.Lock()
		exited, pid := in.exited, in.pidLocked()
		in.mu.Unlock()
		started := time.Now()
		// Probe until ready or exit.
	probe:
		for !u.readyCheck(ctx, in) {
			select {
			case <-exited:
				break probe
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		select {
		case <-exited:
		default:
			in.setState("ready")
			u.saveState()
			u.logf("%s ready (pid %d) http=%s rpc=%s admin=%s", in.name, pid, in.http, in.rpc, in.admin)
		}
		select {
		case <-exited:
		case <-ctx.Done():
			return
		}
		if ctx.Err() != nil {
			return
		}
		in.mu.Lock()
		if in.state == "stopping" || in.state == "stopped" {
			in.mu.Unlock()
			return
		}
		code := in.cmd.ProcessState.String()
		in.state = "crashed"
		in.restarts++
		in.mu.Unlock()
		u.saveState()
		if time.Since(started) >= stableAfter {
			backoff = backoffMin
		}
		u.logf("%s exited (%s); restarting in %v", in.name, code, backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, backoffMax)
		if err := u.start(in); err != nil {
			if errors.Is(err, errStopping) {
				return
			}
			u.logf("%v", err)
			return
		}
	}
}

// stopAll sends SIGTERM to every running instance, waits for them to exit
// within the stop timeout, and SIGKILLs what remains.
func (u *up) stopAll() {
	u.lifeMu.Lock()
	u.stopping = true
	u.lifeMu.Unlock()
	var wg sync.WaitGroup
	for _, in := range u.instances {
		in.mu.Lock()
		in.state = "stopping"
		cmd, exited := in.cmd, in.exited
		in.mu.Unlock()
		if cmd == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pgid := cmd.Process.Pid
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(u.stopTimeout):
				u.logf("%s did not stop within %v; killing it", in.name, u.stopTimeout)
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				<-exited
			}
			in.setState("stopped")
		}()
	}
	wg.Wait()
}

// StateFile is the name of the file, in the data directory, where up keeps
// the state of every instance while it runs (removed when it stops), so that
// tools and tests find the services' addresses and processes:
//
//	{"instances": [{"name": "send", "service": "send", "state": "ready",
//	  "pid": 4242, "restarts": 0, "http": "127.0.0.1:39001",
//	  "rpc": "127.0.0.1:39002", "admin": "127.0.0.1:39003"}, ...]}
//
// It is replaced atomically (write, rename) on every change.
const StateFile = "up.json"

// upState is the content of StateFile.
type upState struct {
	Instances []instanceState `json:"instances"`
}

type instanceState struct {
	Name     string `json:"name"`
	Service  string `json:"service"`
	State    string `json:"state"`
	PID      int    `json:"pid"`
	Restarts int    `json:"restarts"`
	HTTP     string `json:"http"`
	RPC      string `json:"rpc"`
	Admin    string `json:"admin"`
}

func (u *up) statePath() string { return filepath.Join(u.data, StateFile) }

// saveState writes StateFile. Failing to write it is logged, not fatal:
// the services run without it.
func (u *up) saveState() {
	u.stateMu.Lock()
	defer u.stateMu.Unlock()
	var st upState
	for _, in := range u.instances {
		in.mu.Lock()
		st.Instances = append(st.Instances, instanceState{Name: in.name, Service: in.svc.Name, State: in.state,
			PID: in.pidLocked(), Restarts: in.restarts, HTTP: in.http, RPC: in.rpc, Admin: in.admin})
		in.mu.Unlock()
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err == nil {
		err = os.MkdirAll(u.data, 0o755)
	}
	if err == nil {
		tmp := u.statePath() + ".tmp"
		if err = os.WriteFile(tmp, append(b, '\n'), 0o644); err == nil {
			err = os.Rename(tmp, u.statePath())
		}
	}
	if err != nil {
		u.logf("writing %s: %v", u.statePath(), err)
	}
}

// printStatus prints a table of the instances.
func (u *up) printStatus() {
	var b strings.Builder
	fmt.Fprintf(&b, "%-14s %-8s %7s %8s  %-21s %-21s %s\n", "SERVICE", "STATE", "PID", "RESTARTS", "HTTP", "RPC", "ADMIN")
	for _, in := range u.instances {
		in.mu.Lock()
		fmt.Fprintf(&b, "%-14s %-8s %7d %8d  %-21s %-21s %s\n", in.name, in.state, in.pidLocked(), in.restarts, in.http, in.rpc, in.admin)
		in.mu.Unlock()
	}
	u.out.block(b.String())
}

// prefixWriter writes whole lines from several sources to one writer, each
// line prefixed with its source's name, padded so the logs line up.
type prefixWriter struct {
	mu    sync.Mutex
	w     io.Writer
	width int
	color bool
	hues  map[string]int
}

func newPrefixWriter(w io.Writer) *prefixWriter {
	p := &prefixWriter{w: w, width: 9, hues: map[string]int{}}
	if f, ok := w.(*os.File); ok && os.Getenv("NO_COLOR") == "" {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.color = true
		}
	}
	return p
}

func (p *prefixWriter) prefix(name string) string {
	if len(name) > p.width {
		p.width = len(name)
	}
	pad := name + strings.Repeat(" ", p.width-len(name)) + " | "
	if !p.color {
		return pad
	}
	hue, ok := p.hues[name]
	if !ok {
		hue = 31 + len(p.hues)%6
		p.hues[name] = hue
	}
	return fmt.Sprintf("\x1b[%dm%s\x1b[0m", hue, pad)
}

func (p *prefixWriter) line(name, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s%s\n", p.prefix(name), text)
}

func (p *prefixWriter) block(text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	io.WriteString(p.w, text)
}

// stream copies r to the writer line by line under name's prefix.
func (p *prefixWriter) stream(name string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.line(name, sc.Text())
	}
}
