// Command linkbench measures how many idle, authenticated long connections
// one IM gateway holds, and what each costs the gateway in memory.
//
//	go run ./tools/svrkit up examples/im                          # terminal 1
//	go run ./examples/im/linkbench -conns 15000 -procs 4 -runs 3
//
// It registers a few users, then starts -procs client processes (itself,
// with -child), because one process may hold only so many descriptors
// (20,000 here) and the clients' own memory must not be counted. Each child
// dials its share of the connections to the gateway's long-link port and
// authenticates every one as a device of its own (tokens signed with the
// backend's session secret, -secret, so that 15,000 devices need no 15,000
// password hashes), then holds them idle, pinging each once per heartbeat
// as a real client would. With every connection authenticated, linkbench
// reads the gateway process's resident memory (VmRSS in /proc/PID/status)
// and reports the growth since before the run, per connection. Then the
// children close everything and the next run starts.
//
// RSS is what the machine pays, garbage the gateway has not collected
// yet included, so the figure is an upper bound. Every run restarts the
// gateway first (SIGTERM; svrkit up starts it again), since a
// gateway reuses the memory earlier connections grew; the report gives
// each run and the median.
//
// The backend's authentication path is the real one: the gateway checks
// each token and each account's revocations and registers each device with
// presence before it answers the auth.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/svrkit/svrkit/examples/im/imclient"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/examples/im/link"
	"github.com/svrkit/svrkit/svrkit/wire"
	"github.com/svrkit/svrkit/tools/svrkit/upstate"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "-child" {
		os.Exit(child(os.Args[2:]))
	}
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("linkbench", flag.ContinueOnError)
	state := fs.String("up", "examples/im/.data/up.json", "svrkit up's state file of the running backend")
	conns := fs.Int("conns", 15000, "connections to hold")
	procs := fs.Int("procs", 4, "client processes")
	users := fs.Int("users", 10, "users the connections belong to (devices spread over them)")
	runs := fs.Int("runs", 3, "runs")
	secret := fs.String("secret", "dev-only: set your own secret in production", "the backend's session_secret (topology.json's by default)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *conns < 1 || *procs < 1 || *users < 1 || *runs < 1 {
		fmt.Fprintln(os.Stderr, "linkbench: -conns, -procs, -users and -runs must be positive")
		return 2
	}
	st, err := upstate.Read(*state)
	if err != nil {
		fmt.Fprintf(os.Stderr, "linkbench: %v\n", err)
		return 1
	}
	gw, ok := st.Find("gateway")
	if !ok || gw.Ports["link"] == "" || gw.PID == 0 {
		fmt.Fprintf(os.Stderr, "linkbench: %s has no running gateway\n", *state)
		return 1
	}
	addrs, err := imclient.ReadStateFile(*state)
	if err != nil {
		fmt.Fprintf(os.Stderr, "linkbench: %v\n", err)
		return 1
	}
	ids, err := register(ctx, addrs, *users)
	if err != nil {
		fmt.Fprintf(os.Stderr, "linkbench: %v\n", err)
		return 1
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "linkbench: %v\n", err)
		return 1
	}
	loadavg, _ := os.ReadFile("/proc/loadavg") // how busy the machine was: the figures depend on it
	fmt.Printf("linkbench: %s, gateway pid %d at %s, %d connections from %d processes, /proc/loadavg %s",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), gw.PID, gw.Ports["link"], *conns, *procs, loadavg)
	var held, perConn []float64
	for r := range *runs {
		// A fresh gateway for every run: one that held connections
		// before reuses the memory they grew, which would hide the cost.
		if gw, err = restart(ctx, *state, gw); err != nil {
			fmt.Fprintf(os.Stderr, "linkbench: %v\n", err)
			return 1
		}
		res, err := oneRun(ctx, exe, gw, *conns, *procs, ids, *secret, r)
		if err != nil {
			fmt.Fprintf(os.Stderr, "linkbench: run %d: %v\n", r+1, err)
			return 1
		}
		fmt.Printf("run %d: %d of %d authenticated and held (%d failed); gateway RSS %.1f → %.1f MiB: %.2f KiB per connection; auth of all took %v\n",
			r+1, res.ok, *conns, res.failed, mib(res.before), mib(res.after), res.perConn()/1024, res.took.Round(time.Millisecond))
		held = append(held, float64(res.ok))
		perConn = append(perConn, res.perConn())
	}
	fmt.Printf("median: %.0f connections held, %.2f KiB per idle connection\n", median(held), median(perConn)/1024)
	return 0
}

type result struct {
	ok, failed    int
	before, after int64 // gateway VmRSS, bytes
	took          time.Duration
}

func (r result) perConn() float64 {
	if r.ok == 0 {
		return 0
	}
	return float64(r.after-r.before) / float64(r.ok)
}

