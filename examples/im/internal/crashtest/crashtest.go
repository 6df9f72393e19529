// Package crashtest lets a storage test check what survives a real crash: it
// re-executes the test binary to run one test function as a child process,
// reads what the child reports over a pipe, and kills it with SIGKILL at a
// moment of the parent's choosing — no deferred code, no Close, no flush runs
// in the child. The parent then reopens the store and checks that everything
// the child reported as acknowledged is there.
//
// A crash test is two test functions in the same package:
//
//	func TestCrashChild(t *testing.T) {
//		dir, ok := crashtest.ChildDir()
//		if !ok {
//			t.Skip("child process of TestCrash")
//		}
//		// open the store in dir; loop: write, then crashtest.Report(...)
//	}
//
//	func TestCrash(t *testing.T) {
//		dir := t.TempDir()
//		crashtest.Run(t, "TestCrashChild", dir, 30*time.Second, func(line string) bool {
//			// record line; return true to kill the child now
//		})
//		// reopen the store in dir and check
//	}
package crashtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	envDir = "CRASHTEST_DIR"
	prefix = "crashtest: "
)

// ChildDir returns the directory the parent passed, and whether this process
// is a crash test's child at all. Child test functions skip when it is not.
func ChildDir() (string, bool) {
	dir := os.Getenv(envDir)
	return dir, dir != ""
}

// Report sends one line to the parent. The child calls it only after the
// operation it reports has been acknowledged by the store. Report writes
// straight to the pipe, unbuffered, so a line the parent has read was sent
// before the kill.
func Report(format string, args ...any) {
	line := prefix + fmt.Sprintf(format, args...) + "\n"
	if _, err := os.Stdout.WriteString(line); err != nil {
		os.Exit(3) // the parent went away
	}
}

// Run starts the test binary running only childTest with dir, hands each line
// the child reports to handle, and SIGKILLs the child as soon as handle
// returns true. It fails the test if the child exits on its own before that,
// or if timeout passes first.
func Run(t testing.TB, childTest, dir string, timeout time.Duration, handle func(line string) (kill bool)) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+childTest+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), envDir+"="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var timedOut atomic.Bool
	timer := time.AfterFunc(timeout, func() {
		timedOut.Store(true)
		cmd.Process.Signal(syscall.SIGKILL)
	})
	defer timer.Stop()

	sc := bufio.NewScanner(out)
	stopped := false
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue // output of the test framework, not of the child's code
		}
		if handle(line) {
			stopped = true
			cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	// Drain so the child never blocks on a full pipe before the kill lands.
	for sc.Scan() {
	}
	werr := cmd.Wait()
	switch {
	case !stopped && timedOut.Load():
		t.Fatalf("crash child %s: no kill decision within %v; stderr:\n%s", childTest, timeout, stderr.String())
	case !stopped:
		t.Fatalf("crash child %s exited on its own (%v); stderr:\n%s", childTest, werr, stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("crash child %s did not die of SIGKILL: %v; stderr:\n%s", childTest, werr, stderr.String())
	}
}
