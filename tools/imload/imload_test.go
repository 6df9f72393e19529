package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im/imtest"
	"github.com/svrkit/svrkit/tools/internal/cmdline/cmdlinetest"
)

// TestLoadAgainstBackend runs a short load on the real backend and checks
// the report adds up: messages were sent, every acknowledged one was synced
// exactly once, over push (notifies were pushed), latencies and the
// backend's CPU are measured, and progress was printed. Then -compare runs
// push beside polling.
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
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out.String())
	}
	if rep.Mode != "push" || rep.Sent == 0 || rep.Synced != rep.Sent || rep.Missing != 0 || rep.Duplicates != 0 ||
		rep.Pushes == 0 || rep.DeliveredP99 <= 0 || rep.BackendCPU <= 0 || rep.CPUPerDelivered <= 0 || rep.CPUByProcess["gateway"] <= 0 {
		t.Errorf("push report does not add up:\n%s", out.String())
	}
	if !strings.Contains(progress.String(), "imload:") || !strings.Contains(progress.String(), "send-to-synced p50") {
		t.Errorf("no progress lines:\n%s", progress.String())
	}

	out.Reset()
	progress.Reset()
	code = run(ctx, []string{"-up", b.StateFile, "-compare", "-runs", "1", "-users", "2,3", "-duration", "1s"}, &out, &progress)
	if code != 0 {
		t.Fatalf("imload -compare exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), progress.String())
	}
	for _, want := range []string{"| 2 | push |", "| 2 | poll 10ms |", "| 3 | push |", "| 3 | poll 10ms |", "load average"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("comparison lacks %q:\n%s", want, out.String())
		}
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
