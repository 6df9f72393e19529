// Package imtest runs the whole IM backend for tests: it builds the svrkit
// tool, starts `svrkit up` on examples/im as a real process, with its data,
// work and binary directories in temporary directories, and reads up's state
// file to find each service's addresses and process. Tests use it to talk to
// the backend over real HTTP and to SIGKILL services in the middle of the
// traffic; up restarts them, as it would on a developer's machine.
//
// Everything it starts is stopped by the test's cleanup: up gets SIGINT and
// stops its services (SIGTERM, then SIGKILL), and any process still alive
// after that is killed by process group.
package imtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/tools/svrkit/upstate"
)

// Instance is one running service instance, as up's state file describes
// it (package upstate).
type Instance = upstate.Instance

// Backend is a running `svrkit up` of the IM backend.
type Backend struct {
	// StateFile is up's state file, for clients that read it themselves.
	StateFile string

	t    testing.TB
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

// readyTimeout bounds the build and start: a clean machine compiles
// pebble and eight binaries.
const readyTimeout = 5 * time.Minute

// Start builds and starts the backend of examples/im (found from this source
// file) and returns when every instance is ready. It fails the test if that
// does not happen in time.
func Start(t testing.TB) *Backend {
	t.Helper()
	return StartTopology(t, "")
}

// StartTopology is Start with another topology file of examples/im
// ("topology-sharded.json"); "" is the default, topology.json.
func StartTopology(t testing.TB, topology string) *Backend {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	imDir := filepath.Dir(filepath.Dir(self))
	target := imDir
	if topology != "" {
		target = filepath.Join(imDir, topology)
	}
	tmp := t.TempDir()
	tool := filepath.Join(tmp, "svrkit")
	build := exec.Command("go", "build", "-o", tool, "github.com/svrkit/svrkit/tools/svrkit")
	build.Dir = imDir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building svrkit: %v\n%s", err, out)
	}
	b := &Backend{
		t:         t,
		StateFile: filepath.Join(tmp, "data", upstate.FileName),
		out:       &lockedBuffer{},
		done:      make(chan struct{}),
	}
	b.cmd = exec.Command(tool, "up", "-datadir", filepath.Join(tmp, "data"), "-workdir", filepath.Join(tmp, "work"),
		"-bindir", filepath.Join(tmp, "bin"), "-ready-timeout", readyTimeout.String(),
		"-stop-timeout", "10s", target)
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	b.cmd.Stdin = strings.NewReader("")
	b.cmd.Env = append(os.Environ(), "NO_COLOR=1")
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("starting svrkit up: %v", err)
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	t.Cleanup(b.stop)

	deadline := time.After(readyTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !b.allReady() {
		select {
		case <-b.done:
			t.Fatalf("svrkit up exited before the backend was ready:\n%s", b.Output())
		case <-deadline:
			t.Fatalf("backend not ready within %v:\n%s", readyTimeout, b.Output())
		case <-tick.C:
		}
	}
	return b
}

func (b *Backend) allReady() bool {
	st, err := upstate.Read(b.StateFile)
	return err == nil && st.AllReady()
}

// Instances reads up's state file.
func (b *Backend) Instances() ([]Instance, error) {
	st, err := upstate.Read(b.StateFile)
	if err != nil {
		return nil, err
	}
	return st.Instances, nil
}

// Instance returns the named instance ("send", or "send-1" with replicas).
func (b *Backend) Instance(name string) Instance {
	b.t.Helper()
	st, err := upstate.Read(b.StateFile)
	if err != nil {
		b.t.Fatalf("reading %s: %v", b.StateFile, err)
	}
	in, ok := st.Instance(name)
	if !ok {
		b.t.Fatalf("no instance %q in %s", name, b.StateFile)
	}
	return in
}

// RPC returns a binary RPC client of the named instance that proves
// identity with the key svrkit up made for it ("send" to call as the send
// Logicsvr would, "operator" to call anything), closed when the test ends.
func (b *Backend) RPC(name, identity string) *svrkit.Client {
	b.t.Helper()
	key, err := svrkit.ReadKey(svrkit.KeyPath(filepath.Join(filepath.Dir(b.StateFile), "keys"), identity))
	if err != nil {
		b.t.Fatal(err)
	}
	c, err := svrkit.NewClient(b.Instance(name).RPC, svrkit.WithIdentity(identity, key))
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { c.Close() })
	return c
}

// Kill SIGKILLs the named instance's process (up restarts it) and returns
// the killed pid.
func (b *Backend) Kill(name string) (int, error) {
	in := b.Instance(name)
	if in.PID == 0 || in.State != upstate.Ready {
		return 0, fmt.Errorf("imtest: %s is %s", name, in.State)
	}
	return in.PID, syscall.Kill(in.PID, syscall.SIGKILL)
}

// WaitReady waits, up to d, until the named instance runs a process other
// than notPID and is ready.
func (b *Backend) WaitReady(ctx context.Context, name string, notPID int, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		if st, err := upstate.Read(b.StateFile); err == nil {
			if in, ok := st.Instance(name); ok && in.State == upstate.Ready && in.PID != notPID {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("imtest: %s not ready again within %v", name, d)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Output returns what up and the services printed so far.
func (b *Backend) Output() string { return b.out.String() }

// stop ends up with SIGINT (it stops every service), bounded, and kills any
// process group left behind.
func (b *Backend) stop() {
	insts, _ := b.Instances()
	_ = b.cmd.Process.Signal(os.Interrupt)
	select {
	case <-b.done:
	case <-time.After(45 * time.Second):
		b.t.Errorf("svrkit up did not stop within 45s of SIGINT; killing it")
		_ = b.cmd.Process.Kill()
		<-b.done
	}
	for _, in := range insts {
		if in.PID > 0 && syscall.Kill(in.PID, 0) == nil {
			if err := syscall.Kill(-in.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				b.t.Errorf("killing %s: %v", in.Name, err)
			}
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
