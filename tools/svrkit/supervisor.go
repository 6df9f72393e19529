package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/svrkit/svrkit/tools/svrkit/upstate"
)

// instance is one running copy of a service, supervised by up.
type instance struct {
	svc              *topoService
	name             string
	http, rpc, admin string            // reserved loopback addresses, kept across restarts
	ports            map[string]string // the service's extra ports, likewise

	mu       sync.Mutex
	state    string // an upstate state
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
		u.logf("all services ready; Enter shows their status, Ctrl-C (or SIGTERM) stops them")
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

var errStopping = errors.New("stopping")

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
	in.cmd, in.exited, in.state = cmd, exited, upstate.Starting
	in.mu.Unlock()
	u.saveState()
	return nil
}

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
			if st != upstate.Ready {
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
			in.setState(upstate.Ready)
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
		if in.state == upstate.Stopping || in.state == upstate.Stopped {
			in.mu.Unlock()
			return
		}
		code := in.cmd.ProcessState.String()
		in.state = upstate.Crashed
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
		in.state = upstate.Stopping
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
			in.setState(upstate.Stopped)
		}()
	}
	wg.Wait()
}
