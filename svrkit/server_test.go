package svrkit_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/wire"
)

func TestEcho(t *testing.T) {
	s := startServer(t, &testService{})
	c := newClient(t, s.Addr().String())
	for _, n := range []int{0, 16, 1024, 16 << 10, 1 << 20} {
		req := wrapperspb.Bytes(bytes.Repeat([]byte{'x'}, n))
		resp := new(wrapperspb.BytesValue)
		if err := c.Invoke(ctxTimeout(t, 5*time.Second), methodByCmd(cmdEcho), req, resp); err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if !bytes.Equal(resp.Value, req.Value) {
			t.Fatalf("size %d: echo mismatch", n)
		}
	}
}

// Many callers share few connections; handlers finish in random order, and
// every caller must get its own answer.
func TestConcurrentOutOfOrder(t *testing.T) {
	s := startServer(t, &testService{})
	c := newClient(t, s.Addr().String(), svrkit.WithConnsPerEndpoint(2))
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for i := range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := time.Duration(rand.IntN(30)) * time.Millisecond
			resp := new(durationpb.Duration)
			if err := c.Invoke(ctxTimeout(t, 10*time.Second), methodByCmd(cmdSleep), durationpb.New(d+time.Duration(i)), resp); err != nil {
				errs <- err
				return
			}
			if resp.AsDuration() != d+time.Duration(i) {
				errs <- errors.New("got another caller's response")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestStatusCodes(t *testing.T) {
	s := startServer(t, &testService{})
	c := newClient(t, s.Addr().String())
	ctx := ctxTimeout(t, 5*time.Second)

	cases := []struct {
		name    string
		method  *svrkit.MethodDesc
		req     proto.Message
		resp    proto.Message
		code    svrkit.Code
		message string
	}{
		{"unknown cmdid", &svrkit.MethodDesc{CmdID: 999, FullName: "/x.Y/Z"}, &emptypb.Empty{}, &emptypb.Empty{}, svrkit.Unimplemented, "unknown cmdid 999"},
		{"handler panic", methodByCmd(cmdPanic), &emptypb.Empty{}, &emptypb.Empty{}, svrkit.Internal, "handler panic in /svrkit.test.Test/Panic: deliberate test panic"},
		{"application code", methodByCmd(cmdFail), wrapperspb.UInt32(1042), &emptypb.Empty{}, 1042, "failed with code 1042"},
		{"framework code", methodByCmd(cmdFail), wrapperspb.UInt32(uint32(svrkit.NotFound)), &emptypb.Empty{}, svrkit.NotFound, "failed with code 5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Invoke(ctx, tc.method, tc.req, tc.resp)
			var se *svrkit.Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want *svrkit.Error", err)
			}
			if se.Code() != tc.code {
				t.Fatalf("code = %v, want %v (%v)", se.Code(), tc.code, err)
			}
			if tc.message != "" && se.Message() != tc.message {
				t.Fatalf("message = %q, want %q", se.Message(), tc.message)
			}
		})
	}
	// The connection and server survive all of that.
	if err := c.Invoke(ctx, methodByCmd(cmdEcho), wrapperspb.Bytes([]byte("ok")), new(wrapperspb.BytesValue)); err != nil {
		t.Fatal(err)
	}
}

func TestUndecodableRequest(t *testing.T) {
	s := startServer(t, &testService{})
	nc := dialRaw(t, s)
	req, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindRequest, ReqID: 5, CmdID: cmdSleep}, nil, "", []byte{0x08, 0xff}, 0)
	nc.Write(req)
	f := readFrame(t, nc)
	if f.Kind != wire.KindResponse || f.ReqID != 5 || svrkit.Code(f.Status) != svrkit.InvalidArgument {
		t.Fatalf("got %+v %q", f.Header, f.Msg)
	}
}

