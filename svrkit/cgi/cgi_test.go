package cgi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/hello"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/cgi"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The echo service is written by hand, so that its handler can misbehave on
// request: its reply depends on the request's name.
//
//	fail:N     fails with code N
//	panic      panics
//	md:KEY     answers the incoming metadata value of KEY
//	peer       answers cgi.PeerAddr
//	deadline   answers the time left before the deadline, in ms, or "none"
//	wait       waits for the context to end
//	anything   answers "echo: anything"
type echoServer interface {
	Echo(context.Context, *hello.HelloRequest) (*hello.HelloReply, error)
}

type echo struct{}

func (echo) Echo(ctx context.Context, req *hello.HelloRequest) (*hello.HelloReply, error) {
	name := req.GetName()
	switch {
	case strings.HasPrefix(name, "fail:"):
		n, _ := strconv.Atoi(name[len("fail:"):])
		return nil, svrkit.NewError(svrkit.Code(n), "failed on purpose")
	case name == "panic":
		panic("on purpose")
	case strings.HasPrefix(name, "md:"):
		return &hello.HelloReply{Message: svrkit.IncomingMetadata(ctx)[name[len("md:"):]]}, nil
	case name == "peer":
		a, ok := cgi.PeerAddr(ctx)
		if !ok {
			return nil, svrkit.NewError(svrkit.Internal, "no peer address")
		}
		return &hello.HelloReply{Message: a}, nil
	case name == "deadline":
		dl, ok := ctx.Deadline()
		if !ok {
			return &hello.HelloReply{Message: "none"}, nil
		}
		return &hello.HelloReply{Message: strconv.FormatInt(time.Until(dl).Milliseconds(), 10)}, nil
	case name == "wait":
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &hello.HelloReply{Message: "echo: " + name}, nil
}

func echoHandler(impl any, ctx context.Context, req proto.Message) (proto.Message, error) {
	return impl.(echoServer).Echo(ctx, req.(*hello.HelloRequest))
}

var echoDesc = svrkit.ServiceDesc{
	Name:        "cgitest.Echo",
	HandlerType: (*echoServer)(nil),
	Methods: []svrkit.MethodDesc{
		{
			CmdID:       1,
			FullName:    "/cgitest.Echo/Echo",
			CGIPath:     "/cgi-bin/echo",
			Timeout:     2 * time.Second,
			NewRequest:  func() proto.Message { return new(hello.HelloRequest) },
			NewResponse: func() proto.Message { return new(hello.HelloReply) },
			Handler:     echoHandler,
		},
		{
			CmdID:       2,
			FullName:    "/cgitest.Echo/NoTimeout",
			NewRequest:  func() proto.Message { return new(hello.HelloRequest) },
			NewResponse: func() proto.Message { return new(hello.HelloReply) },
			Handler:     echoHandler,
		},
	},
}

var _ svrkit.Registrar = (*cgi.Handler)(nil)

// quietLogger swallows the panic logs the tests provoke.
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

func startServer(t *testing.T, opts ...cgi.Option) string {
	t.Helper()
	h := cgi.NewHandler(append([]cgi.Option{cgi.WithLogger(quietLogger)}, opts...)...)
	h.RegisterService(&echoDesc, echo{})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func do(t *testing.T, method, url, ct string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

func mustProto(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodings(t *testing.T) {
	url := startServer(t)
	for _, tc := range []struct {
		name, path, ct, wantCT string
		body                   []byte
		want                   string
	}{
		{"proto at Connect route", "/cgitest.Echo/Echo", "application/proto", "application/proto",
			mustProto(t, &hello.HelloRequest{Name: "a"}), "echo: a"},
		{"x-protobuf at CGI path", "/cgi-bin/echo", "application/x-protobuf", "application/x-protobuf",
			mustProto(t, &hello.HelloRequest{Name: "b"}), "echo: b"},
		{"JSON at CGI path", "/cgi-bin/echo", "application/json", "application/json",
			[]byte(`{"name":"c"}`), "echo: c"},
		{"JSON with charset", "/cgitest.Echo/Echo", "application/json; charset=utf-8", "application/json",
			[]byte(`{"name":"d"}`), "echo: d"},
		{"JSON unknown field ignored", "/cgitest.Echo/Echo", "application/json", "application/json",
			[]byte(`{"name":"e","extra":1}`), "echo: e"},
		{"empty JSON body", "/cgitest.Echo/Echo", "application/json", "application/json", nil, "echo: "},
		{"empty proto body", "/cgitest.Echo/Echo", "application/proto", "application/proto", nil, "echo: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := do(t, http.MethodPost, url+tc.path, tc.ct, tc.body, nil)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d, body %s", res.StatusCode, body)
			}
			if got := res.Header.Get("Content-Type"); got != tc.wantCT {
				t.Errorf("Content-Type %q, want %q", got, tc.wantCT)
			}
			reply := &hello.HelloReply{}
			var err error
			if tc.wantCT == "application/json" {
				err = protojson.Unmarshal(body, reply)
			} else {
				err = proto.Unmarshal(body, reply)
			}
			if err != nil {
				t.Fatalf("decoding %q: %v", body, err)
			}
			if reply.GetMessage() != tc.want {
				t.Errorf("reply %q, want %q", reply.GetMessage(), tc.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	url := startServer(t, cgi.WithMaxBodySize(64))
	for _, tc := range []struct {
		name, method, path, ct string
		body                   []byte
		status                 int
		code                   string
		msg                    string // substring of the message
	}{
		{"bad JSON", "POST", "/cgi-bin/echo", "application/json", []byte(`{"name":`), 400, "invalid_argument", "decoding application/json request"},
		{"JSON of wrong type", "POST", "/cgi-bin/echo", "application/json", []byte(`{"name":1}`), 400, "invalid_argument", "decoding"},
		{"bad proto", "POST", "/cgi-bin/echo", "application/proto", []byte{0x0a, 0x05, 'a'}, 400, "invalid_argument", "decoding application/proto request"},
		{"text content type", "POST", "/cgi-bin/echo", "text/plain", []byte(`x`), 415, "unimplemented", `unsupported Content-Type "text/plain"`},
		{"no content type", "POST", "/cgi-bin/echo", "", []byte(`{}`), 415, "unimplemented", "unsupported Content-Type"},
		{"oversize body", "POST", "/cgi-bin/echo", "application/json", []byte(`{"name":"` + strings.Repeat("x", 100) + `"}`), 413, "resource_exhausted", "exceeds 64 bytes"},
		{"unknown path", "POST", "/cgi-bin/nope", "application/json", []byte(`{}`), 404, "not_found", "no method at /cgi-bin/nope"},
		{"GET", "GET", "/cgi-bin/echo", "", nil, 405, "unimplemented", "use POST"},
		{"handler code", "POST", "/cgi-bin/echo", "application/json", []byte(`{"name":"fail:5"}`), 404, "not_found", "failed on purpose"},
		{"application code", "POST", "/cgi-bin/echo", "application/json", []byte(`{"name":"fail:1001"}`), 400, "app_1001", "failed on purpose"},
		{"error in proto mode is JSON", "POST", "/cgi-bin/echo", "application/proto", mustProto(t, &hello.HelloRequest{Name: "fail:7"}), 403, "permission_denied", "failed on purpose"},
		{"panic", "POST", "/cgi-bin/echo", "application/json", []byte(`{"name":"panic"}`), 500, "internal", "internal error"},
		{"bad Connect-Timeout-Ms", "POST", "/cgi-bin/echo", "application/json", []byte(`{}`), 400, "invalid_argument", "Connect-Timeout-Ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr map[string]string
			if tc.name == "bad Connect-Timeout-Ms" {
				hdr = map[string]string{"Connect-Timeout-Ms": "soon"}
			}
			res, body := do(t, tc.method, url+tc.path, tc.ct, tc.body, hdr)
			if res.StatusCode != tc.status {
				t.Errorf("status %d, want %d (body %s)", res.StatusCode, tc.status, body)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("error Content-Type %q, want application/json", ct)
			}
			var eb cgi.ErrorBody
			if err := json.Unmarshal(body, &eb); err != nil {
				t.Fatalf("error body %q is not JSON: %v", body, err)
			}
			if eb.Code != tc.code || !strings.Contains(eb.Message, tc.msg) {
				t.Errorf("error body %s, want code %q and a message containing %q", body, tc.code, tc.msg)
			}
			if tc.status == 405 && res.Header.Get("Allow") != "POST" {
				t.Errorf("405 without Allow: POST")
			}
		})
	}
}

// TestPanicKeepsServing checks that a handler panic costs one request only.
func TestPanicKeepsServing(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	url := startServer(t, cgi.WithLogger(logger))
	for i := 0; i < 3; i++ {
		res, _ := do(t, "POST", url+"/cgi-bin/echo", "application/json", []byte(`{"name":"panic"}`), nil)
		if res.StatusCode != 500 {
			t.Fatalf("panic answered %d, want 500", res.StatusCode)
		}
		res, body := do(t, "POST", url+"/cgi-bin/echo", "application/json", []byte(`{"name":"ok"}`), nil)
		if res.StatusCode != 200 || !strings.Contains(string(body), "echo: ok") {
			t.Fatalf("after a panic: %d %s", res.StatusCode, body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "on purpose") || !strings.Contains(logs.String(), "/cgitest.Echo/Echo") {
		t.Errorf("panic not logged with its method: %s", logs.String())
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func call(t *testing.T, url, path, name string, header map[string]string) (int, string) {
	t.Helper()
	res, body := do(t, "POST", url+path, "application/json", []byte(`{"name":"`+name+`"}`), header)
	if res.StatusCode != 200 {
		var eb cgi.ErrorBody
		_ = json.Unmarshal(body, &eb)
		return res.StatusCode, eb.Code
	}
	reply := &hello.HelloReply{}
	if err := protojson.Unmarshal(body, reply); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, reply.GetMessage()
}

func TestMetadata(t *testing.T) {
	url := startServer(t)
	hdr := map[string]string{"X-User-Id": "42", "Authorization": "Bearer t"}
	for key, want := range map[string]string{
		"x-user-id":      "42",
		"authorization":  "Bearer t",
		"content-type":   "", // transport headers are not metadata
		"content-length": "",
	} {
		if _, got := call(t, url, "/cgi-bin/echo", "md:"+key, hdr); got != want {
			t.Errorf("metadata %q = %q, want %q", key, got, want)
		}
	}
}

// The client's address reaches the method under the reserved key, and a
// header of that name cannot replace it.
func TestPeerAddr(t *testing.T) {
	url := startServer(t)
	forged := map[string]string{"Svrkit-Peer-Addr": "203.0.113.7:1"}
	_, md := call(t, url, "/cgi-bin/echo", "md:"+cgi.PeerAddrKey, forged)
	_, peer := call(t, url, "/cgi-bin/echo", "peer", forged)
	host, _, err := net.SplitHostPort(md)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("metadata %s = %q, want the loopback client's address", cgi.PeerAddrKey, md)
	}
	if peer != md {
		t.Fatalf("PeerAddr = %q, metadata %q: want the same", peer, md)
	}
	if _, ok := cgi.PeerAddr(context.Background()); ok {
		t.Fatal("PeerAddr outside a Handler's call answered ok")
	}
}

func TestDeadlines(t *testing.T) {
	url := startServer(t)
	leftMS := func(path string, hdr map[string]string) int {
		t.Helper()
		_, got := call(t, url, path, "deadline", hdr)
		if got == "none" {
			return -1
		}
		n, err := strconv.Atoi(got)
		if err != nil {
			t.Fatalf("deadline reply %q", got)
		}
		return n
	}
	if ms := leftMS("/cgi-bin/echo", nil); ms <= 1000 || ms > 2000 {
		t.Errorf("method Timeout 2s: %dms left, want (1000, 2000]", ms)
	}
	if ms := leftMS("/cgi-bin/echo", map[string]string{"Connect-Timeout-Ms": "300"}); ms <= 0 || ms > 300 {
		t.Errorf("Connect-Timeout-Ms 300: %dms left, want (0, 300]", ms)
	}
	if ms := leftMS("/cgi-bin/echo", map[string]string{"Connect-Timeout-Ms": "60000"}); ms > 2000 {
		t.Errorf("a longer Connect-Timeout-Ms must not extend the method's timeout: %dms left", ms)
	}
	if ms := leftMS("/cgitest.Echo/NoTimeout", nil); ms != -1 {
		t.Errorf("method without Timeout has a deadline %dms away", ms)
	}

	url = startServer(t, cgi.WithDefaultTimeout(500*time.Millisecond))
	if ms := leftMS("/cgitest.Echo/NoTimeout", nil); ms <= 0 || ms > 500 {
		t.Errorf("WithDefaultTimeout 500ms: %dms left", ms)
	}
	start := time.Now()
	status, code := call(t, url, "/cgitest.Echo/Echo", "wait", map[string]string{"Connect-Timeout-Ms": "100"})
	if status != http.StatusGatewayTimeout || code != "deadline_exceeded" {
		t.Errorf("call past its deadline: %d %s, want 504 deadline_exceeded", status, code)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("deadline of 100ms took %v to fire", d)
	}
}

func TestInterceptors(t *testing.T) {
	var order []string
	var mu sync.Mutex
	trace := func(name string) svrkit.UnaryServerInterceptor {
		return func(ctx context.Context, req proto.Message, m *svrkit.MethodDesc, next svrkit.UnaryHandler) (proto.Message, error) {
			mu.Lock()
			order = append(order, name+" "+m.FullName)
			mu.Unlock()
			return next(ctx, req)
		}
	}
	auth := func(ctx context.Context, req proto.Message, m *svrkit.MethodDesc, next svrkit.UnaryHandler) (proto.Message, error) {
		if svrkit.IncomingMetadata(ctx)["authorization"] == "" {
			return nil, svrkit.NewError(svrkit.Unauthenticated, "no token")
		}
		return next(ctx, req)
	}
	url := startServer(t, cgi.WithInterceptors(trace("outer"), trace("inner")), cgi.WithInterceptors(auth))

	if status, code := call(t, url, "/cgi-bin/echo", "x", nil); status != 401 || code != "unauthenticated" {
		t.Errorf("without token: %d %s, want 401 unauthenticated", status, code)
	}
	if status, got := call(t, url, "/cgi-bin/echo", "x", map[string]string{"Authorization": "t"}); status != 200 || got != "echo: x" {
		t.Errorf("with token: %d %s", status, got)
	}
	mu.Lock()
	defer mu.Unlock()
	want := "outer /cgitest.Echo/Echo,inner /cgitest.Echo/Echo,outer /cgitest.Echo/Echo,inner /cgitest.Echo/Echo"
	if got := strings.Join(order, ","); got != want {
		t.Errorf("interceptor order %s, want %s", got, want)
	}
}

func TestRegistrationPanics(t *testing.T) {
	mustPanic := func(name, want string, f func()) {
		t.Helper()
		defer func() {
			p := recover()
			if p == nil || !strings.Contains(p.(string), want) {
				t.Errorf("%s: panic %v, want one containing %q", name, p, want)
			}
		}()
		f()
	}
	mustPanic("duplicate service", "route /cgitest.Echo/Echo of /cgitest.Echo/Echo already registered", func() {
		h := cgi.NewHandler()
		h.RegisterService(&echoDesc, echo{})
		h.RegisterService(&echoDesc, echo{})
	})
	mustPanic("shared CGI path", "route /cgi-bin/echo of /other.Svc/Get already registered by /cgitest.Echo/Echo", func() {
		h := cgi.NewHandler()
		h.RegisterService(&echoDesc, echo{})
		other := svrkit.ServiceDesc{Name: "other.Svc", Methods: []svrkit.MethodDesc{{FullName: "/other.Svc/Get", CGIPath: "/cgi-bin/echo"}}}
		h.RegisterService(&other, struct{}{})
	})
	mustPanic("wrong implementation", "does not implement", func() {
		cgi.NewHandler().RegisterService(&echoDesc, struct{}{})
	})
	mustPanic("nil implementation", "nil implementation", func() {
		cgi.NewHandler().RegisterService(&echoDesc, nil)
	})

	// A failed registration leaves no half-registered routes behind.
	h := cgi.NewHandler(cgi.WithoutDescribe())
	func() {
		defer func() { _ = recover() }()
		bad := svrkit.ServiceDesc{Name: "bad.Svc", Methods: []svrkit.MethodDesc{
			{FullName: "/bad.Svc/A"}, {FullName: "/bad.Svc/A"},
		}}
		h.RegisterService(&bad, struct{}{})
	}()
	if routes := h.Routes(); len(routes) != 0 {
		t.Errorf("routes after a failed registration: %v", routes)
	}
}

// TestGeneratedCodeOverHTTP registers generated code with the handler and
// calls it through the generated client over cgi.Client.
func TestGeneratedCodeOverHTTP(t *testing.T) {
	h := cgi.NewHandler()
	hello.RegisterGreeterServer(h, greeterImpl{})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	client := hello.NewGreeterClient(cgi.NewClient(srv.URL, httpClient))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ctx = svrkit.WithOutgoingMetadata(ctx, svrkit.Metadata{"x-greeting": "Howdy"})
	reply, err := client.SayHello(ctx, &hello.HelloRequest{Name: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	if reply.GetMessage() != "Howdy, Ada" {
		t.Errorf("reply %q", reply.GetMessage())
	}
	_, err = client.SayHello(ctx, &hello.HelloRequest{})
	if svrkit.CodeOf(err) != svrkit.InvalidArgument || !strings.Contains(err.Error(), "name is required") {
		t.Errorf("empty name: %v, want invalid_argument", err)
	}

	// Transport failures have codes too.
	dead := hello.NewGreeterClient(cgi.NewClient("http://127.0.0.1:1", httpClient))
	if _, err := dead.SayHello(ctx, &hello.HelloRequest{Name: "x"}); svrkit.CodeOf(err) != svrkit.Unavailable {
		t.Errorf("dead server: %v, want unavailable", err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancelShort()
	<-short.Done()
	if _, err := client.SayHello(short, &hello.HelloRequest{Name: "x"}); svrkit.CodeOf(err) != svrkit.DeadlineExceeded {
		t.Errorf("expired context: %v, want deadline_exceeded", err)
	}
}

type greeterImpl struct {
	hello.UnimplementedGreeterServer
}

func (greeterImpl) SayHello(ctx context.Context, req *hello.HelloRequest) (*hello.HelloReply, error) {
	if req.GetName() == "" {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "name is required")
	}
	greeting := svrkit.IncomingMetadata(ctx)["x-greeting"]
	return &hello.HelloReply{Message: greeting + ", " + req.GetName()}, nil
}

func TestDescribe(t *testing.T) {
	h := cgi.NewHandler()
	hello.RegisterGreeterServer(h, greeterImpl{})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	check := func(how string, set *descriptorpb.FileDescriptorSet) {
		t.Helper()
		var names []string
		for _, f := range set.GetFile() {
			names = append(names, f.GetName())
		}
		want := "google/protobuf/descriptor.proto svrkit/options.proto hello/hello.proto"
		if got := strings.Join(names, " "); got != want {
			t.Errorf("%s: files %s, want %s (dependencies first)", how, got, want)
		}
	}

	res, body := do(t, "GET", srv.URL+svrkit.DescribeFullMethodName, "", nil, nil)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET describe: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	set := &descriptorpb.FileDescriptorSet{}
	if err := protojson.Unmarshal(body, set); err != nil {
		t.Fatal(err)
	}
	check("GET", set)

	set, err := svrkit.Describe(context.Background(), cgi.NewClient(srv.URL, httpClient))
	if err != nil {
		t.Fatal(err)
	}
	check("POST", set)

	off := httptest.NewServer(cgi.NewHandler(cgi.WithoutDescribe()))
	t.Cleanup(off.Close)
	_, err = svrkit.Describe(context.Background(), cgi.NewClient(off.URL, httpClient))
	if svrkit.CodeOf(err) != svrkit.NotFound {
		t.Errorf("describe WithoutDescribe: %v, want not_found", err)
	}
	if !errors.Is(err, svrkit.NewError(svrkit.NotFound, "")) {
		t.Errorf("errors.Is does not match the code of %v", err)
	}
}

// Typed error details travel in Connect's JSON shape and back.
func TestErrorBodyDetails(t *testing.T) {
	v, _ := proto.Marshal(wrapperspb.UInt32(7))
	eb := cgi.ErrorBody{Code: "not_found", Message: "m", Details: []cgi.ErrorDetail{
		{Type: "google.protobuf.UInt32Value", Value: base64.RawStdEncoding.EncodeToString(v)},
		{Type: "x.Broken", Value: "%%%"},
	}}
	e := eb.Err()
	if e.Code() != svrkit.NotFound || len(e.Details()) != 1 {
		t.Fatalf("Err() = %v with %d details", e, len(e.Details()))
	}
	var got wrapperspb.UInt32Value
	if err := e.Details()[0].UnmarshalTo(&got); err != nil || got.Value != 7 {
		t.Fatalf("detail %v, %v", &got, err)
	}
}
