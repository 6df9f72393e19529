package svrkit_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svrkit/svrkit/svrkit"
)

// stallServerEnv makes the test binary, re-executed by startStallableServer,
// serve the test service on loopback instead of running tests: a real
// process that the test can stop with SIGSTOP.
const stallServerEnv = "SVRKIT_TEST_SERVE"

// stallServerIdleEnv, if set, is the server process's idle timeout.
const stallServerIdleEnv = "SVRKIT_TEST_SERVE_IDLE"

// serveForStallTest runs when the test binary was started as a server; it
// prints the address, then serves until killed.
func serveForStallTest() {
	var opts []svrkit.ServerOption
	if d, err := time.ParseDuration(os.Getenv(stallServerIdleEnv)); err == nil {
		opts = append(opts, svrkit.WithIdleTimeout(d))
	}
	s := svrkit.NewServer(opts...)
	s.RegisterService(&testDesc, &testService{})
	if err := s.Start("127.0.0.1:0"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(s.Addr().String())
	select {}
}

// startStallableServer starts the test service in its own process and
// returns its address and pid; the process is killed when the test ends
// (after SIGCONT, so a stopped one dies too).
func startStallableServer(t *testing.T, env ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), stallServerEnv+"=1"), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	select {
	case a := <-addr:
		if a == "" {
			t.Fatal("server process printed no address")
		}
		return a, cmd.Process.Pid
	case <-time.After(30 * time.Second):
		t.Fatal("server process did not start within 30s")
	}
	return "", 0
}

// A server that stops reading (here SIGSTOPped) must not make a caller
// miss its deadline: 64 concurrent 256 KiB requests, each with a 100 ms
// deadline, fill the socket buffers within the first few; every call must
// still return by its deadline plus scheduling slack, and the client must
// work again once the server resumes.
func TestStalledServerKeepsDeadlines(t *testing.T) {
	addr, pid := startStallableServer(t)
	c := newClient(t, addr, svrkit.WithHealthInterval(2*time.Second))
	echo := methodByCmd(cmdEcho)
	if err := c.Invoke(ctxTimeout(t, 10*time.Second), echo, wrapperspb.Bytes([]byte("warm")), new(wrapperspb.BytesValue)); err != nil {
		t.Fatalf("warm-up call: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}

	const (
		callers  = 64
		deadline = 100 * time.Millisecond
		// Generous for a loaded 2-core CI machine (a busy machine delays
		// the timers' goroutines; 1.3 s was seen at load average 20); the
		// bug made calls return until the health check (three 2 s
		// intervals here) gave up, 6 s late.
		slack = 2 * time.Second
	)
	payload := wrapperspb.Bytes(make([]byte, 256<<10))
	late := make([]time.Duration, callers)
	codes := make([]svrkit.Code, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			err := c.Invoke(ctx, echo, payload, new(wrapperspb.BytesValue))
			late[i] = time.Since(start) - deadline
			codes[i] = svrkit.CodeOf(err)
		}()
	}
	waitGroupWithin(t, &wg, 30*time.Second)
	sort.Slice(late, func(a, b int) bool { return late[a] < late[b] })
	for i, code := range codes {
		switch code {
		case svrkit.DeadlineExceeded, svrkit.ResourceExhausted, svrkit.Unavailable:
		default:
			t.Errorf("call %d: code %v, want deadline_exceeded, resource_exhausted or unavailable", i, code)
		}
	}
	if worst := late[callers-1]; worst > slack {
		t.Errorf("slowest call returned %v after its deadline (median %v); want ≤ %v", worst, late[callers/2], slack)
	}

	// The health check may have given up on the connection meanwhile; once
	// the server runs again, calls succeed (on the old connection or a new
	// one) within a few health intervals.
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return c.Invoke(ctx, echo, wrapperspb.Bytes([]byte("again")), new(wrapperspb.BytesValue)) == nil
	})
}

