package svrkit_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/wire"
)

// Hostile peers: each offender gets a defined close (or is simply
// ignored, where that is harmless), memory stays bounded, and a
// well-behaved client keeps getting answers throughout.

// wellBehaved calls echo on s until stop closes, and fails the test if a
// call fails or takes longer than a second.
func wellBehaved(t *testing.T, addr string, stop <-chan struct{}) *sync.WaitGroup {
	t.Helper()
	c := newClient(t, addr)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			start := time.Now()
			err := c.Invoke(ctx, methodByCmd(cmdEcho), wrapperspb.Bytes([]byte("ok")), new(wrapperspb.BytesValue))
			cancel()
			if err != nil {
				t.Errorf("well-behaved client: %v", err)
				return
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("well-behaved client waited %v", took)
			}
			time.Sleep(5 * time.Millisecond) // a steady trickle of calls, not a wait
		}
	}()
	return &wg
}

func TestHostileLengthPrefix(t *testing.T) {
	s := startServer(t, &testService{})
	stop := make(chan struct{})
	wg := wellBehaved(t, s.Addr().String(), stop)
	defer func() { close(stop); wg.Wait() }()
	for _, size := range []uint32{0xFFFFFFFF, wire.DefaultMaxFrameSize + 1, 3} {
		nc := dialRaw(t, s)
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], size)
		nc.Write(b[:])
		expectClosed(t, nc)
	}
}

// A frame trickled a byte at a time is cut off by the frame timeout.
func TestHostileTrickledFrame(t *testing.T) {
	s := startServer(t, &testService{}, svrkit.WithFrameTimeout(500*time.Millisecond))
	nc := dialRaw(t, s)
	frame, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindRequest, ReqID: 1, CmdID: cmdEcho}, nil, "", make([]byte, 200), 0)
	closed := make(chan struct{})
	go func() {
		expectClosed(t, nc)
		close(closed)
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(15 * time.Second)
	for i := 0; ; i++ {
		select {
		case <-closed:
			return
		case <-deadline:
			t.Fatal("a trickled frame still held its connection after 15s")
		case <-tick.C:
			if i < len(frame)-1 {
				nc.Write(frame[i : i+1])
			}
		}
	}
}

// Cancel frames for ids that are not in flight are ignored; a flood of
// them and of pings hurts no one else.
func TestHostileCancelAndPingFlood(t *testing.T) {
	s := startServer(t, &testService{})
	stop := make(chan struct{})
	wg := wellBehaved(t, s.Addr().String(), stop)
	nc := dialRaw(t, s)
	var flood []byte
	for i := range 1000 {
		flood, _ = wire.AppendFrame(flood, &wire.Header{Kind: wire.KindCancel, ReqID: uint32(i)}, nil, "", nil, 0)
		flood, _ = wire.AppendFrame(flood, &wire.Header{Kind: wire.KindPing, ReqID: uint32(i)}, nil, "", []byte("ping"), 0)
	}
	var pongs atomic.Int64
	go func() {
		for {
			f, err := readFrameErr(nc)
			if err != nil {
				return
			}
			if f.Kind == wire.KindPong {
				pongs.Add(1)
			}
		}
	}()
	for range 20 {
		if _, err := nc.Write(flood); err != nil {
			t.Fatalf("flooder cut off while reading its pongs: %v", err)
		}
	}
	waitFor(t, func() bool { return pongs.Load() == 20*1000 })
	close(stop)
	wg.Wait()
}

// Connections that send nothing cost little and are closed by the idle
// timeout; the server keeps answering others while it holds thousands.
// The server runs in its own process: the two ends of 15,000 connections
// would not fit one process's descriptor limit.
func TestHostileIdleConnections(t *testing.T) {
	const n = 15000
	addr, pid := startStallableServer(t, stallServerIdleEnv+"=3s")
	before := rss(t, pid)
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for len(conns) < n {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", len(conns), err)
		}
		conns = append(conns, nc)
	}
	c := newClient(t, addr)
	var held int64
	stable := 0
	waitFor(t, func() bool {
		// The server has accepted and set up every connection once its
		// memory stops growing; meanwhile it answers calls.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Invoke(ctx, methodByCmd(cmdEcho), wrapperspb.Bytes([]byte("ok")), new(wrapperspb.BytesValue)); err != nil {
			t.Fatalf("call while %d idle connections are held: %v", n, err)
		}
		now := rss(t, pid)
		if now > held {
			held, stable = now, 0
		} else {
			stable++
		}
		return stable >= 20 // unchanged over many polls: every connection is set up
	})
	per := (held - before) / n
	t.Logf("%d idle connections: server RSS %d KiB -> %d KiB, %d bytes each", n, before>>10, held>>10, per)
	if per > 32<<10 {
		t.Errorf("an idle connection costs the server %d bytes", per)
	}
	// The idle timeout closes them: a sample reads EOF.
	for _, nc := range []net.Conn{conns[0], conns[n/2], conns[n-1]} {
		expectClosed(t, nc)
	}
}

// rss returns a process's resident memory in bytes.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// A peer that resets its connection at once, before the server's hello is
// written, costs nothing but its connection. The hello's write then fails
// on the event loop, and gnet closes the connection inside that write; the
// server must not be holding a lock its close handler takes (it was: the
// loop hung, and every connection on it).
func TestHostileResetBeforeHello(t *testing.T) {
	s := startServer(t, &testService{})
	stop := make(chan struct{})
	wg := wellBehaved(t, s.Addr().String(), stop)
	defer func() { close(stop); wg.Wait() }()
	for range 500 {
		nc, err := net.DialTimeout("tcp", s.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		nc.(*net.TCPConn).SetLinger(0) // close sends RST
		nc.Close()
	}
	c := newClient(t, s.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Invoke(ctx, methodByCmd(cmdEcho), wrapperspb.Bytes([]byte("ok")), new(wrapperspb.BytesValue)); err != nil {
		t.Fatalf("a new client after 500 resets: %v", err)
	}
}
