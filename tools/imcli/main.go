// Command imcli is a terminal client of the IM backend (examples/im): it
// registers and logs in, manages contacts and groups, sends messages and
// syncs them,
// through the client-facing CGIs (package
// github.com/svrkit/svrkit/examples/im/imclient).
//
//	go run ./tools/svrkit up examples/im          # terminal 1: the backend
//	go run ./tools/imcli register alice -password 'correct horse'
//	go run ./tools/imcli -as alice add bob
//	go run ./tools/imcli -as alice send bob 'hi bob'
//	go run ./tools/imcli -as alice sendimage bob photo.jpg
//	go run ./tools/imcli -as bob watch            # pushed over the long link; Ctrl-C to stop
//
// The services' addresses come from svrkit up's state file (-up, default
// examples/im/.data/up.json). Between invocations imcli keeps the login
// token and the device's SyncKey in a small state file per user,
// ~/.imcli-NAME.json (mode 0600), so each command is one short process; the
// user is the NAME of register and login, then -as NAME (or $IMCLI_USER)
// picks whose file, or -state names one outright.
//
// Output is one human-readable line per thing; with -json, one JSON object
// per line instead (protobuf JSON of the replies and sync items), for
// scripts. Exit status: 0 on success, 1 when a call fails (the error's code
// and message on stderr, as {"code","message"} with -json), 2 for bad
// usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/svrkit/svrkit/tools/internal/cmdline"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

var help = cmdline.Help{
	Name:  "imcli",
	Usage: []string{"imcli [flags] COMMAND [ARGS]"},
	Text: `A terminal client of the IM backend that 'go run ./tools/svrkit up
examples/im' runs.

commands:
  register NAME [-password P] [-nick NICK] [-device D]   create a user and log in
  login NAME [-password P] [-device D]                    log in (one device per login)
  logout [-all]                                           end this device's session (-all: every device's)
  passwd [-password P] [-new NEW]                         change your password; ends every session, keeps this one
  whoami                                                  your profile
  profile NAME|ID                                         someone's profile
  setnick NICKNAME                                        change your nickname
  add NAME                                                add a contact
  remove NAME                                             remove a contact
  contacts                                                list your contacts
  send NAME|ID TEXT...                                    send a text message
  sendimage NAME|ID FILE                                  send a JPEG, PNG, GIF or WebP (a cut upload resumes on rerun)
  sendvideo NAME|ID FILE [-cover IMAGE]                   send an MP4, QuickTime or WebM video
  download MEDIA_ID [-thumb] [-o FILE]                    save a media file sent to you (a cut download resumes on rerun)
  newgroup NAME [MEMBER...]                               create a group with members
  groups                                                  list your groups
  members GROUP                                           list a group's members
  invite GROUP MEMBER...                                  add members to a group
  kick GROUP MEMBER                                       remove a member (owner only)
  leave GROUP                                             leave a group
  rename GROUP NEWNAME                                    rename a group
  gsend GROUP TEXT...                                     send a text message to a group
  sync [-reset]                                           print what is new; -reset starts from scratch
  watch [-every D]                                        print messages as they come: pushed over the
                                                          gateway's long link, or polled every D

The password comes from -password, else $IMCLI_PASSWORD, else a line of stdin;
passwd's new one from -new, else $IMCLI_NEW_PASSWORD, else the next line.
A MEMBER is a contact's name or a user id; a GROUP a group id, or the name of
one of your groups.

Exit status: 0 on success; 1 when a call fails (its code and message on
stderr, as {"code","message"} with -json); 2 for bad usage.`,
}

// cli is one invocation.
type cli struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string

	upPath    string
	statePath string
	as        string
	json      bool
}

// usageError is bad usage: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &cli{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	fs := flag.NewFlagSet("imcli", flag.ContinueOnError)
	fs.StringVar(&c.upPath, "up", "examples/im/.data/up.json", "svrkit up's state file, where the services' addresses are")
	fs.StringVar(&c.statePath, "state", getenv("IMCLI_STATE"), "imcli's state file (default ~/.imcli-NAME.json; $IMCLI_STATE)")
	fs.StringVar(&c.as, "as", getenv("IMCLI_USER"), "whose state file to use ($IMCLI_USER)")
	fs.BoolVar(&c.json, "json", false, "print JSON lines for scripts")
	if err := cmdline.Parse(fs, args, help, stdout, stderr); err != nil {
		return cmdline.ExitCode(err)
	}
	if fs.NArg() == 0 {
		return cmdline.ExitCode(help.Usagef(stderr, "no command given"))
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	if cmd == "help" || (len(rest) > 0 && (rest[0] == "-h" || rest[0] == "-help" || rest[0] == "--help")) {
		help.Print(stdout, fs)
		return cmdline.ExitOK
	}
	err := c.dispatch(cmd, rest)
	if err == nil {
		return cmdline.ExitOK
	}
	var ue usageError
	if errors.As(err, &ue) {
		if line, ok := strings.CutPrefix(ue.msg, "usage: "); ok {
			// A command's own usage line: say it in full.
			fmt.Fprintf(stderr, "usage: imcli %s\nRun 'imcli -h' for help.\n", line)
		} else {
			_ = help.Usagef(stderr, "%s", ue.msg)
		}
		return cmdline.ExitUsage
	}
	c.printError(err)
	return cmdline.ExitFailure
}

func (c *cli) dispatch(cmd string, args []string) error {
	switch cmd {
	case "register":
		return c.register(args)
	case "login":
		return c.login(args)
	case "logout":
		return c.logout(args)
	case "passwd":
		return c.passwd(args)
	case "whoami":
		return c.profile(nil)
	case "profile":
		return c.profile(args)
	case "setnick":
		return c.setnick(args)
	case "add":
		return c.add(args)
	case "remove":
		return c.remove(args)
	case "contacts":
		return c.contacts(args)
	case "send":
		return c.send(args)
	case "newgroup":
		return c.newgroup(args)
	case "groups":
		return c.groups(args)
	case "members":
		return c.members(args)
	case "invite":
		return c.invite(args)
	case "kick":
		return c.kick(args)
	case "leave":
		return c.leave(args)
	case "rename":
		return c.rename(args)
	case "gsend":
		return c.gsend(args)
	case "sendimage":
		return c.sendimage(args)
	case "sendvideo":
		return c.sendvideo(args)
	case "download":
		return c.download(args)
	case "sync":
		return c.sync(args)
	case "watch":
		return c.watch(args)
	}
	return usagef("unknown command %q", cmd)
}

// subFlags parses a command's flags, which may come before or after its
// positional arguments ("register alice -password x").
func subFlags(name string, args []string, define func(*flag.FlagSet)) ([]string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	define(fs)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usagef("%s: %v", name, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// defaultStatePath is ~/.imcli-NAME.json.
func defaultStatePath(getenv func(string) string, name string) (string, error) {
	home := getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", err
		}
	}
	return filepath.Join(home, ".imcli-"+name+".json"), nil
}

// printJSON writes v as one JSON line.
func (c *cli) printJSON(v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintln(c.stdout, string(b))
}

func (c *cli) printf(format string, args ...any) {
	fmt.Fprintf(c.stdout, format+"\n", args...)
}

// hint adds what a person can do about some errors.
func hint(code string) string {
	switch code {
	case "unauthenticated":
		return " (log in: imcli login NAME)"
	case "unavailable":
		return " (is `go run ./tools/svrkit up examples/im` running?)"
	}
	return ""
}

func trimCode(msg, code string) string {
	return strings.TrimPrefix(strings.TrimPrefix(msg, "svrkit: "+code+": "), "svrkit: ")
}
