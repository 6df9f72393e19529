package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/hello"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/cgi"
)

// greeter greets with the x-greeting metadata the caller sent.
type greeter struct {
	hello.UnimplementedGreeterServer
}

func (greeter) SayHello(ctx context.Context, req *hello.HelloRequest) (*hello.HelloReply, error) {
	return &hello.HelloReply{Message: svrkit.IncomingMetadata(ctx)["x-greeting"] + ", " + req.GetName()}, nil
}

// startTargets serves greeter over binary RPC and HTTP (describe enabled on
// both) and over HTTP without describe.
func startTargets(t *testing.T) (rpc, httpURL, httpNoDescribe string) {
	t.Helper()
	srv := svrkit.NewServer()
	hello.RegisterGreeterServer(srv, greeter{})
	// NewServer serves the describe method itself (TestDescribeOverRPC checks it).
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})

	h := cgi.NewHandler()
	hello.RegisterGreeterServer(h, greeter{})
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)

	bare := cgi.NewHandler(cgi.WithoutDescribe())
	hello.RegisterGreeterServer(bare, greeter{})
	bs := httptest.NewServer(bare)
	t.Cleanup(bs.Close)
	return srv.Addr().String(), hs.URL, bs.URL
}

func callCmd(t *testing.T, dir, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &env{ctx: context.Background(), dir: dir, stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut}
	code := run(e, append([]string{"call"}, args...))
	return code, out.String(), errOut.String()
}

func TestCallMetadataAndData(t *testing.T) {
	rpc, httpURL, _ := startTargets(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "req.json"), []byte(`{"name":"File"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{rpc, httpURL} {
		for _, tc := range []struct {
			args  []string
			stdin string
			want  string
		}{
			{[]string{"-H", "X-Greeting: Howdy", "-d", `{"name":"Ada"}`}, "", "Howdy, Ada"},
			{[]string{"-H", "x-greeting:Hi", "-d", "@req.json"}, "", "Hi, File"},
			{[]string{"-H", "x-greeting:Yo", "-d", "@-"}, `{"name":"Stdin"}`, "Yo, Stdin"},
			{nil, "", ", "},
		} {
			args := append(append([]string{}, tc.args...), target, "hello.Greeter/SayHello")
			code, stdout, stderr := callCmd(t, dir, tc.stdin, args...)
			want := "{\n  \"message\": \"" + tc.want + "\"\n}\n"
			if code != 0 || stdout != want {
				t.Errorf("svrkit call %v: exit %d, stdout %q, stderr %q; want %q", args, code, stdout, stderr, want)
			}
		}
	}
}

func TestCallErrors(t *testing.T) {
	rpc, _, noDescribe := startTargets(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{noDescribe, "hello.Greeter/SayHello"}, 1, "the server has no describe endpoint"},
		{[]string{rpc, "hello.Nope/SayHello"}, 1, "no service hello.Nope"},
		{[]string{rpc, "SayHello"}, 1, `method "SayHello": want package.Service/Method`},
		{[]string{"-H", "novalue", rpc, "hello.Greeter/SayHello"}, 1, `-H "novalue": want key:value`},
		{[]string{"-d", "{", rpc, "hello.Greeter/SayHello"}, 1, "request for hello.Greeter.SayHello"},
		{[]string{rpc}, 2, "usage: svrkit call"},
		{[]string{"-proto", "missing.proto", rpc, "hello.Greeter/SayHello"}, 1, "missing.proto"},
	} {
		code, _, stderr := callCmd(t, dir, "", tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.contains) {
			t.Errorf("svrkit call %v: exit %d, stderr %q; want exit %d containing %q", tc.args, code, stderr, tc.code, tc.contains)
		}
	}
}
