package logicsvr_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

// benchDesc is one echo method without an IDL timeout, so whether a call
// has a deadline is the caller's choice.
var benchDesc = svrkit.ServiceDesc{
	Name: "logicsvr.bench.Bench",
	Methods: []svrkit.MethodDesc{{
		CmdID:       1,
		FullName:    "/logicsvr.bench.Bench/Echo",
		CGIPath:     "/cgi-bin/bench/echo",
		NewRequest:  func() proto.Message { return new(wrapperspb.BytesValue) },
		NewResponse: func() proto.Message { return new(wrapperspb.BytesValue) },
		Handler: func(_ any, _ context.Context, req proto.Message) (proto.Message, error) {
			return req, nil
		},
	}},
}

// startBenchHost serves benchDesc on loopback until the benchmark ends.
func startBenchHost(b *testing.B) *logicsvr.Host {
	b.Helper()
	h, err := logicsvr.New(logicsvr.Config{Name: "bench", HTTP: "127.0.0.1:0", RPC: "127.0.0.1:0", Admin: "127.0.0.1:0"},
		logicsvr.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	h.RegisterService(&benchDesc, struct{}{})
	if err := h.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	return h
}

// BenchmarkHostCall is one caller's call through a host, client and host in
// one process over loopback: the host's interceptors (request id, metrics,
// limit, panics, deadline) on top of the transport. The deadline and
// no-deadline cases side by side show what a deadline costs the host; the
// allocations count both ends of the call. The deadline is the caller's,
// made once outside the loop, so the client adds no allocation of its own
// for it.
func BenchmarkHostCall(b *testing.B) {
	h := startBenchHost(b)
	m := &benchDesc.Methods[0]
	ctxs := []struct {
		name string
		ctx  context.Context
	}{
		{"no-deadline", context.Background()},
		{"deadline", longDeadline(b)},
	}
	b.Run("rpc", func(b *testing.B) {
		c, err := svrkit.NewClient(h.RPCAddr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		req, resp := wrapperspb.Bytes(make([]byte, 16)), new(wrapperspb.BytesValue)
		for _, cc := range ctxs {
			b.Run(cc.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := c.Invoke(cc.ctx, m, req, resp); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
	b.Run("http", func(b *testing.B) {
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
		defer hc.CloseIdleConnections()
		body, _ := proto.Marshal(wrapperspb.Bytes(make([]byte, 16)))
		url := "http://" + h.HTTPAddr().String() + m.FullName
		for _, cc := range []struct{ name, timeoutMs string }{{"no-deadline", ""}, {"deadline", "3600000"}} {
			b.Run(cc.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/proto")
					if cc.timeoutMs != "" {
						req.Header.Set("Connect-Timeout-Ms", cc.timeoutMs)
					}
					res, err := hc.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						b.Fatalf("status %d", res.StatusCode)
					}
				}
			})
		}
	})
}

// longDeadline is a context whose deadline no benchmark reaches.
func longDeadline(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	b.Cleanup(cancel)
	return ctx
}