// The client bounds the bytes it holds for one connection: with the server
// stalled, requests past the bound are refused at once with
// ResourceExhausted instead of queueing without end.
func TestStalledServerPendingBytesBounded(t *testing.T) {
	addr, pid := startStallableServer(t)
	c := newClient(t, addr, svrkit.WithConnsPerEndpoint(1), svrkit.WithMaxPendingBytes(1<<20))
	echo := methodByCmd(cmdEcho)
	if err := c.Invoke(ctxTimeout(t, 10*time.Second), echo, wrapperspb.Bytes([]byte("warm")), new(wrapperspb.BytesValue)); err != nil {
		t.Fatalf("warm-up call: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	payload := wrapperspb.Bytes(make([]byte, 512<<10))
	// Far more than the kernel buffers plus the 1 MiB bound can hold.
	var wg sync.WaitGroup
	var mu sync.Mutex
	exhausted := 0
	var fastest time.Duration = time.Hour
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			start := time.Now()
			err := c.Invoke(ctx, echo, payload, new(wrapperspb.BytesValue))
			if svrkit.CodeOf(err) == svrkit.ResourceExhausted {
				mu.Lock()
				exhausted++
				fastest = min(fastest, time.Since(start))
				mu.Unlock()
			}
		}()
	}
	waitGroupWithin(t, &wg, 30*time.Second)
	if exhausted == 0 {
		t.Fatal("no call was refused with resource_exhausted while the server was stalled")
	}
	if fastest > 500*time.Millisecond {
		t.Errorf("refusals took %v; want them at once", fastest)
	}
}

func waitGroupWithin(t *testing.T, wg *sync.WaitGroup, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("calls still running after %v", d)
	}
}

// A call with no deadline on a stalled server is not stuck forever: the
// connection that cannot drain (and hears nothing) is failed with
// Unavailable after three health intervals.
func TestStalledServerFailsConnection(t *testing.T) {
	addr, pid := startStallableServer(t)
	c := newClient(t, addr, svrkit.WithHealthInterval(200*time.Millisecond), svrkit.WithRetries(0))
	echo := methodByCmd(cmdEcho)
	if err := c.Invoke(ctxTimeout(t, 10*time.Second), echo, wrapperspb.Bytes([]byte("warm")), new(wrapperspb.BytesValue)); err != nil {
		t.Fatalf("warm-up call: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- c.Invoke(context.Background(), echo, wrapperspb.Bytes(make([]byte, 3<<20)), new(wrapperspb.BytesValue))
	}()
	select {
	case err := <-done:
		if svrkit.CodeOf(err) != svrkit.Unavailable {
			t.Fatalf("call on a stalled server: %v, want unavailable", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("call without deadline still waiting on a stalled server after 15s")
	}
}

// blackholeAddr returns a loopback address whose connects hang: a socket
// that listens with the smallest backlog, filled and never accepted, so
// the kernel drops further SYNs.
func blackholeAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the accept queue until a connect no longer completes at once.
	for i := 0; i < 16; i++ {
		nc, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { nc.Close() })
	}
	t.Skip("could not make a listener that drops connects")
	return ""
}

// While one caller's dial hangs (the address drops SYNs), a caller with a
// short deadline still returns by its deadline instead of queueing behind
// the dial. (Whichever call starts the dial, it runs to the dial timeout
// for the patient one.)
func TestHangingDialKeepsDeadlines(t *testing.T) {
	addr := blackholeAddr(t)
	c := newClient(t, addr, svrkit.WithDialTimeout(3*time.Second), svrkit.WithRetries(0))
	echo := methodByCmd(cmdEcho)
	first := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		first <- c.Invoke(ctx, echo, wrapperspb.Bytes(nil), new(wrapperspb.BytesValue))
	}()
	// Several short calls one after another: whichever call started the
	// dial, the later ones find it in progress.
	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		err := c.Invoke(ctx, echo, wrapperspb.Bytes(nil), new(wrapperspb.BytesValue))
		cancel()
		if took := time.Since(start); took > time.Second {
			t.Fatalf("short-deadline call %d returned after %v (%v)", i, took, err)
		}
		if svrkit.CodeOf(err) != svrkit.DeadlineExceeded {
			t.Fatalf("short-deadline call %d: %v, want deadline_exceeded", i, err)
		}
	}
	select {
	case err := <-first:
		if svrkit.CodeOf(err) != svrkit.Unavailable {
			t.Fatalf("first call: %v, want unavailable after the dial timeout", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("first call still waiting 20s after its dial timeout")
	}
}
