package svrkit_test

import (
	"context"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"
)

// BenchmarkInvoke measures a full call, client and server in one process
// over loopback TCP. allocs/op covers both sides including the protobuf
// messages (one request and one response decoded: 2 allocations of the
// message structs plus their payload copies). The side-by-side comparison
// with gRPC-Go lives in tools/rpcbench.
func BenchmarkInvoke(b *testing.B) {
	for _, size := range []int{16, 1024} {
		b.Run(sizeName(size), func(b *testing.B) {
			s := startServer(b, &testService{})
			c := newClient(b, s.Addr().String())
			m := methodByCmd(cmdEcho)
			payload := make([]byte, size)
			b.ReportAllocs()
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req := wrapperspb.Bytes(payload)
				resp := new(wrapperspb.BytesValue)
				for pb.Next() {
					if err := c.Invoke(context.Background(), m, req, resp); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkInvokeSerial measures one caller's round trip: latency, not
// throughput.
func BenchmarkInvokeSerial(b *testing.B) {
	s := startServer(b, &testService{})
	c := newClient(b, s.Addr().String())
	m := methodByCmd(cmdEcho)
	req := wrapperspb.Bytes(make([]byte, 16))
	resp := new(wrapperspb.BytesValue)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Invoke(context.Background(), m, req, resp); err != nil {
			b.Fatal(err)
		}
	}
}

func sizeName(n int) string {
	if n >= 1024 {
		return itoa(n/1024) + "KiB"
	}
	return itoa(n) + "B"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
