// Command svrkit is svrkit's developer tool: one binary with a subcommand
// per job.
//
//	svrkit gen   compile .proto IDL into Go (message code and svrkit code)
//	svrkit call  call a method of a running service with a JSON request
//	svrkit up    build and run a topology of Logicsvrs on this machine
//	svrkit addr  print an address of a service that svrkit up runs
//
// Each subcommand lives in its own file and registers itself from an init
// function with register, so adding one touches no other file:
//
//	func init() {
//		register(&command{
//			name:    "up",
//			summary: "run every Logicsvr of DIR on this machine",
//			help:    upHelp,
//			run:     runUp,
//		})
//	}
//
// A command's run function gets its arguments (after the subcommand name)
// and an env holding the working directory and standard streams, so tests
// run commands in process against any directory. It parses its flags with
// e.parse, which follows the convention of package cmdline (help on
// stdout, exit 0; bad usage on stderr, exit 2), and returns nil on success,
// an error from e.parse or e.usagef, an exitError to choose the exit status,
// or any other error to print it and exit 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/svrkit/svrkit/tools/internal/cmdline"
)

// command is one subcommand.
type command struct {
	name    string
	summary string // one line for the command list
	help    cmdline.Help
	run     func(e *env, args []string) error
}

// env is what a command runs against.
type env struct {
	ctx    context.Context
	dir    string // relative paths are resolved against dir
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

var commands = map[string]*command{}

// register adds a subcommand; call it from an init function.
func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("svrkit: command " + c.name + " registered twice")
	}
	commands[c.name] = c
}

// parse parses a command's flags (cmdline.Parse).
func (e *env) parse(fs *flag.FlagSet, args []string, h cmdline.Help) error {
	return cmdline.Parse(fs, args, h, e.stdout, e.stderr)
}

// usagef reports bad usage of a command and returns cmdline.ErrUsage.
func (e *env) usagef(h cmdline.Help, format string, args ...any) error {
	return h.Usagef(e.stderr, format, args...)
}

// exitError ends the command with a chosen status after printing msg (if
// any).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "svrkit:", err)
		os.Exit(cmdline.ExitFailure)
	}
	os.Exit(run(&env{ctx: ctx, dir: dir, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:]))
}

var svrkitHelp = cmdline.Help{
	Name:  "svrkit",
	Usage: []string{"svrkit COMMAND [flags] [args]"},
	Text:  "svrkit generates code from IDL, runs services on this machine and calls them.",
}

// run dispatches args to a subcommand and returns the process exit status.
func run(e *env, args []string) int {
	if len(args) == 0 {
		printCommands(e.stderr)
		return cmdline.ExitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			c := commands[args[1]]
			if c == nil {
				fmt.Fprintf(e.stderr, "svrkit: no command %q\n\n", args[1])
				printCommands(e.stderr)
				return cmdline.ExitUsage
			}
			return cmdline.ExitCode(c.run(e, []string{"-h"}))
		}
		printCommands(e.stdout)
		return cmdline.ExitOK
	}
	c := commands[args[0]]
	if c == nil {
		fmt.Fprintf(e.stderr, "svrkit: unknown command %q\n\n", args[0])
		printCommands(e.stderr)
		return cmdline.ExitUsage
	}
	err := c.run(e, args[1:])
	var ee *exitError
	switch {
	case errors.Is(err, cmdline.ErrHelp), errors.Is(err, cmdline.ErrUsage), err == nil:
		return cmdline.ExitCode(err)
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintln(e.stderr, ee.msg)
		}
		return ee.code
	default:
		fmt.Fprintf(e.stderr, "svrkit %s: %v\n", c.name, err)
		return cmdline.ExitFailure
	}
}

func printCommands(w io.Writer) {
	svrkitHelp.Print(w, nil)
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-6s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'svrkit help COMMAND' (or 'svrkit COMMAND -h') for a command's help and flags.")
	fmt.Fprintln(w, "Exit status: 0 on success, 1 when the command fails, 2 for bad usage.")
}
