package monitortest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/svrkit/svrkit/svrkit/monitor/center"
)

// ScreenshotEnv names a file the dashboard test writes its screenshot to
// (the README's picture is made this way); without it the screenshot goes
// to the test's temporary directory.
const ScreenshotEnv = "MONITOR_SCREENSHOT"

// TestDashboard starts a center, two machines' agents and two monitored
// processes, produces counts, loads the dashboard in headless Chromium and
// checks what the page shows against what was counted: the curve's points
// (read from the chart's data attributes, which the page fills from the
// same data it draws), the per-machine curves, the search, the range
// picker and a firing alert on top. It saves a screenshot.
func TestDashboard(t *testing.T) {
	c := StartCenter(t, center.Config{Logger: quiet, Settle: time.Second,
		Rules: []center.RuleConfig{{Series: "test.requests", Rule: "sum over 30s > 10"}}})
	clk := newFakeClock()
	clk.t = time.Now().Add(-95 * time.Second).Truncate(time.Second)
	ctx := context.Background()
	type machine struct {
		p    *Process
		tick func()
		per  int
	}
	var machines []machine
	for i, name := range []string{"m1", "m2"} {
		dir := t.TempDir()
		a := newAgent(t, name, dir, c.Addr, clk, time.Minute) // one agent per machine
		p := StartProcess(t, "web", dir)
		machines = append(machines, machine{p: p, per: i + 1, tick: func() { a.Tick(ctx) }})
	}
	want := 0
	for s := 0; s < 90; s++ {
		for i, m := range machines {
			m.p.Do(t, "add "+strconv.Itoa(m.per))
			m.p.Do(t, "set "+strconv.Itoa(10*(i+1)+s%5))
			want += m.per
		}
		clk.tick()
		for _, m := range machines {
			m.tick()
		}
	}
	c.EvaluateAlerts()

	bctx := Browser(t, 1400, 1000)
	bctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	url := c.URL + "#series=test.requests,test.connections&range=300&machines=1"
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	attr := func(sel, name string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.AttributeValue(css(sel), name))
		if err != nil {
			t.Fatalf("%s[%s]: %v", sel, name, err)
		}
		return v.Value
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return v
	}
	eval := func(expr string) {
		t.Helper()
		if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](expr)); err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
	}
	poll := func(expr string) {
		t.Helper()
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("waiting for %s: %v", expr, err)
		}
	}
	err := chromedp.Do(bctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(css(`.chart[data-series="test.requests"][data-points] canvas`)),
		chromedp.WaitVisible(css(`.chart[data-series="test.connections"][data-points] canvas`)),
		chromedp.WaitVisible(css(`#alerts li.firing`)),
	)
	if err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	total := attr(`.chart[data-series="test.requests"]`, "data-total")
	points := attr(`.chart[data-series="test.requests"]`, "data-points")
	gaugeLast := attr(`.chart[data-series="test.connections"]`, "data-last")
	alert := text(`#alerts li.firing`)
	if err := chromedp.Do(bctx,
		chromedp.SendKeys(css(`#search`), "test.conn"),
		chromedp.WaitVisible(css(`#series-list li[data-series="test.connections"]`)),
	); err != nil {
		t.Fatalf("search: %v", err)
	}
	poll(`document.querySelectorAll("#series-list li").length === 1`)
	listed := text(`#series-list`)
	if total != strconv.Itoa(want) {
		t.Errorf("the page's curve totals %s, want %d counted", total, want)
	}
	if n, _ := strconv.Atoi(points); n < 89 || n > 91 {
		t.Errorf("the page's curve has %s points, want one a second for 90 seconds", points)
	}
	// The gauge is the sum of both machines' levels: 10+s%5 and 20+s%5 at s=89.
	if gaugeLast != "38" {
		t.Errorf("the gauge's last point is %s, want 38", gaugeLast)
	}
	if !strings.Contains(alert, "test.requests") || !strings.Contains(alert, "FIRING") {
		t.Errorf("the firing alert reads %q", alert)
	}
	if strings.Contains(listed, "test.requests") || !strings.Contains(listed, "test.connections") {
		t.Errorf("searching test.conn lists %q", listed)
	}
	machineCurves, err := chromedp.Run(bctx, chromedp.Evaluate[int](`(window.monitorData["test.requests"].machines || []).length`))
	if err != nil {
		t.Fatal(err)
	}
	if machineCurves != 2 {
		t.Errorf("%d per-machine curves, want 2", machineCurves)
	}
	// The range picker: a day's range reads minutes and still holds every count.
	setRange := func(v string) {
		t.Helper()
		if err := chromedp.Do(bctx, chromedp.SetValue(css(`#range`), v)); err != nil {
			t.Fatal(err)
		}
		eval(`document.getElementById("range").dispatchEvent(new Event("change")) || true`)
	}
	setRange("86400")
	poll(`window.monitorData["test.requests"].resolution === "minute"`)
	if got := attr(`.chart[data-series="test.requests"]`, "data-total"); got != strconv.Itoa(want) {
		t.Errorf("over a day the page totals %s, want %d", got, want)
	}
	setRange("300") // back to five minutes for the picture
	poll(`window.monitorData["test.requests"].resolution === "second"`)
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := os.Getenv(ScreenshotEnv)
	if path == "" {
		path = filepath.Join(t.TempDir(), "dashboard.png")
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
