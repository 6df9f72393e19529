package main

import (
	"strings"
	"testing"
)

// TestHelpConvention holds every subcommand to package cmdline's
// convention: help on stdout with exit 0, bad usage on stderr with exit 2.
func TestHelpConvention(t *testing.T) {
	dir := t.TempDir()
	for name := range commands {
		t.Run(name, func(t *testing.T) {
			for _, args := range [][]string{{name, "-h"}, {"help", name}} {
				code, stdout, stderr := runCmd(t, dir, args...)
				if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "usage: svrkit "+name+" ") ||
					!strings.Contains(stdout, "\nExit status: ") || !strings.Contains(stdout, "\nflags:\n  -") {
					t.Errorf("svrkit %s: exit %d, stderr %q, stdout:\n%s\nwant exit 0 and the help (usage, exit status, flags) on stdout only", strings.Join(args, " "), code, stderr, stdout)
				}
			}
			code, stdout, stderr := runCmd(t, dir, name, "-no-such-flag")
			if code != 2 || stdout != "" || !strings.Contains(stderr, "flag provided but not defined: -no-such-flag\nusage: svrkit "+name+" ") ||
				!strings.HasSuffix(stderr, "Run 'svrkit "+name+" -h' for help.\n") {
				t.Errorf("svrkit %s -no-such-flag: exit %d, stdout %q, stderr:\n%s\nwant exit 2, the mistake and the usage line on stderr", name, code, stdout, stderr)
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
