package logicsvr_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/logicsvr/internal/labsvc"
	"github.com/svrkit/svrkit/svrkit"
)

// labBin is the lab Logicsvr (logicsvr/internal/labsvc), built once from its
// generated main by TestMain: every test here runs it as a real process.
var labBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "logicsvr-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The Logicsvrs these tests run write their monitor regions here,
	// removed with the rest, not in the machine's /dev/shm.
	os.Setenv("SVRKIT_MONITOR_DIR", filepath.Join(dir, "monitor"))
	labBin = filepath.Join(dir, "lab")
	out, err := exec.Command("go", "build", "-o", labBin, "github.com/svrkit/svrkit/logicsvr/internal/labsvc/logicsvr/lab").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the lab Logicsvr: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// lab is one running lab process.
type lab struct {
	t                *testing.T
	cmd              *exec.Cmd
	http, rpc, admin string

	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{}
	exit   int
}

// startLab runs the lab binary on free loopback ports with extra args and
// waits (bounded) for its "logicsvr ready" log line.
func startLab(t *testing.T, args ...string) *lab {
	t.Helper()
	all := append([]string{"-http", "127.0.0.1:0", "-rpc", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-log-format", "json"}, args...)
	l := &lab{t: t, cmd: exec.Command(labBin, all...), done: make(chan struct{})}
	pipe, err := l.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = l.cmd.Process.Kill()
		<-l.done
	})
	ready := make(chan map[string]any, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			l.mu.Lock()
			l.stderr.Write(line)
			l.stderr.WriteByte('\n')
			l.mu.Unlock()
			var rec map[string]any
			if json.Unmarshal(line, &rec) == nil && rec["msg"] == "logicsvr ready" {
				ready <- rec
			}
		}
		_ = l.cmd.Wait()
		l.exit = l.cmd.ProcessState.ExitCode()
		close(l.done)
	}()
	select {
	case rec := <-ready:
		l.http, l.rpc, l.admin = rec["http"].(string), rec["rpc"].(string), rec["admin"].(string)
	case <-l.done:
		t.Fatalf("lab exited %d before ready:\n%s", l.exit, l.logs())
	case <-time.After(15 * time.Second):
		t.Fatalf("lab not ready within 15s:\n%s", l.logs())
	}
	return l
}

func (l *lab) logs() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stderr.String()
}

func (l *lab) signal(sig syscall.Signal) {
	l.t.Helper()
	if err := l.cmd.Process.Signal(sig); err != nil {
		l.t.Fatal(err)
	}
}

// wait waits, bounded, for the process to exit and returns its status.
func (l *lab) wait(d time.Duration) int {
	l.t.Helper()
	select {
	case <-l.done:
		return l.exit
	case <-time.After(d):
		l.t.Fatalf("lab still running after %v:\n%s", d, l.logs())
		return -1
	}
}

// rpcClient returns a generated Lab client over binary RPC to l.
func (l *lab) rpcClient(t *testing.T) labsvc.LabClient {
	t.Helper()
	c, err := svrkit.NewClient(l.rpc, svrkit.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return labsvc.NewLabClient(c)
}

var httpClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64},
}

// post sends body to path with a content type and returns status, headers
// and body, failing the test on a transport error. Goroutines use doPost.
func post(t *testing.T, base, path, ctype string, body []byte, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	status, h, b, err := doPost(base, path, ctype, body, hdr...)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return status, h, b
}

func doPost(base, path, ctype string, body []byte, hdr ...string) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b, err
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	res, err := httpClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// errorBody decodes a Connect error body; code is "" if b is not one.
func errorBody(b []byte) (code, msg string) {
	var e struct{ Code, Message string }
	if err := json.Unmarshal(b, &e); err != nil {
		return "", ""
	}
	return e.Code, e.Message
}

// metric returns the value of the first /metrics line starting with
// prefix, or -1.
func metric(t *testing.T, admin, prefix string) float64 {
	t.Helper()
	_, b := get(t, "http://"+admin+"/metrics")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			var v float64
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			return v
		}
	}
	return -1
}

