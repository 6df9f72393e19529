package svrkit_test

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/wire"
)

// fuzzDesc is the test service without the methods whose cost the caller
// chooses (Sleep, Spin, Blob, Relay): the fuzzer would find them, and a
// 4 GiB Blob or an hour of Spin is the method's business, not the
// runtime's.
var fuzzDesc = func() svrkit.ServiceDesc {
	d := testDesc
	d.Methods = nil
	for _, m := range testDesc.Methods {
		switch m.CmdID {
		case cmdEcho, cmdPanic, cmdFail, cmdMeta, cmdIdentity:
			d.Methods = append(d.Methods, m)
		}
	}
	return d
}()

// FuzzServerConn writes arbitrary bytes to a real server over loopback
// after its hello, as a hostile or broken client would, and then checks
// that the server still answers a well-behaved client within a second:
// whatever the bytes, the server's read path must neither crash nor hang
// nor wedge its event loop. One server serves every input of a fuzz
// worker, so damage that accumulates (a leaked worker, a stuck loop) shows
// too.
func FuzzServerConn(f *testing.F) {
	frame := func(h wire.Header, meta []byte, body []byte) []byte {
		b, err := wire.AppendFrame(nil, &h, meta, "", body, 0)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	echo, _ := proto.Marshal(wrapperspb.Bytes([]byte("hi")))
	req := frame(wire.Header{Kind: wire.KindRequest, ReqID: 1, CmdID: cmdEcho, Timeout: 1_000_000}, nil, echo)
	f.Add(req)
	f.Add(append(append([]byte{}, req...), req...))
	f.Add(req[:len(req)-1])
	f.Add(frame(wire.Header{Kind: wire.KindRequest, ReqID: 2, CmdID: 9999}, nil, nil))
	f.Add(frame(wire.Header{Kind: wire.KindRequest, ReqID: 3, CmdID: cmdPanic}, nil, nil))
	f.Add(frame(wire.Header{Kind: wire.KindRequest, ReqID: 4, CmdID: cmdMeta}, wire.AppendMeta(nil, "k", "v"), echo))
	f.Add(frame(wire.Header{Kind: wire.KindPing}, nil, nil))
	f.Add(frame(wire.Header{Kind: wire.KindCancel, ReqID: 77}, nil, nil))
	f.Add(frame(wire.Header{Kind: wire.KindAuth}, wire.AppendMeta(nil, "identity", "x"), make([]byte, 64)))
	f.Add(frame(wire.Header{Kind: wire.KindResponse, ReqID: 1}, nil, nil))
	f.Add(frame(wire.Header{Kind: wire.Kind(9)}, nil, nil))
	f.Add(binary.BigEndian.AppendUint32(nil, 0xFFFFFFFF))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte{})

	s := svrkit.NewServer(svrkit.WithLogger(slog.New(slog.DiscardHandler)) /* f.Log may not be called while inputs run */, svrkit.WithFrameTimeout(time.Second))
	s.RegisterService(&fuzzDesc, &testService{})
	if err := s.Start("127.0.0.1:0"); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	addr := s.Addr().String()
	client := newClient(f, addr)

	f.Fuzz(func(t *testing.T, in []byte) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(time.Second))
		if _, err := conn.Write(in); err != nil {
			// The server may close first (it reads the hello's answer as
			// it comes): a defined end, not a failure.
			return
		}
		// Whatever the server answers, until it closes or goes quiet.
		_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, _ = io.Copy(io.Discard, conn)

		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp := new(wrapperspb.BytesValue)
		if err := client.Invoke(ctx, methodByCmd(cmdEcho), wrapperspb.Bytes([]byte("ok")), resp); err != nil {
			t.Fatalf("after %d hostile bytes the server no longer answers: %v", len(in), err)
		}
		if string(resp.GetValue()) != "ok" {
			t.Fatalf("echo answered %q", resp.GetValue())
		}
	})
}
