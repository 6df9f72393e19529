// Package monitortest runs the monitor's parts for tests: a center behind
// a real svrkit server on loopback with its dashboard on a real HTTP
// listener, and monitored processes — this test binary run again as a
// child that declares points and adds to them on command.
package monitortest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor"
	"github.com/svrkit/svrkit/svrkit/monitor/center"
	"github.com/svrkit/svrkit/svrkit/monitor/monitorpb"
)

// Center is a center served over svrkit RPC and HTTP on loopback.
type Center struct {
	*center.Center
	// Addr is the RPC address; URL the dashboard's.
	Addr, URL string
	opts      []svrkit.ServerOption
	rpc       *svrkit.Server
	web       *http.Server
}

// StartCenter opens a center with cfg and serves it until the test ends.
func StartCenter(t testing.TB, cfg center.Config, opts ...svrkit.ServerOption) *Center {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	c, err := center.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tc := &Center{Center: c, opts: opts}
	tc.StartRPC(t, "127.0.0.1:0")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tc.URL = "http://" + ln.Addr().String() + "/"
	tc.web = &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go tc.web.Serve(ln)
	t.Cleanup(func() {
		tc.StopRPC()
		tc.web.Close()
		c.Close()
	})
	return tc
}

// StartRPC serves the center's services at addr (again, after StopRPC).
func (c *Center) StartRPC(t testing.TB, addr string) {
	t.Helper()
	srv := svrkit.NewServer(c.opts...)
	monitorpb.RegisterMonitorIngestServer(srv, c.IngestServer())
	monitorpb.RegisterMonitorQueryServer(srv, c.QueryServer())
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := srv.Start(addr)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("center RPC on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond) // the old listener's port is being released
	}
	c.rpc, c.Addr = srv, srv.Addr().String()
}

// StopRPC stops serving RPC: the center is down for agents.
func (c *Center) StopRPC() {
	if c.rpc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.rpc.Shutdown(ctx)
	c.rpc = nil
}

// Total sums a series' curve over [from, to].
func (c *Center) Total(t testing.TB, name string, from, to time.Time) (total float64, points int) {
	t.Helper()
	r, err := c.Query(&monitorpb.QueryRequest{Name: name, FromUnixMs: from.UnixMilli(), ToUnixMs: to.UnixMilli(), MaxPoints: center.MaxQueryPoints})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range r.GetSum().GetValues() {
		if v == v { // not NaN
			total += v
			points++
		}
	}
	return total, points
}

// IDs the child processes declare.
const (
	CounterID monitor.ID = 7001
	GaugeID   monitor.ID = 7002
)

// Decls are the points the child processes declare.
var Decls = []monitor.Decl{
	{ID: CounterID, Name: "test.requests", Unit: "count", Kind: monitor.Counter, Alert: "sum over 10s > 1000000"},
	{ID: GaugeID, Name: "test.connections", Unit: "connections", Kind: monitor.Gauge},
}

const childEnv = "MONITORTEST_CHILD"

// RunChildIfAsked is for TestMain: in a child started by StartProcess it
// serves the parent's commands and exits; otherwise it returns.
func RunChildIfAsked() {
	args := os.Getenv(childEnv)
	if args == "" {
		return
	}
	service, dir, _ := strings.Cut(args, ":")
	monitor.Declare(Decls...)
	if err := monitor.Open(monitor.Options{Service: service, Dir: dir}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Println(monitor.Region())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		n, _ := strconv.ParseInt(arg, 10, 64)
		switch cmd {
		case "add":
			monitor.Add(CounterID, n)
		case "set":
			monitor.Set(GaugeID, n)
		case "exit":
			os.Exit(0) // no cleanup: as a crash would
		}
		fmt.Println("ok")
	}
	os.Exit(0)
}

// Process is a monitored child process.
type Process struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	Region string
}

// StartProcess runs this test binary as a monitored process of service,
// with its region in dir.
func StartProcess(t testing.TB, service, dir string) *Process {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+service+":"+dir)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	line, err := p.out.ReadString('\n')
	if err != nil {
		t.Fatalf("monitored process: %v", err)
	}
	p.Region = strings.TrimSpace(line)
	return p
}

// Do sends one command ("add 5", "set 3") and waits for it to be done.
func (p *Process) Do(t testing.TB, cmd string) {
	t.Helper()
	if _, err := fmt.Fprintln(p.in, cmd); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := p.out.ReadString('\n'); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("monitored process: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("monitored process did not answer %q within 10s", cmd)
	}
}

// Exit ends the process without cleanup and waits for it.
func (p *Process) Exit(t testing.TB) {
	t.Helper()
	fmt.Fprintln(p.in, "exit")
	p.cmd.Wait()
}
