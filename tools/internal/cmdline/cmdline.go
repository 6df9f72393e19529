// Package cmdline is the command-line convention that svrkit's commands
// (svrkit and each of its subcommands, imcli, imload) share, so that they
// behave alike in a terminal and in scripts:
//
//   - -h, -help or the word help prints the full help to standard output
//     (so that `imcli -h | less` works) and exits 0;
//   - bad usage prints what is wrong, the usage line and how to get help to
//     standard error and exits 2;
//   - a failure prints "NAME: what failed" to standard error and exits 1;
//   - results go to standard output, diagnostics and progress to standard
//     error.
//
// A full help is "usage: " and the usage lines, a blank line, the
// description (which ends with the exit statuses), and the flags:
//
//	usage: imload [flags]
//
//	Puts load on a running IM backend...
//
//	Exit status: 0 ..., 1 ..., 2 for bad usage.
//
//	flags:
//	  -users int ...
package cmdline

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit statuses.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

var (
	// ErrHelp means the help was asked for and printed: exit ExitOK.
	ErrHelp = errors.New("help printed")
	// ErrUsage means bad usage, already reported: exit ExitUsage.
	ErrUsage = errors.New("bad usage")
)

// Help is a command's help.
type Help struct {
	// Name is what the user types: "svrkit up", "imcli".
	Name string
	// Usage is the usage lines without "usage: " ("svrkit up [flags]
	// DIR|FILE"); the first one is repeated on bad usage.
	Usage []string
	// Text is the description, printed between the usage and the flags.
	Text string
}

// Print writes the full help, with fs's flags if fs has any.
func (h Help) Print(w io.Writer, fs *flag.FlagSet) {
	for i, u := range h.Usage {
		prefix := "usage: "
		if i > 0 {
			prefix = "       "
		}
		fmt.Fprintln(w, prefix+u)
	}
	if text := strings.Trim(h.Text, "\n"); text != "" {
		fmt.Fprintf(w, "\n%s\n", text)
	}
	if fs != nil && hasFlags(fs) {
		fmt.Fprint(w, "\nflags:\n")
		out := fs.Output()
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(out)
	}
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// Short writes the reminder printed after a usage mistake.
func (h Help) Short(w io.Writer) {
	if len(h.Usage) > 0 {
		fmt.Fprintf(w, "usage: %s\n", h.Usage[0])
	}
	fmt.Fprintf(w, "Run '%s -h' for help.\n", h.Name)
}

// Usagef reports bad usage on stderr ("NAME: msg" and the reminder) and
// returns ErrUsage.
func (h Help) Usagef(stderr io.Writer, format string, args ...any) error {
	fmt.Fprintf(stderr, "%s: %s\n", h.Name, fmt.Sprintf(format, args...))
	h.Short(stderr)
	return ErrUsage
}

// Parse parses args into fs. On -h it prints the full help to stdout and
// returns ErrHelp; on a bad flag it reports it on stderr and returns
// ErrUsage. fs must have been made with flag.ContinueOnError.
func Parse(fs *flag.FlagSet, args []string, h Help, stdout, stderr io.Writer) error {
	fs.SetOutput(stderr)
	fs.Usage = func() {} // the flag package calls it before returning; we print below
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		h.Print(stdout, fs)
		return ErrHelp
	default:
		// The flag package has printed what is wrong.
		h.Short(stderr)
		return ErrUsage
	}
}

// ExitCode maps the errors of this package to exit statuses: ErrHelp
// ExitOK, ErrUsage ExitUsage, nil ExitOK, anything else ExitFailure.
func ExitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, ErrHelp):
		return ExitOK
	case errors.Is(err, ErrUsage):
		return ExitUsage
	}
	return ExitFailure
}
