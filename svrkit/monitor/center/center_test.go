package center

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor/monitorpb"
)

// clock is a settable time for the center under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openTest(t *testing.T, cfg Config) (*Center, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	cfg.Now = clk.now
	cfg.EvalInterval = time.Hour // tests evaluate by hand
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, clk
}

var testDecls = []*monitorpb.Decl{
	{Slot: 0, Id: 1001, Kind: kindCounter, Name: "im.sent", Unit: "count", Alert: "sum over 10s > 50"},
	{Slot: 1, Id: 1002, Kind: kindGauge, Name: "im.online", Unit: "devices"},
}

// reading builds one region's reading.
func reading(inst uint64, prev int64, full bool, vals ...int64) *monitorpb.RegionReading {
	rr := &monitorpb.RegionReading{Instance: inst, Service: "send", Pid: 1, PrevUnixMs: prev, Full: full}
	for i := 0; i+1 < len(vals); i += 2 {
		rr.Slots = append(rr.Slots, uint32(vals[i]))
		rr.Values = append(rr.Values, vals[i+1])
	}
	return rr
}

func report(t *testing.T, c *Center, machine string, ms int64, rrs ...*monitorpb.RegionReading) *monitorpb.ReportReply {
	t.Helper()
	r, err := c.Report(&monitorpb.ReportRequest{Machine: machine, UnixMs: ms, Regions: rrs})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func curve(t *testing.T, c *Center, name string, from, to time.Time) []float64 {
	t.Helper()
	r, err := c.Query(&monitorpb.QueryRequest{Name: name, FromUnixMs: from.UnixMilli(), ToUnixMs: to.UnixMilli(), MaxPoints: 5000})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetSum().GetValues()
}

func same(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(a[i]) && math.IsNaN(b[i])) {
			return false
		}
	}
	return true
}

