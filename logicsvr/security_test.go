package logicsvr_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/logicsvr/internal/labsvc"
	"github.com/svrkit/svrkit/svrkit"
)

// labKeys provisions service keys for the lab and a caller, and returns
// the config's auth object and the key directory.
func labKeys(t *testing.T, identities ...string) (authJSON, dir string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "keys")
	ring, err := svrkit.GenerateKeys(dir, append([]string{"lab"}, identities...))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`{"key_file": %q, "keyring_file": %q}`, svrkit.KeyPath(dir, "lab"), ring), dir
}

// With auth configured, the lab's RPC port answers only callers that prove
// an identity it trusts; everyone else gets unauthenticated and nothing
// else. (Before, any process that reached the port could call every
// method.)
func TestRPCRequiresServiceAuth(t *testing.T) {
	auth, dir := labKeys(t, "caller")
	l := startLab(t, "-config", writeConfig(t, `{"auth": `+auth+`}`))
	echo := func(opts ...svrkit.ClientOption) error {
		c, err := svrkit.NewClient(l.rpc, append(opts, svrkit.WithRetries(0))...)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = labsvc.NewLabClient(c).Echo(ctx, &labsvc.EchoRequest{Text: "hi"})
		return err
	}
	key, err := svrkit.ReadKey(svrkit.KeyPath(dir, "caller"))
	if err != nil {
		t.Fatal(err)
	}
	if err := echo(svrkit.WithIdentity("caller", key)); err != nil {
		t.Fatalf("trusted caller: %v", err)
	}
	if err := echo(); svrkit.CodeOf(err) != svrkit.Unauthenticated {
		t.Fatalf("no identity: %v, want unauthenticated", err)
	}
	_, stranger, _ := ed25519.GenerateKey(nil)
	if err := echo(svrkit.WithIdentity("caller", stranger)); svrkit.CodeOf(err) != svrkit.Unauthenticated {
		t.Fatalf("caller's name, another key: %v, want unauthenticated", err)
	}
}

// A Logicsvr refuses to start with a key file others can read.
func TestRefusesReadableKey(t *testing.T) {
	auth, dir := labKeys(t)
	if err := os.Chmod(svrkit.KeyPath(dir, "lab"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(labBin, "-config", writeConfig(t, `{"auth": `+auth+`}`)).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(string(out), "too open") {
		t.Fatalf("got %v, output %q; want an exit naming the key's permissions", err, out)
	}
}

// A client that trickles its request body is cut off by the read timeout
// instead of holding a connection (and a goroutine) forever.
func TestSlowBodyIsCutOff(t *testing.T) {
	l := startLab(t, "-config", writeConfig(t, `{"http_read_timeout": "500ms"}`))
	nc, err := net.DialTimeout("tcp", l.http, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprintf(nc, "POST /cgi-bin/lab/echo HTTP/1.1\r\nHost: lab\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	start := time.Now()
	closed := make(chan error, 1)
	go func() {
		_ = nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err := io.Copy(io.Discard, nc)
		closed <- err
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-closed:
			// A reset is a close too: the server closed while a byte of
			// ours was on its way, and the kernel answered that byte so.
			if err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("connection not closed by the server: %v", err)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Fatalf("slow body held the connection for %v", took)
			}
			return
		case <-tick.C:
			_, _ = nc.Write([]byte(" ")) // one byte at a time, forever
		}
	}
}

// The HTTP front does not hand out the schema unless asked.
func TestHTTPDescribeOffByDefault(t *testing.T) {
	for _, tc := range []struct {
		cfg  string
		want int
	}{{`{}`, http.StatusNotFound}, {`{"http_describe": true}`, http.StatusOK}} {
		l := startLab(t, "-config", writeConfig(t, tc.cfg))
		status, _, body := post(t, l.http, "/svrkit.Describe/Describe", "application/json", []byte(`{}`))
		if status != tc.want {
			t.Errorf("config %s: describe over HTTP answered %d %s, want %d", tc.cfg, status, body, tc.want)
		}
	}
}

// A Logicsvr of internal services (no CGI paths) serves no HTTP at all,
// unless its config asks for their Connect routes.
func TestInternalServicesStayOffHTTP(t *testing.T) {
	internal := benchDesc
	internal.Methods = []svrkit.MethodDesc{benchDesc.Methods[0]}
	internal.Methods[0].CGIPath = ""
	for _, open := range []bool{false, true} {
		h, err := logicsvr.New(logicsvr.Config{Name: "data", HTTP: "127.0.0.1:0", RPC: "127.0.0.1:0", Admin: "127.0.0.1:0", HTTPInternal: open})
		if err != nil {
			t.Fatal(err)
		}
		h.RegisterService(&internal, struct{}{})
		if err := h.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
		if !open {
			if h.HTTPAddr() != nil {
				t.Errorf("internal-only Logicsvr listens on HTTP at %v", h.HTTPAddr())
			}
			continue
		}
		b, _ := proto.Marshal(wrapperspb.Bytes([]byte("x")))
		status, _, body := post(t, h.HTTPAddr().String(), internal.Methods[0].FullName, "application/proto", b)
		if status != http.StatusOK {
			t.Errorf("with http_internal, the Connect route answered %d %s", status, body)
		}
	}
}

// With no address configured, a Logicsvr listens on loopback only.
func TestDefaultAddressesAreLoopback(t *testing.T) {
	for _, a := range []string{logicsvr.DefaultHTTPAddr, logicsvr.DefaultRPCAddr, logicsvr.DefaultAdminAddr} {
		host, _, err := net.SplitHostPort(a)
		if err != nil || !net.ParseIP(host).IsLoopback() {
			t.Errorf("default address %q is not loopback", a)
		}
	}
}