// oneRun starts the children, waits for their connections, measures, and
// stops them.
func oneRun(ctx context.Context, exe string, gw upstate.Instance, conns, procs int, ids []uint64, secret string, run int) (result, error) {
	var res result
	var err error
	if res.before, err = rss(gw.PID); err != nil {
		return res, err
	}
	idList := make([]string, len(ids))
	for i, id := range ids {
		idList[i] = strconv.FormatUint(id, 10)
	}
	type kid struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		lines *bufio.Scanner
	}
	var kids []kid
	defer func() {
		for _, k := range kids {
			k.stdin.Close()
			done := make(chan struct{})
			go func() { _ = k.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = k.cmd.Process.Kill()
				<-done
			}
		}
	}()
	start := time.Now()
	for p := range procs {
		n := conns / procs
		if p < conns%procs {
			n++
		}
		cmd := exec.CommandContext(ctx, exe, "-child", "-addr", gw.Ports["link"], "-secret", secret,
			"-users", strings.Join(idList, ","), "-n", strconv.Itoa(n), "-prefix", fmt.Sprintf("bench-r%d-p%d-", run, p))
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return res, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return res, err
		}
		if err := cmd.Start(); err != nil {
			return res, err
		}
		kids = append(kids, kid{cmd, stdin, bufio.NewScanner(stdout)})
	}
	// Each child prints "ready OK FAILED" once every connection is
	// authenticated or refused.
	for _, k := range kids {
		if !k.lines.Scan() {
			return res, errors.New("a client process exited early")
		}
		var ok, failed int
		if _, err := fmt.Sscanf(k.lines.Text(), "ready %d %d", &ok, &failed); err != nil {
			return res, fmt.Errorf("client process said %q", k.lines.Text())
		}
		res.ok += ok
		res.failed += failed
	}
	res.took = time.Since(start)
	// Let the auth work (presence registrations, the goroutines that ran
	// them) finish and settle before measuring.
	time.Sleep(5 * time.Second)
	if res.after, err = rss(gw.PID); err != nil {
		return res, err
	}
	return res, nil
}

// restart stops the gateway (SIGTERM: it shuts down gracefully and svrkit
// up starts it again) and waits, bounded, for the new process to be ready.
func restart(ctx context.Context, state string, gw upstate.Instance) (upstate.Instance, error) {
	if err := syscall.Kill(gw.PID, syscall.SIGTERM); err != nil {
		return gw, fmt.Errorf("stopping the gateway: %w", err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if st, err := upstate.Read(state); err == nil {
			if in, ok := st.Instance(gw.Name); ok && in.PID != gw.PID && in.State == upstate.Ready {
				time.Sleep(2 * time.Second) // let it finish starting (presence lease, first sweep)
				return in, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return gw, errors.New("the gateway did not come back within 2 minutes (is svrkit up running?)")
}

// register registers n users and returns their ids.
func register(ctx context.Context, addrs imclient.Addrs, n int) ([]uint64, error) {
	prefix := "linkbench" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	var ids []uint64
	for i := range n {
		id, err := imclient.New(addrs).Register(ctx, fmt.Sprintf("%s_%d", prefix, i), "linkbench-password", "")
		if err != nil {
			return nil, fmt.Errorf("register: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// child holds -n connections until its stdin closes.
func child(args []string) int {
	fs := flag.NewFlagSet("linkbench -child", flag.ContinueOnError)
	addr := fs.String("addr", "", "gateway link address")
	secret := fs.String("secret", "", "session secret")
	userList := fs.String("users", "", "user ids")
	n := fs.Int("n", 0, "connections")
	prefix := fs.String("prefix", "bench-", "device id prefix")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	signer, err := session.NewSigner(*secret, session.DefaultTTL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var users []uint64
	for _, f := range strings.Split(*userList, ",") {
		id, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad user id", f)
			return 2
		}
		users = append(users, id)
	}
	now := time.Now()
	var (
		ok, failed atomic.Int64
		mu         sync.Mutex
		held       []net.Conn
		wg         sync.WaitGroup
		sem        = make(chan struct{}, 256) // dials and auths in flight
	)
	for i := range *n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			device := *prefix + strconv.Itoa(i)
			tok, err := signer.Sign(session.Claims{UserID: users[i%len(users)], DeviceID: device, IssuedAt: now, Expires: now.Add(time.Hour)})
			if err == nil {
				var nc net.Conn
				if nc, err = authenticate(*addr, tok); err == nil {
					mu.Lock()
					held = append(held, nc)
					mu.Unlock()
					ok.Add(1)
					return
				}
			}
			if failed.Add(1) <= 3 {
				fmt.Fprintf(os.Stderr, "linkbench: connection %d: %v\n", i, err)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("ready %d %d\n", ok.Load(), failed.Load())
	// Hold: ping every connection once per 30s (the gateway's heartbeat;
	// its idle cutoff is 90s) and drain what comes back, until stdin ends.
	stop := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stop) }()
	for _, nc := range held {
		go func() { _, _ = io.Copy(io.Discard, nc) }()
	}
	ping, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindPing, ReqID: 1}, nil, "", nil, 0)
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			for _, nc := range held {
				nc.Close()
			}
			return 0
		case <-tick.C:
			for _, nc := range held {
				_, _ = nc.Write(ping)
			}
		}
	}
}

// authenticate dials and authenticates one connection.
func authenticate(addr, token string) (net.Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return nil, err
	}
	auth, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindAuth}, nil, "", []byte(token), 0)
	_ = nc.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := nc.Write(auth); err != nil {
		nc.Close()
		return nil, err
	}
	var pre [wire.PrefixSize]byte
	if _, err := io.ReadFull(nc, pre[:]); err != nil {
		nc.Close()
		return nil, err
	}
	size, err := wire.FrameSize(pre[:], link.MaxServerFrame)
	if err != nil {
		nc.Close()
		return nil, err
	}
	buf := make([]byte, size)
	copy(buf, pre[:])
	if _, err := io.ReadFull(nc, buf[wire.PrefixSize:]); err != nil {
		nc.Close()
		return nil, err
	}
	f, err := wire.Parse(buf, link.MaxServerFrame)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if f.Kind != wire.KindResponse || f.Status != 0 {
		nc.Close()
		return nil, fmt.Errorf("auth refused: status %d %s", f.Status, f.Msg)
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, nil
}

// rss reads a process's resident set size.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