func TestDeadlines(t *testing.T) {
	svc := &testService{canceled: make(chan error, 4)}
	s := startServer(t, svc)
	c := newClient(t, s.Addr().String())

	t.Run("caller deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := c.Invoke(ctx, methodByCmd(cmdSleep), durationpb.New(10*time.Second), new(durationpb.Duration))
		if svrkit.CodeOf(err) != svrkit.DeadlineExceeded {
			t.Fatalf("err = %v", err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Fatalf("took %v", el)
		}
		// The deadline travelled in the frame, so the server gave up too.
		select {
		case err := <-svc.canceled:
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				t.Fatalf("handler ctx err = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("handler was not canceled")
		}
	})
	t.Run("method timeout enforced by server", func(t *testing.T) {
		// A raw request with no deadline of its own: only the method's
		// declared timeout bounds it.
		nc := dialRaw(t, s)
		body, _ := proto.Marshal(durationpb.New(10 * time.Second))
		req, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindRequest, ReqID: 1, CmdID: cmdSlowSvc}, nil, "", body, 0)
		nc.Write(req)
		f := readFrame(t, nc)
		if svrkit.Code(f.Status) != svrkit.DeadlineExceeded {
			t.Fatalf("status = %v %q", svrkit.Code(f.Status), f.Msg)
		}
		select {
		case err := <-svc.canceled:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("handler ctx err = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("handler was not canceled")
		}
		// Through the client the same method fails the same way.
		err := c.Invoke(context.Background(), methodByCmd(cmdSlowSvc), durationpb.New(10*time.Second), new(durationpb.Duration))
		if svrkit.CodeOf(err) != svrkit.DeadlineExceeded {
			t.Fatalf("err = %v", err)
		}
		<-svc.canceled
	})
	t.Run("deadline reaches handler", func(t *testing.T) {
		resp := new(durationpb.Duration)
		if err := c.Invoke(ctxTimeout(t, 3*time.Second), methodByCmd(cmdDeadline), &emptypb.Empty{}, resp); err != nil {
			t.Fatal(err)
		}
		if d := resp.AsDuration(); d <= 2*time.Second || d > 3*time.Second {
			t.Fatalf("handler saw %v left", d)
		}
		if err := c.Invoke(context.Background(), methodByCmd(cmdDeadline), &emptypb.Empty{}, resp); err != nil || resp.AsDuration() != -time.Second {
			t.Fatalf("no deadline: %v %v", resp.AsDuration(), err)
		}
	})
}

