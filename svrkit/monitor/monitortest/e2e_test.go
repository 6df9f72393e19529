package monitortest

import (
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor/agent"
	"github.com/svrkit/svrkit/svrkit/monitor/center"
	"github.com/svrkit/svrkit/svrkit/monitor/monitorpb"
)

func TestMain(m *testing.M) {
	RunChildIfAsked()
	os.Exit(m.Run())
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeClock gives the agent a second per tick, so a minute of reports
// takes no minute. It starts ten minutes ago: within what the center
// keeps at the second, and well within the hour after which the center
// forgets a silent region.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Now().Add(-10 * time.Minute).Truncate(time.Second)}
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) tick()          { c.mu.Lock(); c.t = c.t.Add(time.Second); c.mu.Unlock() }

func newAgent(t *testing.T, machine, dir, addr string, clk *fakeClock, buffer time.Duration, opts ...svrkit.ClientOption) *agent.Agent {
	t.Helper()
	client, err := svrkit.NewClient(addr, append([]svrkit.ClientOption{svrkit.WithDialTimeout(time.Second), svrkit.WithRetries(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	a, err := agent.New(agent.Config{Dir: dir, Machine: machine, Period: time.Second, Buffer: buffer, Center: client,
		SendTimeout: 2 * time.Second, Logger: quiet, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestCrashedProcessLosesNothing: a process adds, sets a gauge and exits
// without cleanup; the agent reports its last values, the center counts
// them, the gauge stops counting and the region file is collected.
func TestCrashedProcessLosesNothing(t *testing.T) {
	dir := t.TempDir()
	c := StartCenter(t, center.Config{Logger: quiet})
	clk := newFakeClock()
	start := clk.now()
	a := newAgent(t, "m1", dir, c.Addr, clk, time.Minute)
	p := StartProcess(t, "svc", dir)
	p.Do(t, "set 5")
	ctx := context.Background()
	a.Tick(ctx)
	for i := 0; i < 3; i++ {
		p.Do(t, "add 10")
		clk.tick()
		a.Tick(ctx)
	}
	p.Do(t, "add 7")
	p.Exit(t)
	clk.tick()
	a.Tick(ctx) // reads the final values and, once acknowledged, removes the region
	clk.tick()
	a.Tick(ctx)
	if total, _ := c.Total(t, "test.requests", start, clk.now()); total != 37 {
		t.Errorf("counted %v, want 37", total)
	}
	r, err := c.Query(&monitorpb.QueryRequest{Name: "test.connections", FromUnixMs: start.UnixMilli(), ToUnixMs: clk.now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	v := r.GetSum().GetValues()
	if v[0] != 5 || v[len(v)-1] == v[len(v)-1] {
		t.Errorf("gauge curve %v: want 5 while the process lives, nothing after", v)
	}
	if _, err := os.Stat(p.Region); !os.IsNotExist(err) {
		t.Errorf("the finished region %s was not collected: %v", p.Region, err)
	}
}

// TestCenterDownForAMinute: with the center down for 60 seconds, the
// agent buffers every reading and delivers them when it is back: no
// second is missing. With a buffer shorter than the outage, the oldest
// seconds are shown as a gap and nothing is counted twice.
func TestCenterDownForAMinute(t *testing.T) {
	for _, tc := range []struct {
		name        string
		buffer      time.Duration
		wantMissing int // seconds of the outage without a point
	}{
		{"within the buffer", 5 * time.Minute, 0},
		{"beyond the buffer", 20 * time.Second, 41},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := StartCenter(t, center.Config{Logger: quiet, MaxGap: 3 * time.Second})
			clk := newFakeClock()
			start := clk.now()
			a := newAgent(t, "m1", dir, c.Addr, clk, tc.buffer)
			p := StartProcess(t, "svc", dir)
			ctx := context.Background()
			step := func() {
				p.Do(t, "add 1")
				clk.tick()
				a.Tick(ctx)
			}
			for i := 0; i < 10; i++ {
				step()
			}
			addr := c.Addr
			c.StopRPC()
			for i := 0; i < 60; i++ {
				step()
			}
			if st := a.Stats(); st.Queued < 2 {
				t.Fatalf("the agent queued %d reports while the center was down", st.Queued)
			}
			c.StartRPC(t, addr)
			// The client finds the center back within its health interval.
			drain := func() {
				deadline := time.Now().Add(20 * time.Second)
				for a.Flush(ctx) > 0 && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
				}
				if q := a.Stats().Queued; q > 0 {
					t.Fatalf("%d reports still queued", q)
				}
			}
			drain()
			for i := 0; i < 10; i++ {
				step()
			}
			drain()
			total, points := c.Total(t, "test.requests", start.Add(time.Second), clk.now())
			wantPoints := 80 - tc.wantMissing
			if points != wantPoints {
				t.Errorf("%d seconds with a point, want %d", points, wantPoints)
			}
			if total != float64(wantPoints) {
				t.Errorf("counted %v over %d seconds: every shown second must hold exactly its one count", total, points)
			}
		})
	}
}

// TestAgentRestart: a second agent on the same regions counts nothing
// twice, and counts what happened between the two.
func TestAgentRestart(t *testing.T) {
	dir := t.TempDir()
	c := StartCenter(t, center.Config{Logger: quiet})
	clk := newFakeClock()
	start := clk.now()
	p := StartProcess(t, "svc", dir)
	ctx := context.Background()
	a1 := newAgent(t, "m1", dir, c.Addr, clk, time.Minute)
	for i := 0; i < 5; i++ {
		p.Do(t, "add 3")
		clk.tick()
		a1.Tick(ctx)
	}
	p.Do(t, "add 4") // read by nobody before the restart
	clk.tick()
	a2 := newAgent(t, "m1", dir, c.Addr, clk, time.Minute)
	a2.Tick(ctx)
	p.Do(t, "add 1")
	clk.tick()
	a2.Tick(ctx)
	if total, _ := c.Total(t, "test.requests", start, clk.now()); total != 20 {
		t.Errorf("counted %v across an agent restart, want 20", total)
	}
}

// TestBadRegions: a corrupt and a truncated file among the regions are
// reported as problems; the good region is still read.
func TestBadRegions(t *testing.T) {
	dir := t.TempDir()
	c := StartCenter(t, center.Config{Logger: quiet})
	clk := newFakeClock()
	a := newAgent(t, "m1", dir, c.Addr, clk, time.Minute)
	if err := os.WriteFile(filepath.Join(dir, "junk.1.0000000000000001.svrmon"), []byte("not a region at all, just some bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := StartProcess(t, "svc", dir)
	p.Do(t, "add 2")
	b, _ := os.ReadFile(p.Region)
	if err := os.WriteFile(filepath.Join(dir, "cut.2.0000000000000002.svrmon"), b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	// Another process declaring the same ID with another name.
	a.Tick(context.Background())
	probs := strings.Join(c.Problems(), "\n")
	for _, want := range []string{"junk.1.0000000000000001.svrmon is corrupt", "cut.2.0000000000000002.svrmon is corrupt: truncated"} {
		if !strings.Contains(probs, want) {
			t.Errorf("center problems lack %q:\n%s", want, probs)
		}
	}
	if total, _ := c.Total(t, "test.requests", clk.now().Add(-time.Minute), clk.now()); total != 2 {
		t.Errorf("the good region counted %v, want 2", total)
	}
}

// TestOnlyTheAgentReports: a center that requires service authentication
// takes reports from the identity "monitoragent" only, as the IDL's
// callers say.
func TestOnlyTheAgentReports(t *testing.T) {
	agentPub, agentKey, _ := ed25519.GenerateKey(nil)
	otherPub, otherKey, _ := ed25519.GenerateKey(nil)
	keys := svrkit.Keyring{"monitoragent": agentPub, "send": otherPub}
	c := StartCenter(t, center.Config{Logger: quiet}, svrkit.WithRequireAuth(keys))
	clk := newFakeClock()
	dir := t.TempDir()
	p := StartProcess(t, "svc", dir)
	p.Do(t, "add 1")
	ok := newAgent(t, "m1", dir, c.Addr, clk, time.Minute, svrkit.WithIdentity("monitoragent", agentKey))
	ok.Tick(context.Background())
	if st := ok.Stats(); st.Sent != 1 {
		t.Errorf("the agent's report was not taken: %+v", st)
	}
	client, err := svrkit.NewClient(c.Addr, svrkit.WithIdentity("send", otherKey))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	_, err = monitorpb.NewMonitorIngestClient(client).Report(context.Background(), &monitorpb.ReportRequest{Machine: "x", UnixMs: time.Now().UnixMilli()})
	if svrkit.CodeOf(err) != svrkit.PermissionDenied {
		t.Errorf("a report from send: %v, want permission_denied", err)
	}
}
