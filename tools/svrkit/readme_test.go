package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/svrkit/svrkit/tools/svrkit/upstate"
)

// readmeStep is one marked block of the README's "Your first service":
// <!-- first-service: KIND [ARG] --> before a fenced code block.
type readmeStep struct {
	kind string // run, file, up, output
	arg  string // the file's path, for file
	text string // the block's content
}

var readmeMarker = regexp.MustCompile(`^<!-- first-service: (run|file|up|output)(?: (\S+))? -->$`)

// readmeFirstService returns the marked blocks of the README's first
// service section, in order.
func readmeFirstService(t *testing.T) []readmeStep {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Your first service\n")
	if !ok {
		t.Fatal(`README.md has no "## Your first service" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	lines := strings.Split(section, "\n")
	var steps []readmeStep
	for i := 0; i < len(lines); i++ {
		m := readmeMarker.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
			t.Fatalf("README line %q: no fenced block right after the marker", lines[i])
		}
		var body []string
		for i += 2; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		steps = append(steps, readmeStep{kind: m[1], arg: m[2], text: strings.Join(body, "\n") + "\n"})
	}
	return steps
}

// TestReadmeFirstService follows the README's "Your first service" as a
// new user would, in a fresh HOME: it runs the commands in one shell (with
// job control, like a terminal), writes the files, starts `svrkit up` in
// the background where the README says to run it, waits for "all
// services ready", runs the second terminal's commands and checks their
// output against the README's, and stops up with `kill %1` as the README
// says. The only liberty taken is running both terminals in one shell.
func TestReadmeFirstService(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a service")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl, which the README uses")
	}
	steps := readmeFirstService(t)

	handWritten := 0
	for _, s := range steps {
		if s.kind == "file" {
			for _, l := range strings.Split(s.text, "\n") {
				if strings.TrimSpace(l) != "" {
					handWritten++
				}
			}
		}
	}
	if handWritten >= 30 {
		t.Errorf("the first service takes %d hand-written lines; the README promises under 30", handWritten)
	}
	t.Logf("%d hand-written lines (not counting blank ones)", handWritten)

	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var script strings.Builder
	script.WriteString("set -m -e -o pipefail\n")
	ups, outputs := 0, map[int]string{}
	for i, s := range steps {
		switch s.kind {
		case "run":
			fmt.Fprintf(&script, "{\n%s} > %s 2>&1\n", s.text, filepath.Join(out, fmt.Sprintf("step-%d.out", i)))
		case "file":
			fmt.Fprintf(&script, "mkdir -p %q\ncat > %q <<'SVRKIT_README_EOF'\n%sSVRKIT_README_EOF\n", filepath.Dir(s.arg), s.arg, s.text)
		case "up":
			cmd := strings.TrimSpace(s.text)
			if strings.Contains(cmd, "\n") {
				t.Fatalf("the up block must be one command, to run in the background:\n%s", s.text)
			}
			ups++
			// Up to 4 minutes for the build (a clean cache compiles
			// svrkit's dependencies), polling its log.
			fmt.Fprintf(&script, "%s > %s/up.log 2>&1 &\n", cmd, out)
			fmt.Fprintf(&script, "for i in $(seq 960); do grep -q 'all services ready' %[1]s/up.log && break; "+
				"kill -0 %%1 2>/dev/null || { echo 'svrkit up exited:'; cat %[1]s/up.log; exit 1; }; sleep 0.25; done\n", out)
			fmt.Fprintf(&script, "grep -q 'all services ready' %s/up.log || { echo 'svrkit up not ready after 4m'; exit 1; }\n", out)
		case "output":
			if i == 0 || steps[i-1].kind != "run" {
				t.Fatalf("README: an output block must follow a run block")
			}
			outputs[i-1] = s.text
		}
	}
	if ups != 1 {
		t.Fatalf("README: %d up blocks, want 1", ups)
	}
	// Stop the backgrounded up as the README says, and report how it ended.
	fmt.Fprintf(&script, "kill %%1\nset +e\nwait %%1\necho \"up exit status $?\"\n")

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = repo
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "NO_COLOR=1")
	// The go command finds its settings, caches and modules under HOME by
	// default: keep this machine's, so the walkthrough does not download
	// the world.
	for _, k := range []string{"GOENV", "GOCACHE", "GOMODCACHE", "GOPATH"} {
		v, err := exec.Command("go", "env", k).Output()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Env = append(cmd.Env, k+"="+strings.TrimSpace(string(v)))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var combined bytes.Buffer
	cmd.Stdout, cmd.Stderr = &combined, &combined
	start := time.Now()
	err = cmd.Run()
	t.Logf("walkthrough took %v", time.Since(start).Round(100*time.Millisecond))
	t.Cleanup(func() {
		// Whatever went wrong, leave no service running: up's children get
		// SIGTERM when up dies, and up's state file names them.
		if st, err := upstate.Read(filepath.Join(home, "greet", ".data", upstate.FileName)); err == nil {
			for _, in := range st.Instances {
				if in.PID > 0 && alive(in.PID) {
					t.Errorf("%s (pid %d) left running", in.Name, in.PID)
					_ = syscall.Kill(-in.PID, syscall.SIGKILL)
				}
			}
		}
	})
	upLog, _ := os.ReadFile(filepath.Join(out, "up.log"))
	if err != nil {
		for i := range steps {
			if b, err := os.ReadFile(filepath.Join(out, fmt.Sprintf("step-%d.out", i))); err == nil {
				fmt.Fprintf(&combined, "--- step %d printed:\n%s", i, b)
			}
		}
		t.Fatalf("walkthrough: %v\nscript:\n%s\noutput:\n%s\nup's log:\n%s", err, script.String(), combined.String(), upLog)
	}
	if !strings.Contains(combined.String(), "up exit status 0") {
		t.Errorf("kill %%1 did not stop up cleanly:\n%s\nup's log:\n%s", combined.String(), upLog)
	}
	if _, err := os.Stat(filepath.Join(home, "greet", ".data", "up.json")); !os.IsNotExist(err) {
		t.Errorf("up left its state file after stopping: %v", err)
	}
	for i, want := range outputs {
		got, err := os.ReadFile(filepath.Join(out, fmt.Sprintf("step-%d.out", i)))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(want), "\n") {
			if !strings.Contains(string(got), line) {
				t.Errorf("README step %d printed:\n%s\nthe README shows:\n%s", i, got, want)
				break
			}
		}
	}
}
