package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
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
		rep.Pushes == 0 || rep.DeliveredP99 <= 0 || rep.BackendCPU <= 0 || rep.CPUPerDelivered <= 0 || rep.CPUByProcess["gateway"] <= 0 ||
		rep.RPCsPerDelivered < 2 {
		t.Errorf("push report does not add up:\n%s", out.String())
	}
	if !strings.Contains(progress.String(), "imload:") || !strings.Contains(progress.String(), "send-to-synced p50") {
		t.Errorf("no progress lines:\n%s", progress.String())
	}

	// Group traffic on the same backend: every group message reaches
	// every syncing member once, and the fan-out worker's delay and the
	// queue's lag are reported.
	out.Reset()
	progress.Reset()
	code = run(ctx, []string{"-up", b.StateFile, "-users", "6", "-groups", "3x4,1x6", "-syncers", "4", "-duration", "3s", "-json"}, &out, &progress)
	if code != 0 {
		t.Fatalf("imload -groups exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), progress.String())
	}
	var grp GroupReport
	if err := json.Unmarshal(out.Bytes(), &grp); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if grp.Sent == 0 || grp.Expected == 0 || grp.Synced < grp.Expected || grp.Missing != 0 || grp.Duplicates != 0 ||
		grp.FanoutCount == 0 || grp.FanoutP99 < grp.FanoutP50 || grp.FanoutWritesPerS <= 0 || len(grp.Lag) == 0 || grp.Syncers != 4 {
		t.Errorf("group report does not add up: %+v", grp)
	}
	if !strings.Contains(progress.String(), "queue backlog") {
		t.Errorf("no queue lag in the progress lines:\n%s", progress.String())
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

	// At rest: every process is read, and they do wake (their
	// housekeeping), so the window counts context switches.
	out.Reset()
	progress.Reset()
	code = run(ctx, []string{"-up", b.StateFile, "-idle", "1s", "-json"}, &out, &progress)
	if code != 0 {
		t.Fatalf("imload -idle exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), progress.String())
	}
	var idle IdleReport
	if err := json.Unmarshal(out.Bytes(), &idle); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if _, ok := idle.ByProcess["gateway"]; idle.Mode != "idle" || !ok || idle.SwitchesPerSec <= 0 || idle.Seconds < 1 {
		t.Errorf("idle report does not add up:\n%s", out.String())
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

func TestParseGroups(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []GroupSpec
	}{
		{"100x50", []GroupSpec{{100, 50}}},
		{"100x50, 1x500", []GroupSpec{{100, 50}, {1, 500}}},
		{"1x501", nil},
		{"0x5", nil},
		{"3x1", nil},
		{"3", nil},
		{"ax5", nil},
		{"", nil},
	} {
		got, err := ParseGroups(tc.in)
		if (err == nil) != (tc.want != nil) || !slices.Equal(got, tc.want) {
			t.Errorf("ParseGroups(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"-groups", "1x501"}, &bytes.Buffer{}, &stderr); code != 2 || !strings.Contains(stderr.String(), "sizes 2 to 500") {
		t.Errorf("-groups 1x501: exit %d, %q", code, stderr.String())
	}
}
