package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// StateFile is the name of the file, in the data directory, where up keeps
// the state of every instance while it runs (removed when it stops), so that
// tools and tests find the services' addresses and processes:
//
//	{"instances": [{"name": "send", "service": "send", "state": "ready",
//	  "pid": 4242, "restarts": 0, "http": "127.0.0.1:39001",
//	  "rpc": "127.0.0.1:39002", "admin": "127.0.0.1:39003"}, ...]}
//
// It is replaced atomically (write, rename) on every change.
const StateFile = "up.json"

// upState is the content of StateFile.
type upState struct {
	Instances []instanceState `json:"instances"`
}

type instanceState struct {
	Name     string `json:"name"`
	Service  string `json:"service"`
	State    string `json:"state"`
	PID      int    `json:"pid"`
	Restarts int    `json:"restarts"`
	HTTP     string `json:"http"`
	RPC      string `json:"rpc"`
	Admin    string `json:"admin"`
}

func (u *up) statePath() string { return filepath.Join(u.data, StateFile) }

// saveState writes StateFile. Failing to write it is logged, not fatal:
// the services run without it.
func (u *up) saveState() {
	u.stateMu.Lock()
	defer u.stateMu.Unlock()
	var st upState
	for _, in := range u.instances {
		in.mu.Lock()
		st.Instances = append(st.Instances, instanceState{Name: in.name, Service: in.svc.Name, State: in.state,
			PID: in.pidLocked(), Restarts: in.restarts, HTTP: in.http, RPC: in.rpc, Admin: in.admin})
		in.mu.Unlock()
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err == nil {
		err = os.MkdirAll(u.data, 0o755)
	}
	if err == nil {
		tmp := u.statePath() + ".tmp"
		if err = os.WriteFile(tmp, append(b, '\n'), 0o644); err == nil {
			err = os.Rename(tmp, u.statePath())
		}
	}
	if err != nil {
		u.logf("writing %s: %v", u.statePath(), err)
	}
}

// printStatus prints a table of the instances.
func (u *up) printStatus() {
	var b strings.Builder
	fmt.Fprintf(&b, "%-14s %-8s %7s %8s  %-21s %-21s %s\n", "SERVICE", "STATE", "PID", "RESTARTS", "HTTP", "RPC", "ADMIN")
	for _, in := range u.instances {
		in.mu.Lock()
		fmt.Fprintf(&b, "%-14s %-8s %7d %8d  %-21s %-21s %s\n", in.name, in.state, in.pidLocked(), in.restarts, in.http, in.rpc, in.admin)
		in.mu.Unlock()
	}
	u.out.block(b.String())
}
