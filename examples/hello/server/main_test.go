package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/hello"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/cgi"
)

// startHello runs the example server on free loopback ports until the test
// ends and returns its binary RPC address and HTTP base URL.
func startHello(t *testing.T) (rpcAddr, httpURL string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	type addrs struct{ rpc, http net.Addr }
	ready := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, "127.0.0.1:0", "127.0.0.1:0", func(rpc, http net.Addr) { ready <- addrs{rpc, http} })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("server did not stop within 10s")
		}
	})
	select {
	case a := <-ready:
		return a.rpc.String(), "http://" + a.http.String()
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start within 10s")
	}
	return "", ""
}

func TestGeneratedClient(t *testing.T) {
	rpcAddr, httpURL := startHello(t)
	rpc, err := svrkit.NewClient(rpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rpc.Close() })

	for name, inv := range map[string]svrkit.Invoker{
		"binary RPC": rpc,
		"HTTP":       cgi.NewClient(httpURL, nil),
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			client := hello.NewGreeterClient(inv)
			reply, err := client.SayHello(ctx, &hello.HelloRequest{Name: "Ada"})
			if err != nil {
				t.Fatal(err)
			}
			if reply.GetMessage() != "Hello, Ada!" {
				t.Errorf("reply %q", reply.GetMessage())
			}
			_, err = client.SayHello(ctx, &hello.HelloRequest{})
			if svrkit.CodeOf(err) != svrkit.InvalidArgument {
				t.Errorf("empty name: %v, want invalid_argument", err)
			}
		})
	}
}

func TestHTTPJSON(t *testing.T) {
	_, httpURL := startHello(t)
	hc := &http.Client{Timeout: 5 * time.Second}
	for _, path := range []string{"/cgi-bin/hello/sayhello", hello.Greeter_SayHello_FullMethodName} {
		res, err := hc.Post(httpURL+path, "application/json", strings.NewReader(`{"name":"Bo"}`))
		if err != nil {
			t.Fatal(err)
		}
		var reply struct{ Message string }
		err = json.NewDecoder(res.Body).Decode(&reply)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 || reply.Message != "Hello, Bo!" {
			t.Errorf("POST %s: %d %q %v", path, res.StatusCode, reply.Message, err)
		}
	}
}

// TestSvrkitCall builds the svrkit tool and calls the running example with
// it as a separate process, the way a developer would.
func TestSvrkitCall(t *testing.T) {
	rpcAddr, httpURL := startHello(t)
	bin := filepath.Join(t.TempDir(), "svrkit")
	if b, err := exec.Command("go", "build", "-o", bin, "github.com/svrkit/svrkit/tools/svrkit").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	svrkitCall := func(args ...string) (code int, stdout, stderr string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"call", "-timeout", "10s"}, args...)...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), out.String(), errOut.String()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, out.String(), errOut.String()
	}

	const wantReply = "{\n  \"message\": \"Hello, Ada!\"\n}\n"
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"binary RPC, described by the server", []string{"-d", `{"name":"Ada"}`, rpcAddr, "hello.Greeter/SayHello"}},
		{"HTTP, described by the server", []string{"-d", `{"name":"Ada"}`, httpURL, "hello.Greeter.SayHello"}},
		{"binary RPC, described by the .proto", []string{"-proto", "../hello.proto", "-I", "../..", "-d", `{"name":"Ada"}`, rpcAddr, "hello.Greeter/SayHello"}},
		{"HTTP, described by the .proto", []string{"-proto", "../hello.proto", "-I", "../..", "-d", `{"name":"Ada"}`, httpURL, "/hello.Greeter/SayHello"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := svrkitCall(tc.args...)
			if code != 0 || stdout != wantReply {
				t.Errorf("exit %d, stdout %q, stderr %q; want 0 and %q", code, stdout, stderr, wantReply)
			}
		})
	}

	t.Run("error", func(t *testing.T) {
		code, stdout, stderr := svrkitCall("-d", `{}`, rpcAddr, "hello.Greeter/SayHello")
		if want := "svrkit call: invalid_argument: name is required\n"; code != 1 || stdout != "" || stderr != want {
			t.Errorf("exit %d, stdout %q, stderr %q; want 1 and %q", code, stdout, stderr, want)
		}
	})
	t.Run("bad request JSON", func(t *testing.T) {
		code, _, stderr := svrkitCall("-d", `{"nom":"x"}`, rpcAddr, "hello.Greeter/SayHello")
		if code != 1 || !strings.Contains(stderr, `unknown field "nom"`) {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("unknown method", func(t *testing.T) {
		code, _, stderr := svrkitCall(httpURL, "hello.Greeter/SayBye")
		if code != 1 || !strings.Contains(stderr, "service hello.Greeter has no method SayBye") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("list", func(t *testing.T) {
		code, stdout, stderr := svrkitCall("-list", rpcAddr)
		want := "hello.Greeter\n  SayHello(hello.HelloRequest) returns (hello.HelloReply)  cmdid 1  /cgi-bin/hello/sayhello\n"
		if code != 0 || stdout != want {
			t.Errorf("exit %d, stdout %q, stderr %q; want %q", code, stdout, stderr, want)
		}
	})
}