// waitUntil polls cond, every 10ms, until it holds; it fails the test if
// cond does not hold within 10s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after 10s waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitMetric waits, up to 5s, until the series starting with prefix has
// the value want.
func waitMetric(t *testing.T, admin, prefix string, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		v := metric(t, admin, prefix)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v after 5s, want %v", prefix, v, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestServesHTTPAndRPC(t *testing.T) {
	l := startLab(t)

	// The CGI path and the Connect route, in JSON and binary protobuf.
	status, hdr, b := post(t, l.http, "/cgi-bin/lab/echo", "application/json", []byte(`{"text":"hi"}`), "X-Request-Id", "req-42")
	if status != 200 || !strings.Contains(string(b), `"text":"hi"`) || !strings.Contains(string(b), `"requestId":"req-42"`) {
		t.Fatalf("CGI path: %d %s", status, b)
	}
	if hdr.Get("X-Request-Id") != "req-42" {
		t.Errorf("request id not echoed: %q", hdr.Get("X-Request-Id"))
	}
	reqBody, _ := proto.Marshal(&labsvc.EchoRequest{Text: "bin"})
	status, hdr, b = post(t, l.http, "/lab.Lab/Echo", "application/proto", reqBody)
	if status != 200 || hdr.Get("Content-Type") != "application/proto" {
		t.Fatalf("Connect route, proto: %d %q %q", status, hdr.Get("Content-Type"), b)
	}
	var reply labsvc.EchoReply
	if err := proto.Unmarshal(b, &reply); err != nil || reply.GetText() != "bin" || len(reply.GetRequestId()) != 16 {
		t.Fatalf("proto reply %v (%v); want text bin and a generated 16-digit request id", &reply, err)
	}

	// The same handler over binary RPC, with the request id from metadata.
	c := l.rpcClient(t)
	ctx := svrkit.WithOutgoingMetadata(context.Background(), svrkit.Metadata{"x-request-id": "rpc-7"})
	out, err := c.Echo(ctx, &labsvc.EchoRequest{Text: "rpc"})
	if err != nil || out.GetText() != "rpc" || out.GetRequestId() != "rpc-7" {
		t.Fatalf("RPC Echo: %v, %v", out, err)
	}

	// Per-cmdid metrics, per transport, and the Go runtime's.
	if v := metric(t, l.admin, `logicsvr_requests_total{cmdid="1",method="/lab.Lab/Echo",transport="http"}`); v != 2 {
		t.Errorf("http requests of Echo = %v, want 2", v)
	}
	if v := metric(t, l.admin, `logicsvr_requests_total{cmdid="1",method="/lab.Lab/Echo",transport="rpc"}`); v != 1 {
		t.Errorf("rpc requests of Echo = %v, want 1", v)
	}
	if v := metric(t, l.admin, `logicsvr_request_duration_seconds_count{cmdid="1",method="/lab.Lab/Echo",transport="rpc"}`); v != 1 {
		t.Errorf("rpc latency count of Echo = %v, want 1", v)
	}
	if v := metric(t, l.admin, "go_goroutines"); v <= 0 {
		t.Errorf("go_goroutines = %v", v)
	}
	// Overload control is on, and the RPC call was admitted at the default
	// priority (counted when its window rolls, within a second).
	if v := metric(t, l.admin, "logicsvr_admission_enabled"); v != 1 {
		t.Errorf("logicsvr_admission_enabled = %v", v)
	}
	waitMetric(t, l.admin, `logicsvr_admission_admitted_total{priority="128"}`, 1)
	if v := metric(t, l.admin, `logicsvr_build_info{`); v != 1 {
		t.Errorf("logicsvr_build_info = %v", v)
	}

	// Admin endpoints.
	for path, want := range map[string]string{
		"/healthz":      "ok",
		"/readyz":       `"state": "ready"`,
		"/buildinfo":    `"cgi_path": "/cgi-bin/lab/stuck"`,
		"/debug/pprof/": "goroutine",
	} {
		status, b := get(t, "http://"+l.admin+path)
		if status != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d, want 200 with %q:\n%.300s", path, status, want, b)
		}
	}
}