func TestCancel(t *testing.T) {
	svc := &testService{started: make(chan struct{}, 1), canceled: make(chan error, 1)}
	s := startServer(t, svc)
	c := newClient(t, s.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Invoke(ctx, methodByCmd(cmdSleep), durationpb.New(time.Minute), new(durationpb.Duration))
	}()
	select {
	case <-svc.started:
	case <-time.After(5 * time.Second):
		t.Fatal("handler never started")
	}
	cancel()
	select {
	case err := <-done:
		if svrkit.CodeOf(err) != svrkit.Canceled {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("canceled call did not return at once")
	}
	select {
	case err := <-svc.canceled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("handler ctx err = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel frame did not reach the handler")
	}
}

func TestMetadataAndDeadlineAcrossHops(t *testing.T) {
	back := startServer(t, &testService{})
	front := &testService{}
	front.next = newClient(t, back.Addr().String())
	front.nextMethod = methodByCmd(cmdDeadline)
	fs := startServer(t, front)
	c := newClient(t, fs.Addr().String())

	ctx := svrkit.WithOutgoingMetadata(ctxTimeout(t, 2*time.Second), svrkit.Metadata{"x-request-id": "r-1"})
	got := new(wrapperspb.StringValue)
	if err := c.Invoke(ctx, methodByCmd(cmdMeta), wrapperspb.String("x-request-id"), got); err != nil || got.Value != "r-1" {
		t.Fatalf("metadata: %q %v", got.Value, err)
	}
	left := new(durationpb.Duration)
	if err := c.Invoke(ctx, methodByCmd(cmdRelay), &emptypb.Empty{}, left); err != nil {
		t.Fatal(err)
	}
	if d := left.AsDuration(); d <= 0 || d > 2*time.Second {
		t.Fatalf("second hop saw %v left, want the first hop's remaining deadline", d)
	}
}

func TestInterceptors(t *testing.T) {
	var order []string
	var mu sync.Mutex
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	auth := func(ctx context.Context, req proto.Message, m *svrkit.MethodDesc, next svrkit.UnaryHandler) (proto.Message, error) {
		note("server:" + m.FullName)
		if svrkit.IncomingMetadata(ctx)["token"] != "secret" {
			return nil, svrkit.NewError(svrkit.Unauthenticated, "bad token")
		}
		return next(ctx, req)
	}
	s := startServer(t, &testService{}, svrkit.WithServerInterceptors(auth))
	addToken := func(ctx context.Context, m *svrkit.MethodDesc, req, resp proto.Message, next svrkit.UnaryInvoker) error {
		note("client")
		return next(svrkit.WithOutgoingMetadata(ctx, svrkit.Metadata{"token": "secret"}), m, req, resp)
	}
	ok := newClient(t, s.Addr().String(), svrkit.WithClientInterceptors(addToken))
	bad := newClient(t, s.Addr().String())
	ctx := ctxTimeout(t, 2*time.Second)
	if err := ok.Invoke(ctx, methodByCmd(cmdEcho), wrapperspb.Bytes(nil), new(wrapperspb.BytesValue)); err != nil {
		t.Fatal(err)
	}
	if err := bad.Invoke(ctx, methodByCmd(cmdEcho), wrapperspb.Bytes(nil), new(wrapperspb.BytesValue)); svrkit.CodeOf(err) != svrkit.Unauthenticated {
		t.Fatalf("without token: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 3 || order[0] != "client" || order[1] != "server:/svrkit.test.Test/Echo" {
		t.Fatalf("order = %q", order)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	svc := &testService{started: make(chan struct{}, 8)}
	s := startServer(t, svc, svrkit.WithMaxConcurrent(100, 2))
	c := newClient(t, s.Addr().String(), svrkit.WithConnsPerEndpoint(1))
	ctx := ctxTimeout(t, 5*time.Second)
	for range 2 {
		go c.Invoke(ctx, methodByCmd(cmdSleep), durationpb.New(time.Second), new(durationpb.Duration))
		<-svc.started
	}
	err := c.Invoke(ctx, methodByCmd(cmdEcho), wrapperspb.Bytes(nil), new(wrapperspb.BytesValue))
	if svrkit.CodeOf(err) != svrkit.ResourceExhausted {
		t.Fatalf("third call: %v", err)
	}
}

func TestFrameLimits(t *testing.T) {
	s := startServer(t, &testService{}, svrkit.WithMaxFrameSize(64<<10))
	c := newClient(t, s.Addr().String(), svrkit.WithMaxFrameSize(64<<10))
	ctx := ctxTimeout(t, 5*time.Second)

	err := c.Invoke(ctx, methodByCmd(cmdEcho), wrapperspb.Bytes(make([]byte, 100<<10)), new(wrapperspb.BytesValue))
	if svrkit.CodeOf(err) != svrkit.ResourceExhausted {
		t.Fatalf("oversize request: %v", err)
	}
	err = c.Invoke(ctx, methodByCmd(cmdBlob), wrapperspb.UInt32(100<<10), new(wrapperspb.BytesValue))
	if svrkit.CodeOf(err) != svrkit.Internal {
		t.Fatalf("oversize response: %v", err)
	}

	// A raw peer announcing a frame over the server's limit is cut off
	// before the server buffers it.
	nc := dialRaw(t, s)
	var prefix [4]byte
	binary.BigEndian.PutUint32(prefix[:], 1<<30)
	nc.Write(prefix[:])
	expectClosed(t, nc)

	if err := c.Invoke(ctx, methodByCmd(cmdEcho), wrapperspb.Bytes(nil), new(wrapperspb.BytesValue)); err != nil {
		t.Fatalf("server hurt by bad peer: %v", err)
	}
}

func TestGarbagePeer(t *testing.T) {
	s := startServer(t, &testService{})
	cases := map[string][]byte{
		"random":      []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"bad version": mustFrame(t, func(b []byte) { b[4] = 7 }),
		"bad kind":    mustFrame(t, func(b []byte) { b[5] = 0 }),
		"bad meta":    mustFrame(t, func(b []byte) { binary.BigEndian.PutUint16(b[24:], 1) }),
		"response":    mustFrame(t, func(b []byte) { b[5] = byte(wire.KindResponse) }),
	}
	for name, payload := range cases {
		t.Run(name, func(t *testing.T) {
			nc := dialRaw(t, s)
			nc.Write(payload)
			expectClosed(t, nc)
		})
	}
	c := newClient(t, s.Addr().String())
	if err := c.Invoke(ctxTimeout(t, 5*time.Second), methodByCmd(cmdEcho), wrapperspb.Bytes(nil), new(wrapperspb.BytesValue)); err != nil {
		t.Fatalf("server hurt by garbage: %v", err)
	}
}

// A peer that sends requests but never reads responses must be cut off
// instead of growing the server's memory.
func TestSlowReader(t *testing.T) {
	s := startServer(t, &testService{}, svrkit.WithMaxPendingBytes(1<<20))
	nc := dialRaw(t, s)
	body, _ := proto.Marshal(wrapperspb.UInt32(512 << 10))
	var frames []byte
	// 128 × 512 KiB = 64 MiB of responses: far more than the kernel's
	// socket buffers on both sides plus the server's 1 MiB allowance.
	for i := range 128 {
		frames, _ = wire.AppendFrame(frames, &wire.Header{Kind: wire.KindRequest, ReqID: uint32(i + 1), CmdID: cmdBlob}, nil, "", body, 0)
	}
	if _, err := nc.Write(frames); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // let responses pile up unread
	// Now drain: the server must have closed the connection well before
	// sending all 16 MiB.
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, nc)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if n >= 64<<20 {
		t.Fatalf("server sent all %d bytes to a slow reader", n)
	}
	c := newClient(t, s.Addr().String())
	if err := c.Invoke(ctxTimeout(t, 5*time.Second), methodByCmd(cmdEcho), wrapperspb.Bytes(nil), new(wrapperspb.BytesValue)); err != nil {
		t.Fatalf("server hurt by slow reader: %v", err)
	}
}

func TestPing(t *testing.T) {
	s := startServer(t, &testService{})
	nc := dialRaw(t, s)
	ping, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindPing, ReqID: 77}, nil, "", []byte("hi"), 0)
	nc.Write(ping)
	f := readFrame(t, nc)
	if f.Kind != wire.KindPong || f.ReqID != 77 || string(f.Body) != "hi" {
		t.Fatalf("got %+v", f)
	}
}

