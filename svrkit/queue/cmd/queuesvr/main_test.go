package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/svrkit/svrkit/svrkit/queue"
	"github.com/svrkit/svrkit/svrkit/queue/internal/leakcheck"
)

// TestMain lets the test binary be queuesvr itself, so the cluster test
// runs real processes it can SIGKILL without building anything.
func TestMain(m *testing.M) {
	if os.Getenv("QUEUESVR_TEST_MAIN") == "1" {
		main()
		return
	}
	leakcheck.Main(m)
}

const token = "test-token-not-a-secret"

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// serve runs queuesvr in this process until the test ends.
func serve(t *testing.T, args []string, getenv func(string) string) (url, admin string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	type addrs struct{ url, admin string }
	ready := make(chan addrs, 1)
	done := make(chan error, 1)
	var log bytes.Buffer
	go func() {
		done <- run(ctx, args, getenv, &syncWriter{w: &log}, func(u, a string) { ready <- addrs{u, a} })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case a := <-ready:
		return a.url, a.admin
	case err := <-done:
		t.Fatalf("run ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready after 30s")
	}
	return "", ""
}

// syncWriter serialises writes to w (a process's stdout and stderr, or a
// log written by several goroutines).
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// String returns what was written, if w is a *bytes.Buffer.
func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.w.(*bytes.Buffer); ok {
		return b.String()
	}
	return ""
}

