package monitortest

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// Browser starts headless Chromium (Debian's chromium, installed by
// .ci/run; or $CHROMIUM) with a window of width×height and a profile of its
// own, and returns the context a chromedp action runs in: the first tab.
// NewTab opens more, each a separate page (with separate session storage)
// in the same browser. Everything stops when the test ends. A missing
// browser fails the test: web pages must be tested in CI. The dashboard's
// test uses it, and so do other web pages' (the IM's web chat).
func Browser(t testing.TB, width, height int) context.Context {
	t.Helper()
	exe := chromium(t)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(width, height),
	)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// Start the browser now, so a broken one fails here and not in the
	// first action.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	return bctx
}

// NewTab opens another tab of the browser of ctx (from Browser).
func NewTab(t testing.TB, ctx context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("new tab: %v", err)
	}
	return tab
}

// chromium finds the browser binary.
func chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("this test needs a headless browser: no chromium binary on PATH (apt-get install chromium; .ci/run installs it), or set CHROMIUM to one")
	return ""
}
