package main

import (
	"strings"
	"testing"

	"github.com/svrkit/svrkit/tools/internal/cmdline/cmdlinetest"
)

// TestHelpConvention holds every subcommand to package cmdline's
// convention: help on stdout with exit 0, bad usage on stderr with exit 2.
func TestHelpConvention(t *testing.T) {
	dir := t.TempDir()
	for name := range commands {
		t.Run(name, func(t *testing.T) {
			svrkit := func(args ...string) (int, string, string) { return runCmd(t, dir, append([]string{name}, args...)...) }
			cmdlinetest.Check(t, "svrkit "+name, svrkit)
			code, stdout, stderr := runCmd(t, dir, "help", name)
			if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "usage: svrkit "+name+" ") || !strings.Contains(stdout, "\nflags:\n  -") {
				t.Errorf("svrkit help %s: exit %d, stderr %q, stdout:\n%s\nwant exit 0 and the help with flags on stdout only", name, code, stderr, stdout)
			}
		})
	}
	for _, tc := range []struct {
		args     []string
		code     int
		onStdout bool
	}{
		{nil, 2, false},
		{[]string{"-h"}, 0, true},
		{[]string{"help"}, 0, true},
		{[]string{"nosuch"}, 2, false},
		{[]string{"help", "nosuch"}, 2, false},
	} {
		code, stdout, stderr := runCmd(t, dir, tc.args...)
		out, other := stderr, stdout
		if tc.onStdout {
			out, other = stdout, stderr
		}
		if code != tc.code || other != "" || !strings.Contains(out, "usage: svrkit COMMAND") || !strings.Contains(out, "\n  gen    ") {
			t.Errorf("svrkit %q: exit %d, stdout %q, stderr %q; want exit %d and the command list on one stream", tc.args, code, stdout, stderr, tc.code)
		}
	}
}
