// Package cmdlinetest holds a command to package cmdline's convention in
// its tests.
package cmdlinetest

import (
	"strings"
	"testing"
)

// Run runs the command in process with args and returns its exit status
// and output.
type Run func(args ...string) (code int, stdout, stderr string)

// Check runs name (as the user types it: "imcli") with -h, with a flag it
// does not have, and with each of bad, which must be bad usage, and checks
// the convention: help on stdout only with exit 0, bad usage on stderr only
// with exit 2 and the reminder of how to get help.
func Check(t *testing.T, name string, run Run, bad ...[]string) {
	t.Helper()
	code, stdout, stderr := run("-h")
	if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "usage: "+name+" ") || !strings.Contains(stdout, "\nExit status: ") {
		t.Errorf("%s -h: exit %d, stderr %q, stdout:\n%s\nwant exit 0 and the help (usage, exit status) on stdout only", name, code, stderr, stdout)
	}
	for _, args := range append([][]string{{"-no-such-flag"}}, bad...) {
		code, stdout, stderr := run(args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, "usage: "+name+" ") || !strings.HasSuffix(stderr, "Run '"+name+" -h' for help.\n") {
			t.Errorf("%s %q: exit %d, stdout %q, stderr:\n%s\nwant exit 2, what is wrong and the usage line on stderr only", name, args, code, stdout, stderr)
		}
	}
}
