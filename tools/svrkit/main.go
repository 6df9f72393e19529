// Command svrkit is svrkit's developer tool: one binary with a subcommand
// per job.
//
//	svrkit gen   compile .proto IDL into Go (message code and svrkit code)
//	svrkit call  call a method of a running service with a JSON request
//
// Each subcommand lives in its own file and registers itself from an init
// function with register, so adding one (`up`, `bench`) touches no other
// file:
//
//	func init() {
//		register(&command{
//			name:    "up",
//			usage:   "up [flags] DIR",
//			summary: "run every Logicsvr of DIR on this machine",
//			run:     runUp,
//		})
//	}
//
// A command's run function gets its arguments (after the subcommand name)
// and an env holding the working directory and standard streams, so tests
// run commands in process against any directory. It returns nil on success,
// errUsage (wrapped or not) for bad arguments, an exitError to choose the exit
// status, or any other error to print it and exit 1.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand.
type command struct {
	name    string
	usage   string // first line of help: "gen [flags] PATH..."
	summary string // one line for the command list
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

// errUsage reports bad command-line arguments; the command's flag set has
// already said what is wrong.
var errUsage = errors.New("usage")

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
		os.Exit(1)
	}
	os.Exit(run(&env{ctx: ctx, dir: dir, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:]))
}

// run dispatches args to a subcommand and returns the process exit status.
func run(e *env, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c := commands[args[1]]; c != nil {
				_ = c.run(e, []string{"-h"})
				return 0
			}
		}
		printCommands(e.stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c := commands[args[0]]
	if c == nil {
		fmt.Fprintf(e.stderr, "svrkit: unknown command %q\n\n", args[0])
		printCommands(e.stderr)
		return 2
	}
	err := c.run(e, args[1:])
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintln(e.stderr, ee.msg)
		}
		return ee.code
	default:
		fmt.Fprintf(e.stderr, "svrkit %s: %v\n", c.name, err)
		return 1
	}
}

func printCommands(w io.Writer) {
	fmt.Fprintln(w, "usage: svrkit COMMAND [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-6s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'svrkit help COMMAND' for a command's flags.")
}
