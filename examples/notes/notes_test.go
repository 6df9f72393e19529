package notes_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bins holds the two Logicsvr binaries, built once from their generated
// mains by TestMain.
var bins = map[string]string{}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "notes-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The Logicsvrs these tests run write their monitor regions here,
	// removed with the rest, not in the machine's /dev/shm.
	os.Setenv("SVRKIT_MONITOR_DIR", filepath.Join(dir, "monitor"))
	for _, name := range []string{"users", "notes"} {
		bins[name] = filepath.Join(dir, name)
		pkg := "github.com/svrkit/svrkit/examples/notes/logicsvr/" + name
		if out, err := exec.Command("go", "build", "-o", bins[name], pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// symbols lists the symbol names of a binary (go tool nm works on every
// platform's executable format).
func symbols(t *testing.T, bin string) []string {
	t.Helper()
	out, err := exec.Command("go", "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm %s: %v", bin, err)
	}
	var syms []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 3 {
			syms = append(syms, f[len(f)-1])
		}
	}
	return syms
}

func count(syms []string, substr string) int {
	n := 0
	for _, s := range syms {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

// TestEachLogicsvrLinksOnlyItsOwnCGIs is the point of one main per
// Logicsvr: the CGIs of one are not in the other's binary, so a bug in them
// cannot crash it and a release of one does not ship the other.
func TestEachLogicsvrLinksOnlyItsOwnCGIs(t *testing.T) {
	const pkg = "github.com/svrkit/svrkit/examples/notes/"
	users, notes := symbols(t, bins["users"]), symbols(t, bins["notes"])
	cases := []struct {
		bin         string
		syms        []string
		own, others string
	}{
		{"users", users, pkg + "logicsvr/users/handlers.", pkg + "logicsvr/notes/handlers."},
		{"notes", notes, pkg + "logicsvr/notes/handlers.", pkg + "logicsvr/users/handlers."},
	}
	for _, tc := range cases {
		if count(tc.syms, tc.own) == 0 {
			t.Errorf("%s binary has no symbol of its own handlers (%s*): the check would prove nothing", tc.bin, tc.own)
		}
		if n := count(tc.syms, tc.others); n != 0 {
			t.Errorf("%s binary links %d symbols of another Logicsvr's handlers (%s*)", tc.bin, n, tc.others)
		}
	}
	// users does not even carry the notes service's descriptor; notes does
	// carry users' (it calls users through the generated client).
	if n := count(users, pkg[:len(pkg)-1]+".Notes_ServiceDesc"); n != 0 {
		t.Error("users binary links the Notes service descriptor")
	}

	// And each says so itself.
	for name, want := range map[string]string{"users": "notes.Users", "notes": "notes.Notes"} {
		out, err := exec.Command(bins[name], "-buildinfo").Output()
		if err != nil {
			t.Fatalf("%s -buildinfo: %v", name, err)
		}
		var bi struct {
			Logicsvr string
			Services []struct{ Name string }
		}
		if err := json.Unmarshal(out, &bi); err != nil {
			t.Fatal(err)
		}
		if bi.Logicsvr != name || len(bi.Services) != 1 || bi.Services[0].Name != want {
			t.Errorf("%s -buildinfo: %s", name, out)
		}
	}
}

type proc struct {
	cmd              *exec.Cmd
	http, rpc, admin string
	done             chan struct{}
	logs             bytes.Buffer
}

// start runs a Logicsvr binary with a config file and waits, bounded, for
// its "logicsvr ready" log line, which carries the bound addresses.
func start(t *testing.T, name, config string) *proc {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), name+".json")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: exec.Command(bins[name], "-config", cfgPath, "-log-format", "json"), done: make(chan struct{})}
	pipe, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	ready := make(chan map[string]any, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			p.logs.Write(append(sc.Bytes(), '\n'))
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "logicsvr ready" {
				ready <- rec
			}
		}
		_ = p.cmd.Wait()
	}()
	select {
	case rec := <-ready:
		p.http, p.rpc, p.admin = rec["http"].(string), rec["rpc"].(string), rec["admin"].(string)
	case <-p.done:
		t.Fatalf("%s exited before ready:\n%s", name, p.logs.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("%s not ready in 15s", name)
	}
	return p
}

func call(t *testing.T, base, path, body string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestTwoLogicsvrsCallEachOther runs both binaries, notes routed to users by
// its config file, and checks a CGI call's request id reaches users.
func TestTwoLogicsvrsCallEachOther(t *testing.T) {
	local := `"http": "127.0.0.1:0", "rpc": "127.0.0.1:0", "admin": "127.0.0.1:0"`
	users := start(t, "users", `{`+local+`}`)
	notes := start(t, "notes", `{`+local+`, "routes": {"notes.Users": ["`+users.rpc+`"]}}`)

	if status, body := call(t, users.http, "/cgi-bin/users/register", `{"name":"ada"}`); status != 200 {
		t.Fatalf("register: %d %s", status, body)
	}
	status, body := call(t, notes.http, "/cgi-bin/notes/add", `{"author":"ada","text":"hello"}`, "X-Request-Id", "trace-1")
	if status != 200 || !strings.Contains(body, `"authorCheckedIn":"trace-1"`) {
		t.Fatalf("add note: %d %s; want the request id to reach users", status, body)
	}
	if status, body := call(t, notes.http, "/notes.Notes/AddNote", `{"author":"bob","text":"hi"}`); status != 400 || !strings.Contains(body, "failed_precondition") {
		t.Errorf("note of an unknown author: %d %s", status, body)
	}
	if status, body := call(t, notes.http, "/notes.Notes/ListNotes", `{"author":"ada"}`); status != 200 || !strings.Contains(body, `"text":"hello"`) {
		t.Errorf("list: %d %s", status, body)
	}

	// Stopping users leaves notes serving what does not need users.
	_ = users.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-users.done:
	case <-time.After(10 * time.Second):
		t.Fatal("users did not stop")
	}
	if status, body := call(t, notes.http, "/cgi-bin/notes/list", `{"author":"ada"}`); status != 200 {
		t.Errorf("list with users down: %d %s", status, body)
	}
	if status, body := call(t, notes.http, "/cgi-bin/notes/add", `{"author":"ada","text":"again"}`); status != 503 || !strings.Contains(body, "unavailable") {
		t.Errorf("add with users down: %d %s, want 503 unavailable", status, body)
	}
}
