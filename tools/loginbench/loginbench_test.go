package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im/imtest"
)

// TestAgainstBackend runs a short attack on the real backend: the report
// adds up, every legitimate login succeeded, and the throttle turned the
// attacker away.
func TestAgainstBackend(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole backend")
	}
	b := imtest.Start(t)
	var out, progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, []string{"-up", b.StateFile, "-users", "4", "-attackers", "16", "-duration", "3s", "-json"}, &out, &progress)
	if code != 0 {
		t.Fatalf("loginbench exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), progress.String())
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report %q: %v", out.String(), err)
	}
	if rep.Returning.Logins == 0 || rep.NewDevice.Logins == 0 || rep.All.Logins != rep.Returning.Logins+rep.NewDevice.Logins {
		t.Fatalf("logins do not add up: %+v", rep)
	}
	if len(rep.All.Failed) != 0 {
		t.Fatalf("legitimate logins failed during the attack: %v\n%s", rep.All.Failed, out.String())
	}
	if rep.Throttled == 0 || rep.Guesses == 0 || rep.Guesses > rep.Throttled {
		t.Fatalf("attacker: %d guesses checked, %d throttled; want most throttled", rep.Guesses, rep.Throttled)
	}
	if !strings.Contains(progress.String(), "loginbench:") {
		t.Errorf("no progress lines:\n%s", progress.String())
	}

	// Without a backend: a clear error, not a hang.
	progress.Reset()
	if code := run(ctx, []string{"-up", t.TempDir() + "/none.json"}, &out, &progress); code != 1 ||
		!strings.Contains(progress.String(), "svrkit up examples/im") {
		t.Errorf("without a backend: exit %d, stderr %q", code, progress.String())
	}
}