func TestIdleTimeout(t *testing.T) {
	s := startServer(t, &testService{}, svrkit.WithIdleTimeout(200*time.Millisecond))
	nc := dialRaw(t, s)
	expectClosed(t, nc)
}

// A connection whose traffic never pauses for the idle timeout stays open,
// however the server's coarse clock falls between the pings. The pings
// come every 100ms, well inside the 1s timeout; should the machine be so
// loaded that one gap still reaches the timeout, the run proves nothing
// and says so instead of failing.
func TestIdleTimeoutSparesActiveConn(t *testing.T) {
	const idle = time.Second
	s := startServer(t, &testService{}, svrkit.WithIdleTimeout(idle))
	nc := dialRaw(t, s)
	start := time.Now()
	last := start
	var worst time.Duration
	// Long enough for the idle check to run at least twice.
	for i := 0; time.Since(start) < 2*idle+500*time.Millisecond; i++ {
		ping, _ := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindPing, ReqID: uint32(i + 1)}, nil, "", nil, 0)
		_, err := nc.Write(ping)
		var f wire.Frame
		if err == nil {
			f, err = readFrameErr(nc)
		}
		gap := time.Since(last)
		worst = max(worst, gap)
		if err != nil || f.Kind != wire.KindPong {
			if worst >= idle {
				t.Skipf("a gap of %v between pings reached the idle timeout; the machine is too loaded for this check", worst)
			}
			t.Fatalf("ping %d: connection closed while active (longest gap %v, timeout %v): %v", i, worst, idle, err)
		}
		last = time.Now()
		time.Sleep(100 * time.Millisecond) // the traffic pattern under test, not a wait
	}
}

