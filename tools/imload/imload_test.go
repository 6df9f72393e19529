package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im/imtest"
	"github.com/svrkit/svrkit/tools/internal/cmdline/cmdlinetest"
)

// TestLoadAgainstBackend runs a short load on the real backend and checks
// the report adds up: messages were sent, every acknowledged one was synced
// exactly once, latencies are measured, and progress was printed.
func TestLoadAgainstBackend(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole backend")
	}
	b := imtest.Start(t)
	var out, progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, []string{"-up", b.StateFile, "-users", "4", "-duration", "3s", "-json"}, &out, &progress)
	if code != 0 {
		t.Fatalf("imload exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), progress.String())
	}
	for _, want := range []string{`"sent":`, `"send_to_synced_p99_ms":`, `"missing": 0`, `"duplicates": 0`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %s:\n%s", want, out.String())
		}
	}
	if !strings.Contains(progress.String(), "imload:") || !strings.Contains(progress.String(), "send-to-synced p50") {
		t.Errorf("no progress lines:\n%s", progress.String())
	}

	// Without a backend: a clear error, not a hang.
	out.Reset()
	progress.Reset()
	if code := run(ctx, []string{"-up", t.TempDir() + "/none.json"}, &out, &progress); code != 1 ||
		!strings.Contains(progress.String(), "svrkit up examples/im") {
		t.Errorf("without a backend: exit %d, stderr %q", code, progress.String())
	}
}

func TestHelpConvention(t *testing.T) {
	imload := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	cmdlinetest.Check(t, "imload", imload, []string{"extra"}, []string{"-users", "1"})
}