func TestBadRequestsGetClearErrors(t *testing.T) {
	l := startLab(t, "-config", writeConfig(t, `{"max_body_bytes": 1024}`))
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
		code                            string
	}{
		{"bad JSON", "POST", "/cgi-bin/lab/echo", "application/json", `{"text":`, 400, "invalid_argument"},
		{"wrong field type", "POST", "/lab.Lab/Echo", "application/json", `{"sleepMs":"soon"}`, 400, "invalid_argument"},
		{"bad protobuf", "POST", "/lab.Lab/Echo", "application/proto", "\xff\xff\xff", 400, "invalid_argument"},
		{"wrong Content-Type", "POST", "/cgi-bin/lab/echo", "text/plain", `hello`, 415, "unimplemented"},
		{"no Content-Type", "POST", "/cgi-bin/lab/echo", "", `{}`, 415, "unimplemented"},
		{"oversize body", "POST", "/cgi-bin/lab/echo", "application/json", `{"text":"` + strings.Repeat("x", 4096) + `"}`, 413, "resource_exhausted"},
		{"unknown path", "POST", "/cgi-bin/lab/nope", "application/json", `{}`, 404, "not_found"},
		{"unknown method", "POST", "/lab.Lab/Nope", "application/json", `{}`, 404, "not_found"},
		{"GET on a CGI", "GET", "/cgi-bin/lab/echo", "", "", 405, "unimplemented"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://"+l.http+tc.path, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			res, err := httpClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Errorf("status %d, want %d (%s)", res.StatusCode, tc.status, b)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if code, msg := errorBody(b); code != tc.code || msg == "" {
				t.Errorf("error body %s, want code %s and a message", b, tc.code)
			}
		})
	}
	// Refusals before any method are counted by status too.
	if v := metric(t, l.admin, `logicsvr_http_responses_total{status="415"}`); v != 2 {
		t.Errorf("415 responses counted %v, want 2", v)
	}
}

