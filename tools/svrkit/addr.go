package main

import (
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/svrkit/svrkit/tools/internal/cmdline"
	"github.com/svrkit/svrkit/tools/svrkit/upstate"
)

func init() {
	register(&command{
		name:    "addr",
		summary: "print the address of a service that svrkit up runs, for scripts",
		help:    addrHelp,
		run:     runAddr,
	})
}

var addrHelp = cmdline.Help{
	Name:  "svrkit addr",
	Usage: []string{"svrkit addr [flags] NAME [http|rpc|admin]"},
	Text: `Prints the address (host:port) of a service that 'svrkit up' runs, read
from up's state file (-up), so that commands need no port numbers:

  curl -d '{"name":"Ada"}' http://$(svrkit addr greet)/cgi-bin/greet/hello

NAME is an instance (greet, or notes-2 of a service with replicas), a
topology service (its ready instance, else its first) or a protobuf service
(hello.Greeter). It prints the HTTP address, or the binary RPC or admin one.

Exit status: 0 on success; 1 when up's state file does not exist (up is not
running, or runs with another -datadir) or names no such service; 2 for bad
usage.`,
}

func runAddr(e *env, args []string) error {
	fs := flag.NewFlagSet("addr", flag.ContinueOnError)
	upState := fs.String("up", filepath.Join(".data", upstate.FileName), "svrkit up's state `file` (DIR/.data/up.json for 'svrkit up DIR')")
	if err := e.parse(fs, args, addrHelp); err != nil {
		return err
	}
	kind := "http"
	switch fs.NArg() {
	case 1:
	case 2:
		kind = fs.Arg(1)
		if !slices.Contains(addrKinds, kind) {
			return e.usagef(addrHelp, "the address is http, rpc or admin, not %q", kind)
		}
	default:
		return e.usagef(addrHelp, "give a NAME, and optionally http, rpc or admin")
	}
	in, err := findInstance(e, *upState, fs.Arg(0))
	if err != nil {
		return err
	}
	addr := map[string]string{"http": in.HTTP, "rpc": in.RPC, "admin": in.Admin}[kind]
	_, err = fmt.Fprintln(e.stdout, addr)
	return err
}

// findInstance looks name up in the state file of a running svrkit up.
func findInstance(e *env, stateFile, name string) (upstate.Instance, error) {
	st, err := upstate.Read(e.abs(stateFile))
	if errors.Is(err, upstate.ErrNotRunning) {
		return upstate.Instance{}, fmt.Errorf("%w (start it with svrkit up DIR, or give -up DIR/.data/up.json)", err)
	}
	if err != nil {
		return upstate.Instance{}, err
	}
	in, ok := st.Find(name)
	if !ok {
		var names []string
		for _, in := range st.Instances {
			names = append(names, in.Name)
		}
		return upstate.Instance{}, fmt.Errorf("%s runs no %q; it runs %v", e.rel(e.abs(stateFile)), name, names)
	}
	return in, nil
}