func TestShutdownDrains(t *testing.T) {
	svc := &testService{started: make(chan struct{}, 8)}
	s := svrkit.NewServer()
	s.RegisterService(&testDesc, svc)
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s.Addr().String())
	results := make(chan error, 4)
	for _, d := range []time.Duration{100 * time.Millisecond, 100 * time.Millisecond, time.Minute, time.Minute} {
		go func() {
			results <- c.Invoke(ctxTimeout(t, 20*time.Second), methodByCmd(cmdSleep), durationpb.New(d), new(durationpb.Duration))
		}()
	}
	for range 4 {
		<-svc.started
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the drain to time out", err)
	}
	codes := map[svrkit.Code]int{}
	for range 4 {
		select {
		case err := <-results:
			codes[svrkit.CodeOf(err)]++
		case <-time.After(5 * time.Second):
			t.Fatal("a caller got no status after shutdown")
		}
	}
	if codes[svrkit.OK] != 2 || codes[svrkit.OK]+codes[svrkit.Unavailable]+codes[svrkit.Canceled] != 4 {
		t.Fatalf("codes = %v", codes)
	}
	err := c.Invoke(ctxTimeout(t, 2*time.Second), methodByCmd(cmdEcho), wrapperspb.Bytes(nil), new(wrapperspb.BytesValue))
	if svrkit.CodeOf(err) != svrkit.Unavailable {
		t.Fatalf("call after shutdown: %v", err)
	}
}

// dialRaw opens a connection that speaks the wire protocol by hand; it
// has read the server's hello, whose nonce it returns too.
func dialRaw(t *testing.T, s *svrkit.Server) net.Conn {
	nc, _ := dialRawHello(t, s)
	return nc
}

func dialRawHello(t *testing.T, s *svrkit.Server) (net.Conn, wire.Frame) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	hello := readFrame(t, nc)
	if hello.Kind != wire.KindHello || len(hello.Body) != wire.NonceSize {
		t.Fatalf("first frame %v with a %d-byte body, want a hello with a nonce", hello.Kind, len(hello.Body))
	}
	return nc, hello
}

func expectClosed(t *testing.T, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	for {
		if _, err := nc.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("server did not close the connection")
			}
			return
		}
	}
}