// TestCurves feeds a region's cumulative readings second by second and
// checks the curves: counters as increases, gauges as levels, a replayed
// report ignored, a silence longer than MaxGap shown as a gap.
func TestCurves(t *testing.T) {
	c, clk := openTest(t, Config{MaxGap: 5 * time.Second})
	t0 := clk.now()
	ms := func(s int) int64 { return t0.Add(time.Duration(s) * time.Second).UnixMilli() }
	clk.add(time.Minute)
	// A region that started at t0: its first full reading counts from 0.
	first := reading(7, 0, true, 0, 5, 1, 10)
	first.Decls = testDecls
	first.StartUnixMs = ms(0)
	report(t, c, "m1", ms(1), first)
	report(t, c, "m1", ms(2), reading(7, ms(1), false, 0, 8))           // +3, gauge unchanged
	report(t, c, "m1", ms(2), reading(7, ms(1), false, 0, 8))           // replayed: ignored
	report(t, c, "m1", ms(3), reading(7, ms(2), false, 0, 8, 1, 12))    // +0, gauge 12
	report(t, c, "m1", ms(12), reading(7, ms(3), false, 0, 20, 1, 12))  // 9 s of silence: a gap, no spike
	report(t, c, "m1", ms(13), reading(7, ms(12), false, 0, 21, 1, 12)) // +1
	nan := math.NaN()
	got := curve(t, c, "im.sent", t0, t0.Add(14*time.Second))
	want := []float64{nan, 5, 3, 0, nan, nan, nan, nan, nan, nan, nan, nan, nan, 1, nan}
	if !same(got, want) {
		t.Errorf("im.sent = %v\nwant      %v", got, want)
	}
	got = curve(t, c, "im.online", t0, t0.Add(14*time.Second))
	want = []float64{nan, 10, 10, 12, nan, nan, nan, nan, nan, nan, nan, nan, 12, 12, nan}
	if !same(got, want) {
		t.Errorf("im.online = %v\nwant        %v", got, want)
	}
	// Minute rollups hold the same counts.
	r, err := c.Query(&monitorpb.QueryRequest{Name: "im.sent", FromUnixMs: t0.Add(-2 * 24 * time.Hour).UnixMilli(), ToUnixMs: clk.now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, v := range r.GetSum().GetValues() {
		if !math.IsNaN(v) {
			total += v
		}
	}
	if r.GetResolution() != "minute" || total != 9 {
		t.Errorf("minute rollups: resolution %s, total %v, want minute and 9", r.GetResolution(), total)
	}
}

// TestRestartedAgentAndCenter: a full reading from a restarted agent
// counts the increase since the last reading the center applied, and a
// reopened center keeps its regions' baselines.
func TestRestartedAgentAndCenter(t *testing.T) {
	dir := t.TempDir()
	c, clk := openTest(t, Config{Dir: dir})
	t0 := clk.now()
	ms := func(s int) int64 { return t0.Add(time.Duration(s) * time.Second).UnixMilli() }
	clk.add(time.Minute)
	first := reading(9, 0, true, 0, 100)
	first.Decls = testDecls[:1]
	first.StartUnixMs = ms(-3600) // an old process: its first reading is a baseline
	report(t, c, "m1", ms(1), first)
	report(t, c, "m1", ms(2), reading(9, ms(1), false, 0, 110))
	c.Close()
	c2, err := Open(Config{Dir: dir, Now: clk.now, EvalInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	// The agent restarted too: a full reading with no predecessor.
	report(t, c2, "m1", ms(4), reading(9, 0, true, 0, 117))
	nan := math.NaN()
	got := curve(t, c2, "im.sent", t0, t0.Add(5*time.Second))
	if want := []float64{nan, nan, 10, nan, 7, nan}; !same(got, want) {
		t.Errorf("im.sent = %v, want %v", got, want)
	}
}

// TestResync: a sparse reading that does not follow the last applied one
// is not counted, and the center asks for a full reading.
func TestResync(t *testing.T) {
	c, clk := openTest(t, Config{})
	t0 := clk.now()
	ms := func(s int) int64 { return t0.Add(time.Duration(s) * time.Second).UnixMilli() }
	clk.add(time.Minute)
	first := reading(3, 0, true, 0, 1)
	first.Decls = testDecls[:1]
	report(t, c, "m1", ms(1), first)
	if r := report(t, c, "m1", ms(3), reading(3, ms(2), false, 0, 50)); len(r.Resync) != 1 || r.Resync[0] != 3 {
		t.Errorf("resync = %v, want [3]", r.Resync)
	}
	report(t, c, "m1", ms(4), reading(3, ms(3), true, 0, 52))
	got := curve(t, c, "im.sent", t0.Add(3*time.Second), t0.Add(4*time.Second))
	if want := []float64{math.NaN(), 2}; !same(got, want) {
		t.Errorf("after resync: %v, want %v", got, want)
	}
}

func TestBadInput(t *testing.T) {
	c, clk := openTest(t, Config{})
	now := clk.now().UnixMilli()
	for name, req := range map[string]*monitorpb.ReportRequest{
		"no machine": {UnixMs: now},
		"no time":    {Machine: "m"},
		"future":     {Machine: "m", UnixMs: now + time.Hour.Milliseconds()},
		"ragged":     {Machine: "m", UnixMs: now, Regions: []*monitorpb.RegionReading{{Instance: 1, Slots: []uint32{1, 2}, Values: []int64{1}}}},
		"too many":   {Machine: "m", UnixMs: now, Regions: make([]*monitorpb.RegionReading, maxRegionsPerReport+1)},
	} {
		if _, err := c.Report(req); svrkit.CodeOf(err) != svrkit.InvalidArgument {
			t.Errorf("%s: %v, want invalid_argument", name, err)
		}
	}
	// Undeclared slots and malformed declarations are problems, not crashes.
	rr := reading(5, 0, true, 0, 1, 99, 1)
	rr.Decls = []*monitorpb.Decl{{Slot: 0, Id: 1001, Kind: kindCounter, Name: "im.sent"}, {Slot: 1, Kind: 9, Name: "bad"}}
	if r := report(t, c, "m", now, rr); len(r.Resync) != 1 {
		t.Errorf("a reading with an undeclared slot must ask for a resync, got %v", r.Resync)
	}
	// Two processes declaring one ID differently.
	rr2 := reading(6, 0, true)
	rr2.Decls = []*monitorpb.Decl{{Slot: 0, Id: 1001, Kind: kindCounter, Name: "im.other"}}
	report(t, c, "m", now+1000, rr2)
	probs := strings.Join(c.Problems(), "\n")
	for _, want := range []string{"malformed declaration of slot 1", `monitor ID 1001 is declared as "im.sent" (by send) and as "im.other" (by send)`} {
		if !strings.Contains(probs, want) {
			t.Errorf("problems %q lack %q", probs, want)
		}
	}
	// Queries over absurd ranges are bounded and say they were clipped.
	r, err := c.Query(&monitorpb.QueryRequest{Name: "im.sent", FromUnixMs: 1, ToUnixMs: now, MaxPoints: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if !r.GetClipped() || len(r.GetSum().GetValues()) > MaxQueryPoints || r.GetResolution() != "hour" {
		t.Errorf("a 56-year query: clipped %v, %d points, %s", r.GetClipped(), len(r.GetSum().GetValues()), r.GetResolution())
	}
	if _, err := c.Query(&monitorpb.QueryRequest{Name: "nope"}); svrkit.CodeOf(err) != svrkit.NotFound {
		t.Errorf("unknown series: %v", err)
	}
	if _, err := c.Query(&monitorpb.QueryRequest{Name: "im.sent", FromUnixMs: now, ToUnixMs: now - 1000}); svrkit.CodeOf(err) != svrkit.InvalidArgument {
		t.Errorf("reversed range: %v", err)
	}
	if _, err := Open(Config{Dir: t.TempDir(), Rules: []RuleConfig{{Series: "x", Rule: "sum over 1m >"}}}); err == nil || !strings.Contains(err.Error(), "column 14") {
		t.Errorf("a malformed configured rule: %v", err)
	}
}

// TestAlerts drives a rule through firing and resolved, with the webhook
// on loopback, and checks each transition is notified once.
func TestAlerts(t *testing.T) {
	var mu sync.Mutex
	var notes []Notification
	got := make(chan struct{}, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n Notification
		_ = json.NewDecoder(r.Body).Decode(&n)
		mu.Lock()
		notes = append(notes, n)
		mu.Unlock()
		got <- struct{}{}
	}))
	defer hook.Close()
	c, clk := openTest(t, Config{Webhook: hook.URL, Settle: time.Second, Rules: []RuleConfig{{Series: "im.online", Rule: "nodata for 5s"}}})
	t0 := clk.now()
	ms := func(s int) int64 { return t0.Add(time.Duration(s) * time.Second).UnixMilli() }
	first := reading(1, 0, true, 0, 0, 1, 3)
	first.Decls = testDecls
	first.StartUnixMs = ms(0)
	report(t, c, "m1", ms(0), first)
	v := int64(0)
	for s := 1; s <= 10; s++ {
		v += 10 // 10 a second: 100 in 10 s, over the rule's 50
		report(t, c, "m1", ms(s), reading(1, ms(s-1), false, 0, v))
	}
	clk.t = t0.Add(12 * time.Second)
	c.EvaluateAlerts()
	c.EvaluateAlerts() // still firing: no second notification
	waitFor(t, got, 1)
	a := c.Alerts()
	if len(a.Alerts) != 1 || a.Alerts[0].State != "firing" || a.Alerts[0].Series != "im.sent" || a.Alerts[0].Value != 100 {
		t.Fatalf("alerts %v", a.Alerts)
	}
	// Quiet for a while: the rule resolves; the gauge is still set, so
	// the nodata rule stays quiet... until the machine goes silent.
	for s := 11; s <= 25; s++ {
		report(t, c, "m1", ms(s), reading(1, ms(s-1), false))
	}
	clk.t = t0.Add(27 * time.Second)
	c.EvaluateAlerts()
	waitFor(t, got, 1)
	clk.t = t0.Add(40 * time.Second)
	c.EvaluateAlerts()
	waitFor(t, got, 1)
	mu.Lock()
	defer mu.Unlock()
	var states []string
	for _, n := range notes {
		states = append(states, n.Series+":"+n.State)
	}
	if want := "im.sent:firing im.sent:resolved im.online:firing"; strings.Join(states, " ") != want {
		t.Errorf("notifications %v, want %s", states, want)
	}
}

func waitFor(t *testing.T, ch chan struct{}, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatal("no webhook notification within 10s")
		}
	}
}

func TestPrometheus(t *testing.T) {
	c, clk := openTest(t, Config{})
	t0 := clk.now()
	first := reading(1, 0, true, 0, 4, 1, 2, 2, 9)
	first.Decls = append(testDecls, &monitorpb.Decl{Slot: 2, Kind: kindCounter, Name: `svrkit.server.calls{method="/im.Send/SendText"}`})
	first.StartUnixMs = t0.UnixMilli()
	report(t, c, "m1", t0.UnixMilli(), first)
	var b bytes.Buffer
	if err := c.WritePrometheus(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# TYPE svrkit_monitor_im_sent_total counter\nsvrkit_monitor_im_sent_total{machine=\"m1\"} 4\n",
		"# TYPE svrkit_monitor_im_online gauge\nsvrkit_monitor_im_online{machine=\"m1\"} 2\n",
		`svrkit_monitor_svrkit_server_calls_total{machine="m1",method="/im.Send/SendText"} 9`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("exposition lacks %q:\n%s", want, b.String())
		}
	}
}

func TestRetention(t *testing.T) {
	c, clk := openTest(t, Config{Retention: Retention{Raw: 2 * time.Hour, Minute: 48 * time.Hour, Hour: 30 * 24 * time.Hour}})
	t0 := clk.now()
	first := reading(1, 0, true, 0, 4)
	first.Decls = testDecls[:1]
	first.StartUnixMs = t0.UnixMilli()
	report(t, c, "m1", t0.UnixMilli(), first)
	count := func() (n int) {
		_ = c.scan(levelRaw, 1, t0.Unix()-60, t0.Unix()+60, func(uint32, int64, rollup) { n++ })
		return n
	}
	if count() != 1 {
		t.Fatalf("the point is not stored")
	}
	clk.add(5 * time.Hour)
	c.sweep()
	if n := count(); n != 0 {
		t.Errorf("%d points older than the raw retention survived", n)
	}
}