func TestServesBehindCredentials(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "q")
	url, admin := serve(t, []string{"-dir", dir, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-log-level", "warn"},
		env("SVRKIT_QUEUE_TOKEN", token))

	resp, err := http.Get("http://" + admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Fatalf("/readyz: %d %q", resp.StatusCode, body)
	}
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := queue.Open(ctx, queue.Config{URLs: []string{url}, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := q.Publish(ctx, "k", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "jetstream")); err != nil {
		t.Errorf("no file storage under -dir: %v", err)
	}
}

func TestRefusesBadStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "q")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name string
		args []string
		env  func(string) string
		want string
	}{
		{"no credentials", []string{"-dir", dir, "-listen", "127.0.0.1:0"}, env(), "no anonymous client"},
		{"no dir", []string{"-listen", "127.0.0.1:0"}, env("SVRKIT_QUEUE_TOKEN", token), "-dir is required"},
		{"bad sync", []string{"-dir", dir, "-sync", "sometimes"}, env("SVRKIT_QUEUE_TOKEN", token), "-sync"},
		{"missing token file", []string{"-dir", dir, "-token-file", tokenFile + ".missing"}, env(), "-token-file"},
		{"port in use", []string{"-dir", dir, "-listen", busy.Addr().String(), "-token-file", tokenFile}, env(), "address already in use"},
		{"cluster without route credentials", []string{"-dir", dir, "-listen", "127.0.0.1:0", "-cluster-name", "c", "-cluster-listen", "127.0.0.1:0"},
			env("SVRKIT_QUEUE_TOKEN", token), "user and password for its routes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, tc.args, tc.env, io.Discard, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// node is a queuesvr process of the cluster test.
type node struct {
	name, url, admin string
	cmd              *exec.Cmd
	log              syncWriter
	exited           chan struct{} // closed once the process has exited
}

func (nd *node) stop() {
	_ = nd.cmd.Process.Kill()
	<-nd.exited
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startNodes runs n queuesvr processes forming one cluster, as a topology
// would, and waits until each answers /readyz. Ports are picked free
// beforehand (every node is configured with the others' route addresses);
// if another process takes one meanwhile, it starts again with new ones.
func startNodes(t *testing.T, n int) []*node {
	t.Helper()
	for attempt := 1; ; attempt++ {
		nodes, err := tryNodes(t, n)
		if err == nil {
			for _, nd := range nodes {
				t.Cleanup(func() {
					nd.stop()
					if t.Failed() {
						t.Logf("%s's log:\n%s", nd.name, nd.log.String())
					}
				})
			}
			return nodes
		}
		if !strings.Contains(err.Error(), "address already in use") || attempt == 5 {
			t.Fatal(err)
		}
		t.Logf("attempt %d: %v; again with other ports", attempt, err)
	}
}

// tryNodes starts the processes once; on error it stops them all.
func tryNodes(t *testing.T, n int) ([]*node, error) {
	routes := make([]string, n)
	for i := range routes {
		routes[i] = freeAddr(t)
	}
	nodes := make([]*node, n)
	fail := func(err error) ([]*node, error) {
		for _, nd := range nodes {
			if nd != nil {
				nd.stop()
			}
		}
		return nil, err
	}
	for i := range nodes {
		nd := &node{name: fmt.Sprint("node", i), url: "nats://" + freeAddr(t), admin: freeAddr(t), exited: make(chan struct{})}
		nd.log.w = &bytes.Buffer{}
		nd.cmd = exec.Command(os.Args[0], "-dir", filepath.Join(t.TempDir(), nd.name), "-name", nd.name,
			"-listen", strings.TrimPrefix(nd.url, "nats://"), "-admin", nd.admin, "-log-level", "warn",
			"-cluster-name", "proc", "-cluster-listen", routes[i], "-routes", strings.Join(routes, ","))
		nd.cmd.Env = append(os.Environ(), "QUEUESVR_TEST_MAIN=1", "SVRKIT_QUEUE_TOKEN="+token,
			"SVRKIT_QUEUE_CLUSTER_USER=route", "SVRKIT_QUEUE_CLUSTER_PASSWORD=route-secret")
		nd.cmd.Stdout, nd.cmd.Stderr = &nd.log, &nd.log
		if err := nd.cmd.Start(); err != nil {
			return fail(err)
		}
		go func() { _ = nd.cmd.Wait(); close(nd.exited) }()
		nodes[i] = nd
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, nd := range nodes {
		for !ready(nd.admin) {
			select {
			case <-nd.exited:
				return fail(fmt.Errorf("%s exited: %s", nd.name, nd.log.String()))
			default:
			}
			if time.Now().After(deadline) {
				return fail(fmt.Errorf("%s not ready after 60s", nd.name))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nodes, nil
}

func ready(admin string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + admin + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// TestClusterSurvivesSIGKILL: three queuesvr processes hold an R3 stream;
// the stream's leader is SIGKILLed (no hand-off, unlike a clean shutdown)
// while items are published. Every acknowledged item is then consumed.
func TestClusterSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("three processes and a leader election after a kill take seconds")
	}
	start := time.Now()
	nodes := startNodes(t, 3)
	t.Logf("%v: cluster ready", time.Since(start))
	var urls []string
	for _, nd := range nodes {
		urls = append(urls, nd.url)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	q, err := queue.Open(ctx, queue.Config{URLs: urls, Token: token, Stream: "PROC", Replicas: 3, Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	t.Logf("%v: stream open", time.Since(start))

	const total = 300
	acked := map[string]bool{}
	var killed string
	for i := range total {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		r, err := q.Publish(pctx, fmt.Sprint("group-", i%7), []byte(fmt.Sprint(i)))
		cancel()
		if err != nil {
			t.Logf("publish %d not acknowledged: %v", i, err)
			continue
		}
		acked[r.ID] = true
		if i == total/3 {
			killed = sigkillLeader(t, ctx, urls, nodes)
		}
	}
	t.Logf("SIGKILLed the stream leader %s; %d of %d publishes acknowledged", killed, len(acked), total)
	if len(acked) < total*9/10 {
		t.Errorf("only %d of %d acknowledged: no fail-over", len(acked), total)
	}

	t.Logf("%v: published", time.Since(start))
	var mu sync.Mutex
	seen := map[string]int{}
	k, err := q.Consume(ctx, func(ctx context.Context, m *queue.Message) error {
		mu.Lock()
		seen[m.ID()]++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop(context.Background())
	t.Logf("%v: consuming", time.Since(start))
	missing := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for id := range acked {
			if seen[id] == 0 {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(60 * time.Second)
	for missing() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d acknowledged items never consumed", missing())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%v: consumed", time.Since(start))
	mu.Lock()
	defer mu.Unlock()
	for id, n := range seen {
		if n > 1 {
			t.Logf("item %s delivered %d times", id, n)
		}
	}
}

// sigkillLeader kills the process leading stream PROC and returns its name.
func sigkillLeader(t *testing.T, ctx context.Context, urls []string, nodes []*node) string {
	t.Helper()
	nc, err := nats.Connect(strings.Join(urls, ","), nats.Token(token))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(ctx, "PROC")
	if err != nil {
		t.Fatal(err)
	}
	leader := s.CachedInfo().Cluster.Leader
	for _, nd := range nodes {
		if nd.name == leader {
			if err := nd.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			return leader
		}
	}
	t.Fatalf("leader %q is none of the nodes", leader)
	return ""
}
