package svrkit_test

import (
	"bytes"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"
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
