package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/tools/svrkit/upstate"
)

// upRun is `svrkit up` running in process against testdata/up, with its
// output scanned line by line.
type upRun struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan int

	mu    sync.Mutex
	lines []string
	cond  chan struct{} // closed and replaced on every new line
	eof   chan struct{} // closed when up's output ends: it has exited
}

func startUp(t *testing.T, args ...string) *upRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	u := &upRun{t: t, cancel: cancel, done: make(chan int, 1), cond: make(chan struct{}), eof: make(chan struct{})}
	e := &env{ctx: ctx, dir: ".", stdin: strings.NewReader(""), stdout: pw, stderr: pw}
	go func() {
		code := run(e, append([]string{"up"}, args...))
		pw.Close()
		u.done <- code
	}()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			u.mu.Lock()
			u.lines = append(u.lines, sc.Text())
			close(u.cond)
			u.cond = make(chan struct{})
			u.mu.Unlock()
		}
		io.Copy(io.Discard, pr)
		close(u.eof)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-u.done:
		case <-time.After(60 * time.Second):
			t.Error("svrkit up did not stop within 60s of cancel")
		}
	})
	return u
}

// waitFor waits, bounded, for an output line at index >= from matching re
// and returns its submatches and the index after it. It gives up at once
// when up has exited without printing it.
func (u *upRun) waitFor(re *regexp.Regexp, from int, d time.Duration) ([]string, int) {
	u.t.Helper()
	deadline := time.After(d)
	ended := false
	for {
		u.mu.Lock()
		for i := from; i < len(u.lines); i++ {
			if m := re.FindStringSubmatch(u.lines[i]); m != nil {
				u.mu.Unlock()
				return m, i + 1
			}
		}
		cond := u.cond
		u.mu.Unlock()
		if ended {
			u.t.Fatalf("svrkit up exited without a line matching %q; output:\n%s", re, u.output())
		}
		select {
		case <-cond:
		case <-u.eof:
			ended = true // look at the last lines once more
		case <-deadline:
			u.t.Fatalf("no line matching %q within %v; output:\n%s", re, d, u.output())
		}
	}
}

func (u *upRun) output() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return strings.Join(u.lines, "\n")
}

var readyLine = regexp.MustCompile(`svrkit up +\| (\S+) ready \(pid (\d+)\) http=(\S+) rpc=(\S+) admin=(\S+)`)

func postJSON(t *testing.T, url, body string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// alive reports whether pid runs; a zombie (exited, not yet reaped by
// whoever inherited it) does not.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !os.IsNotExist(err) // no /proc: trust kill
	}
	// The state follows the command name in parentheses.
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}

