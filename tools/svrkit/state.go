package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/svrkit/svrkit/tools/svrkit/upstate"
)

// statePath is the state file, {data}/up.json (package upstate).
func (u *up) statePath() string { return filepath.Join(u.data, upstate.FileName) }

// snapshot is the state of every instance now.
func (u *up) snapshot() *upstate.State {
	st := &upstate.State{Instances: []upstate.Instance{}}
	for _, in := range u.instances {
		in.mu.Lock()
		st.Instances = append(st.Instances, upstate.Instance{Name: in.name, Service: in.svc.Name, State: in.state,
			PID: in.pidLocked(), Restarts: in.restarts, HTTP: in.http, RPC: in.rpc, Admin: in.admin, Ports: in.ports, Serves: in.svc.Serves})
		in.mu.Unlock()
	}
	return st
}

// saveState writes the state file. Failing to write it is logged, not
// fatal: the services run without it.
func (u *up) saveState() {
	u.stateMu.Lock()
	defer u.stateMu.Unlock()
	if err := upstate.Write(u.statePath(), u.snapshot()); err != nil {
		u.logf("writing %s: %v", u.statePath(), err)
	}
}

// printStatus prints a table of the instances.
func (u *up) printStatus() {
	var b strings.Builder
	fmt.Fprintf(&b, "%-14s %-8s %7s %8s  %-21s %-21s %s\n", "SERVICE", "STATE", "PID", "RESTARTS", "HTTP", "RPC", "ADMIN")
	for _, in := range u.snapshot().Instances {
		fmt.Fprintf(&b, "%-14s %-8s %7d %8d  %-21s %-21s %s\n", in.Name, in.State, in.PID, in.Restarts, in.HTTP, in.RPC, in.Admin)
	}
	u.out.block(b.String())
}
