package cmdline

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

var testHelp = Help{Name: "tool", Usage: []string{"tool [flags] ARG", "tool -list"}, Text: "Does things.\n\nExit status: 0, 1, 2."}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name           string
		args           []string
		err            error
		code           int
		stdout, stderr []string // substrings; nil means empty
	}{
		{"ok", []string{"-n", "3", "x"}, nil, 0, nil, nil},
		{"help", []string{"-h"}, ErrHelp, 0, []string{"usage: tool [flags] ARG\n       tool -list\n\nDoes things.\n", "flags:\n  -n int"}, nil},
		{"bad flag", []string{"-x"}, ErrUsage, 2, nil, []string{"flag provided but not defined: -x", "usage: tool [flags] ARG\nRun 'tool -h' for help.\n"}},
		{"bad value", []string{"-n", "many"}, ErrUsage, 2, nil, []string{`invalid value "many" for flag -n`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("tool", flag.ContinueOnError)
			fs.Int("n", 1, "how many")
			var stdout, stderr bytes.Buffer
			err := Parse(fs, tc.args, testHelp, &stdout, &stderr)
			if !errors.Is(err, tc.err) && err != tc.err {
				t.Fatalf("Parse = %v, want %v", err, tc.err)
			}
			if ExitCode(err) != tc.code {
				t.Errorf("ExitCode = %d, want %d", ExitCode(err), tc.code)
			}
			check := func(what, got string, want []string) {
				if want == nil && got != "" {
					t.Errorf("%s = %q, want nothing", what, got)
				}
				for _, w := range want {
					if !strings.Contains(got, w) {
						t.Errorf("%s = %q, want %q in it", what, got, w)
					}
				}
			}
			check("stdout", stdout.String(), tc.stdout)
			check("stderr", stderr.String(), tc.stderr)
		})
	}
}

func TestUsagef(t *testing.T) {
	var stderr bytes.Buffer
	if err := testHelp.Usagef(&stderr, "need %d args", 1); !errors.Is(err, ErrUsage) {
		t.Fatalf("Usagef = %v", err)
	}
	if want := "tool: need 1 args\nusage: tool [flags] ARG\nRun 'tool -h' for help.\n"; stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
	if ExitCode(errors.New("boom")) != ExitFailure {
		t.Error("a failure does not exit 1")
	}
}