func TestPanickingCGIBesideHealthyOne(t *testing.T) {
	l := startLab(t)
	c := l.rpcClient(t)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan string, 4*n)
	for i := 0; i < n; i++ {
		wg.Add(4)
		go func() {
			defer wg.Done()
			status, _, b, err := doPost(l.http, "/cgi-bin/lab/panic", "application/json", []byte(`{"why":"test"}`))
			if code, msg := errorBody(b); err != nil || status != 500 || code != "internal" || !strings.Contains(msg, "request id") {
				errs <- fmt.Sprintf("panic over HTTP: %d %s %v", status, b, err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := c.Panic(context.Background(), &labsvc.PanicRequest{}); svrkit.CodeOf(err) != svrkit.Internal {
				errs <- fmt.Sprintf("panic over RPC: %v", err)
			}
		}()
		go func(i int) {
			defer wg.Done()
			text := fmt.Sprint("ok", i)
			status, _, b, err := doPost(l.http, "/cgi-bin/lab/echo", "application/json", []byte(`{"text":"`+text+`"}`))
			if err != nil || status != 200 || !strings.Contains(string(b), text) {
				errs <- fmt.Sprintf("healthy CGI over HTTP: %d %s %v", status, b, err)
			}
		}(i)
		go func(i int) {
			defer wg.Done()
			text := fmt.Sprint("rpc", i)
			if out, err := c.Echo(context.Background(), &labsvc.EchoRequest{Text: text}); err != nil || out.GetText() != text {
				errs <- fmt.Sprintf("healthy CGI over RPC: %v %v", out, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if v := metric(t, l.admin, `logicsvr_panics_total{cmdid="2",method="/lab.Lab/Panic"}`); v != 2*n {
		t.Errorf("panics counted %v, want %d", v, 2*n)
	}
	if v := metric(t, l.admin, `logicsvr_request_errors_total{cmdid="2",code="internal",method="/lab.Lab/Panic",transport="http"}`); v != n {
		t.Errorf("internal errors of Panic over http = %v, want %d", v, n)
	}
	if !strings.Contains(l.logs(), "handlers.lab.Panic") {
		t.Error("panic log lacks the handler's stack")
	}
	select {
	case <-l.done:
		t.Fatal("lab died")
	default:
	}
}

func TestConcurrencyLimitAndTimeout(t *testing.T) {
	l := startLab(t)
	c := l.rpcClient(t)
	const stuckSlots = `logicsvr_requests_in_flight{cmdid="3",method="/lab.Lab/Stuck"}`
	// Stuck ignores its context; its IDL says timeout 300ms, at most 2 at
	// once. One call over RPC sleeps far past its deadline, one over HTTP a
	// little past it.
	rpcStuck := make(chan error, 1)
	go func() {
		_, err := c.Stuck(context.Background(), &labsvc.EchoRequest{SleepMs: 20000})
		rpcStuck <- err
	}()
	type res struct {
		status  int
		code    string
		elapsed time.Duration
	}
	const httpSleep = 1000 * time.Millisecond
	httpStuck := make(chan res, 1)
	go func() {
		start := time.Now()
		status, _, b, _ := doPost(l.http, "/cgi-bin/lab/stuck", "application/json",
			[]byte(fmt.Sprintf(`{"sleepMs":%d}`, httpSleep.Milliseconds())))
		code, _ := errorBody(b)
		httpStuck <- res{status, code, time.Since(start)}
	}()
	// Wait until both hold their slots.
	waitMetric(t, l.admin, stuckSlots, 2)
	// A third is refused, on both transports, without waiting for a slot:
	// both stuck handlers still hold theirs when the refusals are in.
	status, _, b := post(t, l.http, "/cgi-bin/lab/stuck", "application/json", []byte(`{}`))
	if code, _ := errorBody(b); status != 429 || code != "resource_exhausted" {
		t.Errorf("third stuck call over HTTP: %d %s, want 429 resource_exhausted", status, b)
	}
	if _, err := c.Stuck(context.Background(), &labsvc.EchoRequest{}); svrkit.CodeOf(err) != svrkit.ResourceExhausted {
		t.Errorf("third stuck call over RPC: %v, want resource_exhausted", err)
	}
	if out, err := c.Echo(context.Background(), &labsvc.EchoRequest{Text: "x"}); err != nil || out.GetText() != "x" {
		t.Errorf("Echo while Stuck is saturated: %v %v", out, err)
	}
	// The RPC caller stops waiting at the deadline (the client knows the
	// method's timeout) while its handler sleeps on, holding its slot.
	select {
	case err := <-rpcStuck:
		if svrkit.CodeOf(err) != svrkit.DeadlineExceeded {
			t.Errorf("stuck call over RPC: %v, want deadline_exceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stuck call over RPC not answered within 10s")
	}
	// The HTTP call is answered when its handler returns, past its
	// deadline: deadline_exceeded, not the handler's late result.
	select {
	case r := <-httpStuck:
		if r.status != 504 || r.code != "deadline_exceeded" {
			t.Errorf("stuck call over HTTP: %d %s, want 504 deadline_exceeded", r.status, r.code)
		}
		if r.elapsed < httpSleep {
			t.Errorf("stuck call over HTTP answered after %v, before its handler returned (%v)", r.elapsed, httpSleep)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stuck call over HTTP not answered within 10s")
	}
	// The RPC call's handler is still asleep, so its slot is still taken.
	waitMetric(t, l.admin, stuckSlots, 1)
	if v := metric(t, l.admin, `logicsvr_request_errors_total{cmdid="3",code="deadline_exceeded",method="/lab.Lab/Stuck",transport="http"}`); v != 1 {
		t.Errorf("deadline_exceeded errors of Stuck over http = %v, want 1", v)
	}
}

func TestSIGTERMUnderLoadAnswersEveryRequest(t *testing.T) {
	l := startLab(t, "-drain-delay", "2s", "-drain-timeout", "5s")
	c := l.rpcClient(t)

	// Slow calls in flight when the signal comes must complete.
	slow := make(chan error, 4)
	for i := 0; i < 2; i++ {
		go func() {
			status, _, b, err := doPost(l.http, "/cgi-bin/lab/echo", "application/json", []byte(`{"text":"slow","sleepMs":1500}`))
			if err != nil || status != 200 {
				slow <- fmt.Errorf("slow HTTP call: %d %s %v", status, b, err)
				return
			}
			slow <- nil
		}()
		go func() {
			_, err := c.Echo(context.Background(), &labsvc.EchoRequest{Text: "slow", SleepMs: 1500})
			slow <- err
		}()
	}

	// Closed-loop load on keep-alive connections. The HTTP load acts as a
	// load balancer does: it polls readiness and stops sending new requests
	// once the Logicsvr reports it is draining; every request it did send
	// must be answered. (A client that keeps dialing after the listener
	// closes can always have its connection reset in the kernel's accept
	// queue; keeping fronts away in time is what readiness and the drain
	// delay are for.) The RPC load ignores readiness: goaway and Unavailable
	// answers steer it.
	var ready atomic.Bool
	ready.Store(true)
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		for ready.Load() {
			res, err := httpClient.Get("http://" + l.admin + "/readyz")
			if err != nil || res.StatusCode != 200 {
				ready.Store(false)
			}
			if res != nil {
				res.Body.Close()
			}
			time.Sleep(25 * time.Millisecond)
		}
	}()
	var mu sync.Mutex
	counts := map[string]int{}
	var bad []string
	note := func(k string) { mu.Lock(); counts[k]++; mu.Unlock() }
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ready.Load() {
				req, _ := http.NewRequest("POST", "http://"+l.http+"/cgi-bin/lab/echo", strings.NewReader(`{"text":"load","sleepMs":5}`))
				req.Header.Set("Content-Type", "application/json")
				res, err := httpClient.Do(req)
				if err != nil {
					if errors.Is(err, syscall.ECONNREFUSED) {
						note("http refused") // never sent: the listener is closed
						return
					}
					mu.Lock()
					bad = append(bad, "HTTP request without an answer: "+err.Error())
					mu.Unlock()
					return
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				switch {
				case res.StatusCode == 200:
					note("http ok")
				case res.StatusCode == 503 && strings.Contains(string(b), `"unavailable"`):
					note("http unavailable")
				default:
					mu.Lock()
					bad = append(bad, fmt.Sprintf("HTTP %d %s", res.StatusCode, b))
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := c.Echo(context.Background(), &labsvc.EchoRequest{Text: "load", SleepMs: 5})
				switch svrkit.CodeOf(err) {
				case svrkit.OK:
					note("rpc ok")
				case svrkit.Unavailable:
					note("rpc unavailable")
					time.Sleep(5 * time.Millisecond)
				default:
					mu.Lock()
					bad = append(bad, "RPC: "+err.Error())
					mu.Unlock()
					return
				}
			}
		}()
	}

	// The signal comes once both loads are served.
	waitUntil(t, "calls served on both transports", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return counts["http ok"] > 0 && counts["rpc ok"] > 0
	})
	l.signal(syscall.SIGTERM)
	// Readiness goes false while calls are still served: once /readyz says
	// draining, the front still answers, telling keep-alive clients to
	// reconnect elsewhere.
	waitUntil(t, "readyz to report draining", func() bool {
		status, b := get(t, "http://"+l.admin+"/readyz")
		return status == 503 && strings.Contains(string(b), "draining")
	})
	res, err := httpClient.Post("http://"+l.http+"/cgi-bin/lab/echo", "application/json", strings.NewReader(`{"text":"draining"}`))
	if err != nil {
		t.Fatalf("call while draining: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !res.Close {
		t.Errorf("call while draining: %d, close %v, %s; want 200 with Connection: close", res.StatusCode, res.Close, b)
	}
	code := l.wait(15 * time.Second)
	close(stop)
	wg.Wait()
	<-pollDone
	if code != 0 { // 1 if the drain outlasted its 5s bound
		t.Errorf("exit status %d after a complete drain, want 0:\n%s", code, l.logs())
	}
	for i := 0; i < 4; i++ {
		if err := <-slow; err != nil {
			t.Errorf("in-flight call lost: %v", err)
		}
	}
	for _, b := range bad {
		t.Error(b)
	}
	t.Logf("outcomes: %v", counts)
	if counts["http ok"] == 0 || counts["rpc ok"] == 0 {
		t.Errorf("no successful calls under load: %v", counts)
	}
}

func TestSecondSIGTERMExitsAtOnce(t *testing.T) {
	l := startLab(t, "-drain-timeout", "30s")
	go doPost(l.http, "/cgi-bin/lab/echo", "application/json", []byte(`{"sleepMs":20000}`))
	waitMetric(t, l.admin, `logicsvr_requests_in_flight{cmdid="1",method="/lab.Lab/Echo"}`, 1)
	l.signal(syscall.SIGTERM)
	// The second signal comes once the first is being acted on.
	waitUntil(t, "readyz to report draining", func() bool {
		status, b := get(t, "http://"+l.admin+"/readyz")
		return status == 503 && strings.Contains(string(b), "draining")
	})
	l.signal(syscall.SIGTERM)
	// The call in flight sleeps 20s and the drain would wait 30s for it:
	// exiting well before either is exiting at once.
	if code := l.wait(10 * time.Second); code != 1 {
		t.Errorf("exit status %d after a second SIGTERM, want 1", code)
	}
	if !strings.Contains(l.logs(), "second signal; exiting without draining") {
		t.Errorf("no log of the second signal:\n%s", l.logs())
	}
}

func TestDrainTimeoutBoundsShutdown(t *testing.T) {
	l := startLab(t, "-drain-timeout", "300ms")
	c := l.rpcClient(t)
	res := make(chan error, 1)
	go func() {
		_, err := c.Echo(context.Background(), &labsvc.EchoRequest{SleepMs: 20000})
		res <- err
	}()
	waitMetric(t, l.admin, `logicsvr_requests_in_flight{cmdid="1",method="/lab.Lab/Echo"}`, 1)
	start := time.Now()
	l.signal(syscall.SIGTERM)
	if code := l.wait(5 * time.Second); code != 1 {
		t.Errorf("exit status %d after a drain that timed out, want 1", code)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %v with a 300ms drain bound", d)
	}
	select {
	case err := <-res:
		if err == nil {
			t.Error("the cut call succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Error("the cut call never returned")
	}
	if !strings.Contains(l.logs(), "drain did not finish in time") {
		t.Errorf("no log of the cut drain:\n%s", l.logs())
	}
}

func TestConfigFile(t *testing.T) {
	t.Run("ports, limits and routes from the file", func(t *testing.T) {
		cfg := writeConfig(t, `{
			"name": "lab",
			"http": "127.0.0.1:0", "rpc": "127.0.0.1:0", "admin": "127.0.0.1:0",
			"methods": {"/lab.Lab/Echo": {"max_concurrent": 7, "timeout": "2s"}},
			"routes": {"lab.Lab": ["127.0.0.1:1"]}
		}`)
		l := startLab(t, "-config", cfg)
		_, b := get(t, "http://"+l.admin+"/buildinfo")
		var bi struct {
			Services []struct {
				Methods []struct {
					Name          string
					Timeout       string
					MaxConcurrent int `json:"max_concurrent"`
				}
			}
		}
		if err := json.Unmarshal(b, &bi); err != nil {
			t.Fatal(err)
		}
		m := bi.Services[0].Methods[0]
		if m.Name != "/lab.Lab/Echo" || m.MaxConcurrent != 7 || m.Timeout != "2s" {
			t.Errorf("config overrides not applied: %+v", m)
		}
	})
	bad := []struct{ name, cfg, want string }{
		{"misspelt key", `{"htpp": ":1"}`, `unknown field "htpp"`},
		{"other Logicsvr", `{"name": "account"}`, `is for Logicsvr "account", not "lab"`},
		{"bad duration", `{"drain_timeout": "soon"}`, `invalid duration`},
		{"bad log level", `{"log_level": "loud"}`, `log level "loud"`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(labBin, "-config", writeConfig(t, tc.cfg)).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), tc.want) {
				t.Errorf("got %v, output %q; want exit 1 mentioning %q", err, out, tc.want)
			}
		})
	}
}

func TestBuildInfoFlag(t *testing.T) {
	out, err := exec.Command(labBin, "-buildinfo").Output()
	if err != nil {
		t.Fatal(err)
	}
	var bi struct {
		Logicsvr string
		Services []struct {
			Name    string
			Methods []struct {
				Name    string
				CmdID   uint32 `json:"cmdid"`
				CGIPath string `json:"cgi_path"`
			}
		}
	}
	if err := json.Unmarshal(out, &bi); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if bi.Logicsvr != "lab" || len(bi.Services) != 1 || bi.Services[0].Name != "lab.Lab" || len(bi.Services[0].Methods) != 3 ||
		bi.Services[0].Methods[2].CGIPath != "/cgi-bin/lab/stuck" || bi.Services[0].Methods[2].CmdID != 3 {
		t.Errorf("buildinfo: %s", out)
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lab.json")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
