package cgi_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/svrkit/svrkit/examples/hello"
	"github.com/svrkit/svrkit/svrkit/cgi"
)

// BenchmarkHandler measures the front's own cost per call (routing,
// decoding, context, interceptor chain, encoding) without the network, for
// each encoding.
func BenchmarkHandler(b *testing.B) {
	h := cgi.NewHandler()
	hello.RegisterGreeterServer(h, greeter{})
	for _, bc := range []struct {
		name, ct string
		body     []byte
	}{
		{"json", "application/json", []byte(`{"name":"Ada"}`)},
		{"proto", "application/proto", mustProto(b, &hello.HelloRequest{Name: "Ada"})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/cgi-bin/hello/sayhello", bytes.NewReader(bc.body))
				req.Header.Set("Content-Type", bc.ct)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