// TestUpRunsTopology builds and runs testdata/up (the notes example's two
// Logicsvrs, one with two replicas, and the hello example's hand-written
// server as a plain main), then checks routing, log prefixes, restart of a
// killed service and a clean stop.
func TestUpRunsTopology(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three binaries")
	}
	data := t.TempDir()
	u := startUp(t, "-bindir", t.TempDir(), "-datadir", data, "-stop-timeout", "10s", "testdata/up")
	_, end := u.waitFor(regexp.MustCompile(`all services ready`), 0, 4*time.Minute)

	type inst struct {
		pid              int
		http, rpc, admin string
	}
	insts := map[string]inst{}
	u.mu.Lock()
	for _, l := range u.lines[:end] {
		if m := readyLine.FindStringSubmatch(l); m != nil {
			pid, _ := strconv.Atoi(m[2])
			insts[m[1]] = inst{pid, m[3], m[4], m[5]}
		}
	}
	u.mu.Unlock()
	for _, name := range []string{"users", "notes-1", "notes-2", "hello"} {
		if insts[name].pid == 0 {
			t.Fatalf("no ready line for %s:\n%s", name, u.output())
		}
	}
	// The state file tells tools the same.
	st, err := upstate.Read(filepath.Join(data, upstate.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Instances) != 4 {
		t.Fatalf("state file has %d instances, want 4: %+v", len(st.Instances), st)
	}
	for _, is := range st.Instances {
		if want := insts[is.Name]; is.PID != want.pid || is.HTTP != want.http || is.State != "ready" {
			t.Errorf("state file: %+v, want pid %d http %s ready", is, want.pid, want.http)
		}
	}
	// It records what each serves: a Logicsvr's from its -buildinfo, a
	// plain main's from the topology.
	for name, svc := range map[string]string{"users": "notes.Users", "notes-2": "notes.Notes", "hello": "hello.Greeter"} {
		if in, ok := st.Find(svc); !ok || !slices.Contains(in.Serves, svc) || (name != "notes-2" && in.Name != name) {
			t.Errorf("state file: Find(%s) = %+v, %v; want %s serving it", svc, in, ok, name)
		}
	}

	// Every Logicsvr runs behind service authentication with keys up made
	// in the data directory, which is private: a caller without a key is
	// refused, the operator key up made works (svrkit call by name uses
	// it), and notes reaches users with its own below.
	if st, err := os.Stat(data); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("data directory: %v, mode %v; want 0700", err, st.Mode().Perm())
	}
	if st, err := os.Stat(filepath.Join(data, "keys", "operator.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("operator key: %v; want a 0600 file", err)
	}
	anon, err := svrkit.NewClient(insts["users"].rpc, svrkit.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := svrkit.Describe(ctx, anon); svrkit.CodeOf(err) != svrkit.Unauthenticated {
		t.Errorf("call without a key: %v, want unauthenticated", err)
	}
	var listed strings.Builder
	e := &env{ctx: ctx, dir: ".", stdin: strings.NewReader(""), stdout: &listed, stderr: &listed}
	if code := run(e, []string{"call", "-list", "-up", filepath.Join(data, upstate.FileName), "users"}); code != 0 || !strings.Contains(listed.String(), "notes.Users") {
		t.Errorf("svrkit call -list users with the operator key: exit %d, %s", code, listed.String())
	}

	// The routing tables up wrote let both notes replicas reach users.
	if status, body := postJSON(t, "http://"+insts["users"].http+"/cgi-bin/users/register", `{"name":"ada"}`); status != 200 {
		t.Fatalf("register: %d %s", status, body)
	}
	for _, n := range []string{"notes-1", "notes-2"} {
		if status, body := postJSON(t, "http://"+insts[n].http+"/cgi-bin/notes/add", `{"author":"ada","text":"hi from `+n+`"}`); status != 200 {
			t.Errorf("%s add: %d %s", n, status, body)
		}
	}
	// The plain main got its ports through the args placeholders.
	if status, body := postJSON(t, "http://"+insts["hello"].http+"/cgi-bin/hello/sayhello", `{"name":"up"}`); status != 200 || !strings.Contains(body, "Hello, up!") {
		t.Errorf("hello: %d %s", status, body)
	}
	// Logs are streamed with a per-service prefix.
	u.waitFor(regexp.MustCompile(`^users +\| .*logicsvr ready`), 0, 5*time.Second)
	u.waitFor(regexp.MustCompile(`^notes-2 +\| \{.*"msg":"logicsvr ready"`), 0, 5*time.Second)

	// A crashed service is restarted on the same ports.
	old := insts["notes-1"]
	if err := syscall.Kill(old.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, next := u.waitFor(regexp.MustCompile(`notes-1 exited \(signal: killed\); restarting in`), end, 10*time.Second)
	m, _ := u.waitFor(regexp.MustCompile(`svrkit up +\| notes-1 ready \(pid (\d+)\) http=(\S+)`), next, 30*time.Second)
	if m[1] == strconv.Itoa(old.pid) || m[2] != old.http {
		t.Errorf("restarted notes-1: pid %s http %s; want a new pid on the old address %s", m[1], m[2], old.http)
	}
	if status, body := postJSON(t, "http://"+old.http+"/cgi-bin/notes/add", `{"author":"ada","text":"after restart"}`); status != 200 {
		t.Errorf("restarted notes-1 add: %d %s", status, body)
	}
	newPid, _ := strconv.Atoi(m[1])

	// Ctrl-C stops every service and returns 0.
	u.cancel()
	select {
	case code := <-u.done:
		if code != 0 {
			t.Errorf("svrkit up exited %d", code)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("svrkit up did not stop")
	}
	u.done <- 0 // for the cleanup
	if _, err := os.Stat(filepath.Join(data, upstate.FileName)); !os.IsNotExist(err) {
		t.Errorf("state file left behind after stop: %v", err)
	}
	for name, in := range insts {
		pid := in.pid
		if name == "notes-1" {
			pid = newPid
		}
		if alive(pid) {
			t.Errorf("%s (pid %d) still running after svrkit up stopped", name, pid)
		}
	}
	out := u.output()
	for _, want := range []string{"stopping 4 services", "logicsvr stopped", "stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestUpTopologyErrors(t *testing.T) {
	cases := []struct{ name, topo, want string }{
		{"not JSON", `{`, "unexpected EOF"},
		{"unknown field", `{"services":[{"name":"a","package":"./a","port":1}]}`, `unknown field "port"`},
		{"no services", `{"services":[]}`, "no services"},
		{"bad name", `{"services":[{"name":"a b","package":"./a"}]}`, "name must be"},
		{"duplicate", `{"services":[{"name":"a","package":"./a"},{"name":"a","package":"./b"}]}`, "name used twice"},
		{"no package", `{"services":[{"name":"a"}]}`, "no package"},
		{"bad kind", `{"services":[{"name":"a","package":"./a","kind":"lambda"}]}`, `kind must be logicsvr or main`},
		{"serves on a Logicsvr", `{"services":[{"name":"a","package":"./a","serves":["x.Y"]}]}`, "drop serves"},
		{"config on a main", `{"services":[{"name":"a","package":"./a","kind":"main","config":{}}]}`, "config is for Logicsvrs"},
		{"instance names clash", `{"services":[{"name":"a","package":"./a","replicas":2},{"name":"a-1","package":"./b"}]}`, "service a-1: instance name a-1 is also an instance of service a"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "topology.json"), []byte(tc.topo), 0o644); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runCmd(t, dir, "up", ".")
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, tc.want)
			}
		})
	}
	if code, _, stderr := runCmd(t, t.TempDir(), "up"); code != 2 || !strings.Contains(stderr, "one topology") {
		t.Errorf("no args: exit %d, %q", code, stderr)
	}
	if _, err := loadTopology(filepath.Join(t.TempDir(), "nope.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestUpExpandsPlaceholders(t *testing.T) {
	u := &up{dir: "/topo", data: "/topo/.data", work: "/work"}
	storage := &topoService{Name: "storage", Replicas: 2}
	in := &instance{svc: storage, name: "storage-1", http: "127.0.0.1:1", rpc: "127.0.0.1:2", admin: "127.0.0.1:3"}
	in2 := &instance{svc: storage, name: "storage-2", http: "127.0.0.1:4", rpc: "127.0.0.1:5", admin: "127.0.0.1:6"}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(`{"app": {"dir": "{data}/{name}", "peers": ["{rpc}", 3], "n": 1}}`), &cfg); err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(u.expandJSON(in, cfg))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"app":{"dir":"/topo/.data/storage-1","n":1,"peers":["127.0.0.1:2",3]}}`
	if string(got) != want {
		t.Errorf("expanded config = %s, want %s", got, want)
	}
	u.instances = []*instance{in, in2}
	// Another instance's or service's address, for a service outside the
	// routing table (the IM's Logicsvrs find the queue service so).
	if got, want := u.expand(in, "nats://{rpc:storage-2} {http:storage} {admin:nosuch}"), "nats://127.0.0.1:5 127.0.0.1:1 {admin:nosuch}"; got != want {
		t.Errorf("expand = %q, want %q", got, want)
	}
	// An instance's config can name another instance's ports: a replica
	// group's peers.
	storage.Ports = []string{"raft"}
	in.ports, in2.ports = map[string]string{"raft": "127.0.0.1:7"}, map[string]string{"raft": "127.0.0.1:8"}
	if got := u.expand(in, "{raft} {rpc:storage-2} {raft:storage-2}"); got != "127.0.0.1:7 127.0.0.1:5 127.0.0.1:8" {
		t.Errorf("cross-instance placeholders expanded to %q", got)
	}
	if w := (&topology{Services: []*topoService{storage}}).placeholderWarnings(); len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
	storage.Config = json.RawMessage(`{"app": {"peers": ["{raft:storage-2}", "{raft:storage-3}"]}}`)
	if w := (&topology{Services: []*topoService{storage}}).placeholderWarnings(); len(w) != 1 || !strings.Contains(w[0], "{raft:storage-3}") {
		t.Errorf("a peer that does not exist: warnings %v", w)
	}
	for usage, want := range map[string]string{
		"imcli -up {state} # CGIs at {http:storage-2}": "imcli -up /topo/.data/up.json # CGIs at 127.0.0.1:4",
		// A service with replicas stands for its first instance.
		"curl http://{http:storage}/ {rpc:storage} {admin:storage-1}": "curl http://127.0.0.1:1/ 127.0.0.1:2 127.0.0.1:3",
		`curl -d '{"name":"x"}' {data}`:                               `curl -d '{"name":"x"}' /topo/.data`,
	} {
		if got := u.expandUsage(usage); got != want {
			t.Errorf("expandUsage(%q) = %q, want %q", usage, got, want)
		}
	}
}

// TestUpWarnsAboutUnknownPlaceholders checks that a placeholder up would
// leave as it is gets a warning when the topology loads, before the build.
func TestUpWarnsAboutUnknownPlaceholders(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "topology.json"), `{
	  "usage": ["curl http://{http:web}/ http://{http:web-2}/ {state} {http:nosuch} {port:web} '{\"a\": {}}'"],
	  "services": [
	    {"name": "web", "package": "./web", "replicas": 2, "config": {"app": {"dir": "{data}/{nmae}"}}},
	    {"name": "tool", "package": "./tool", "kind": "main", "args": ["-addr", "{rpc}", "-x", "{rcp}", "-web", "{http:web-2}"], "env": {"A": "{dir}", "B": "{rpc:nosuch}"}}
	  ]}`)
	topo, err := loadTopology(filepath.Join(dir, "topology.json"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(topo.placeholderWarnings(), "\n")
	for _, want := range []string{
		"service web: {nmae} is not a placeholder",
		"service tool: {rcp} is not a placeholder",
		"service tool: {rpc:nosuch} is not a placeholder",
		"usage: {http:nosuch} is not a placeholder",
		"usage: {port:web} is not a placeholder",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings lack %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != 5 {
		t.Errorf("%d warnings, want 5:\n%s", n, got)
	}

	// up prints them before it builds anything (the packages do not exist).
	code, stdout, _ := runCmd(t, dir, "up", "-bindir", t.TempDir(), ".")
	if code != 1 || !strings.Contains(stdout, "warning: service tool: {rcp} is not a placeholder") {
		t.Errorf("up: exit %d, stdout:\n%s", code, stdout)
	}
}

// TestKilledUpLeavesNoServices runs up as its own process, SIGKILLs it (no
// chance to stop anything) and checks its services go too.
func TestKilledUpLeavesNoServices(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	if runtime.GOOS != "linux" {
		t.Skip("services outlive a killed up outside Linux")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "svrkit")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(tmp, "data")
	cmd := exec.Command(bin, "up", "-bindir", filepath.Join(tmp, "bin"), "-datadir", data, "testdata/up")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	var pids []int
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		for _, pid := range pids {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	})
	deadline := time.Now().Add(4 * time.Minute)
	for {
		if st, err := upstate.Read(filepath.Join(data, upstate.FileName)); err == nil && len(st.Instances) == 4 {
			ready := 0
			pids = pids[:0]
			for _, in := range st.Instances {
				pids = append(pids, in.PID)
				if in.State == "ready" {
					ready++
				}
			}
			if ready == 4 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("services not ready within 4 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-done
	deadline = time.Now().Add(30 * time.Second)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("service pid %d still running 30s after up was killed", pid)
		}
	}
}

// TestUpNamedPorts checks a service's extra ports ("ports"): validated when
// the topology loads, reserved per instance, expanded in its config and in
// usage lines, and recorded in the state file.
func TestUpNamedPorts(t *testing.T) {
	for _, tc := range []struct{ ports, want string }{
		{`["Link"]`, "must be lower-case"},
		{`["http"]`, "taken by a built-in placeholder"},
		{`["link", "link"]`, `port "link" named twice`},
	} {
		path := filepath.Join(t.TempDir(), "topology.json")
		writeFile(t, path, `{"services":[{"name":"gw","package":"./gw","ports":`+tc.ports+`}]}`)
		if _, err := loadTopology(path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ports %s: %v, want %q", tc.ports, err, tc.want)
		}
	}
	path := filepath.Join(t.TempDir(), "topology.json")
	writeFile(t, path, `{
	  "usage": ["long link at {link:gw}, first replica {link:gw-1}, second {link:gw-2}; {link:db} {lnk:gw}"],
	  "services": [
	    {"name": "gw", "package": "./gw", "replicas": 2, "ports": ["link", "ws_extra"],
	     "config": {"app": {"link": "{link}", "other": "{ws_extra}", "typo": "{lnk}"}}},
	    {"name": "db", "package": "./db", "config": {"app": {"x": "{link}"}}}
	  ]}`)
	topo, err := loadTopology(path)
	if err != nil {
		t.Fatal(err)
	}
	warns := strings.Join(topo.placeholderWarnings(), "\n")
	for _, want := range []string{"service gw: {lnk} is not a placeholder", "service db: {link} is not a placeholder",
		"usage: {link:db} is not a placeholder", "usage: {lnk:gw} is not a placeholder"} {
		if !strings.Contains(warns, want) {
			t.Errorf("warnings lack %q:\n%s", want, warns)
		}
	}
	if n := strings.Count(warns, "\n") + 1; n != 4 {
		t.Errorf("%d warnings, want 4:\n%s", n, warns)
	}

	u := &up{dir: "/topo", data: t.TempDir(), work: "/work"}
	for _, s := range topo.Services {
		for _, n := range s.instanceNames() {
			u.instances = append(u.instances, &instance{svc: s, name: n})
		}
	}
	if _, err := u.plan(&topology{}); err != nil { // no services to ask: ports only
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, in := range u.instances {
		for _, a := range append([]string{in.http, in.rpc, in.admin}, in.ports["link"], in.ports["ws_extra"]) {
			if a == "" && in.svc.Name == "db" {
				continue
			}
			if a == "" || seen[a] {
				t.Fatalf("instance %s: port %q empty or reserved twice", in.name, a)
			}
			seen[a] = true
		}
	}
	gw1, gw2 := u.instances[0], u.instances[1]
	if got := u.expand(gw2, "{link} {ws_extra} {http}"); got != gw2.ports["link"]+" "+gw2.ports["ws_extra"]+" "+gw2.http {
		t.Errorf("expand = %q", got)
	}
	want := "long link at " + gw1.ports["link"] + ", first replica " + gw1.ports["link"] + ", second " + gw2.ports["link"] + "; {link:db} {lnk:gw}"
	if got := u.expandUsage(topo.Usage[0]); got != want {
		t.Errorf("usage = %q, want %q", got, want)
	}
	st := u.snapshot()
	if st.Instances[1].Ports["link"] != gw2.ports["link"] || st.Instances[2].Ports != nil {
		t.Errorf("state file instances: %+v", st.Instances)
	}
}

// A service with a "group" is routed as SERVICE/GROUP: the shard groups
// of a sharded service (topology-sharded.json).
func TestGroupRoutes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "topology.json")
	writeFile(t, path, `{"services": [
		{"name": "db-a", "package": "./db", "kind": "main", "serves": ["x.DB"], "replicas": 2, "group": "0"},
		{"name": "db-b", "package": "./db", "kind": "main", "serves": ["x.DB"], "group": "1"},
		{"name": "api", "package": "./api", "kind": "main", "serves": ["x.API"]}]}`)
	topo, err := loadTopology(path)
	if err != nil {
		t.Fatal(err)
	}
	u := &up{dir: "/topo", data: t.TempDir(), work: "/work"}
	routes, err := u.plan(topo)
	if err != nil {
		t.Fatal(err)
	}
	if len(routes["x.DB/0"]) != 2 || len(routes["x.DB/1"]) != 1 || len(routes["x.API"]) != 1 || len(routes["x.DB"]) != 0 {
		t.Errorf("routes %v: want x.DB/0 with 2, x.DB/1 with 1, x.API with 1 and no x.DB", routes)
	}
	writeFile(t, path, `{"services": [{"name": "db", "package": "./db", "kind": "main", "serves": ["x.DB"], "group": "a/b"}]}`)
	if _, err := loadTopology(path); err == nil || !strings.Contains(err.Error(), "group") {
		t.Errorf("a group with a slash: %v", err)
	}
}