func mustFrame(t *testing.T, mutate func([]byte)) []byte {
	b, err := wire.AppendFrame(nil, &wire.Header{Kind: wire.KindRequest, ReqID: 1, CmdID: cmdEcho}, nil, "", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	mutate(b)
	return b
}

func readFrame(t *testing.T, nc net.Conn) wire.Frame {
	t.Helper()
	f, err := readFrameErr(nc)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// readFrameErr reads one frame, waiting at most 5s.
func readFrameErr(nc net.Conn) (wire.Frame, error) {
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var prefix [4]byte
	if _, err := io.ReadFull(nc, prefix[:]); err != nil {
		return wire.Frame{}, err
	}
	size, err := wire.FrameSize(prefix[:], 0)
	if err != nil {
		return wire.Frame{}, err
	}
	buf := make([]byte, size)
	copy(buf, prefix[:])
	if _, err := io.ReadFull(nc, buf[4:]); err != nil {
		return wire.Frame{}, err
	}
	return wire.Parse(buf, 0)
}

// Shutdown right after the last handler returns must still deliver every
// response: responses queued behind a write in progress go out before the
// engine stops. The reader is slow so that they do queue.
func TestShutdownFlushesAnsweredCalls(t *testing.T) {
	const calls = 200
	svc := &testService{}
	s := svrkit.NewServer(svrkit.WithLogger(testLogger(t)))
	s.RegisterService(&testDesc, svc)
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	nc := dialRaw(t, s)
	body, _ := proto.Marshal(wrapperspb.UInt32(32 << 10))
	var frames []byte
	for i := range calls {
		frames, _ = wire.AppendFrame(frames, &wire.Header{Kind: wire.KindRequest, ReqID: uint32(i + 1), CmdID: cmdBlob}, nil, "", body, 0)
	}
	got := make(chan int, 1)
	go func() {
		ok := 0
		defer func() { got <- ok }()
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		var prefix [4]byte
		for {
			if _, err := io.ReadFull(nc, prefix[:]); err != nil {
				return
			}
			size, _ := wire.FrameSize(prefix[:], 0)
			buf := make([]byte, size)
			copy(buf, prefix[:])
			if _, err := io.ReadFull(nc, buf[4:]); err != nil {
				return
			}
			if f, err := wire.Parse(buf, 0); err == nil && f.Kind == wire.KindResponse && f.Status == 0 {
				ok++
			}
			time.Sleep(200 * time.Microsecond) // a slow reader
		}
	}()
	if _, err := nc.Write(frames); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for svc.calls.Load() < calls {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d calls ran", svc.calls.Load(), calls)
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if ok := <-got; ok != calls {
		t.Fatalf("%d of %d answered calls reached the client", ok, calls)
	}
}

// An idle server stops at once: Shutdown does not wait on gnet's 500ms
// stop poll. The bound is loose so that a loaded machine does not fail it.
func TestShutdownIdleIsFast(t *testing.T) {
	s := svrkit.NewServer(svrkit.WithLogger(testLogger(t)))
	s.RegisterService(&testDesc, &testService{})
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s.Addr().String())
	if err := c.Invoke(ctxTimeout(t, 5*time.Second), methodByCmd(cmdEcho), wrapperspb.Bytes(nil), new(wrapperspb.BytesValue)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Fatalf("Shutdown of an idle server took %v", d)
	}
}

// One caller at a time takes the worker's direct write; responses larger
// than the socket buffer continue through gnet. Every byte must arrive in
// order, call after call on one connection.
func TestLoneCallerLargeResponses(t *testing.T) {
	s := startServer(t, &testService{})
	c := newClient(t, s.Addr().String(), svrkit.WithConnsPerEndpoint(1))
	rng := rand.New(rand.NewPCG(1, 2))
	for i, n := range []int{1, 64 << 10, 3 << 20, 100, 3<<20 + 12345, 7} {
		payload := make([]byte, n)
		for j := range payload {
			payload[j] = byte(rng.Uint32())
		}
		resp := new(wrapperspb.BytesValue)
		if err := c.Invoke(ctxTimeout(t, 10*time.Second), methodByCmd(cmdEcho), wrapperspb.Bytes(payload), resp); err != nil {
			t.Fatalf("call %d (%d bytes): %v", i, n, err)
		}
		if !bytes.Equal(resp.Value, payload) {
			t.Fatalf("call %d (%d bytes): echo mismatch", i, n)
		}
	}
}

// Handlers that block must not hold up calls queued behind them: every one
// of many concurrent blocking calls starts.
func TestBlockedHandlersDoNotStarveQueuedCalls(t *testing.T) {
	const n = 64
	svc := &testService{started: make(chan struct{}, n)}
	s := startServer(t, svc)
	c := newClient(t, s.Addr().String(), svrkit.WithConnsPerEndpoint(1))
	ctx, cancel := context.WithCancel(ctxTimeout(t, 20*time.Second))
	done := make(chan error, n)
	for range n {
		go func() {
			done <- c.Invoke(ctx, methodByCmd(cmdSleep), durationpb.New(time.Minute), new(durationpb.Duration))
		}()
	}
	timeout := time.After(10 * time.Second)
	for i := range n {
		select {
		case <-svc.started:
		case <-timeout:
			t.Fatalf("only %d of %d blocking calls started", i, n)
		}
	}
	cancel()
	for range n {
		if err := <-done; svrkit.CodeOf(err) != svrkit.Canceled {
			t.Fatalf("call ended with %v, want Canceled", err)
		}
	}
}
