// Package upstate is the state file of a running `svrkit up`: which
// instances run, in which state, as which process, on which addresses. up
// writes it; imcli, imload, the imclient library, the imtest harness and
// `svrkit call`/`svrkit addr` read it to find the services without being
// told their ports.
//
// The file is {data}/up.json (examples/im/.data/up.json for the IM backend,
// .data/up.json beside a topology.json by default):
//
//	{"instances": [{"name": "send", "service": "send", "state": "ready",
//	  "pid": 4242, "restarts": 0, "http": "127.0.0.1:39001",
//	  "rpc": "127.0.0.1:39002", "admin": "127.0.0.1:39003",
//	  "serves": ["im.Send"]}, ...]}
//
// up replaces it atomically (write a temporary file, rename) on every
// change, so a reader never sees half of it, and removes it when it stops:
// a missing file means nothing is running. Fields are only ever added, so
// an older reader keeps working with a newer up.
package upstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	"github.com/svrkit/svrkit/tools/internal/jsonfile"
)

// FileName is the state file's name in up's data directory.
const FileName = "up.json"

// The states of an instance.
const (
	Starting = "starting" // started, not yet answering its readiness probe
	Ready    = "ready"    // answering its readiness probe
	Crashed  = "crashed"  // exited on its own; up restarts it after a backoff
	Stopping = "stopping" // up asked it to stop
	Stopped  = "stopped"  // stopped by up
)

// State is the file's content.
type State struct {
	Instances []Instance `json:"instances"`
}

// Instance is one running copy of a topology service: the service itself,
// or NAME-1, NAME-2... when it has replicas.
type Instance struct {
	Name     string `json:"name"`
	Service  string `json:"service"`
	State    string `json:"state"`
	PID      int    `json:"pid"`
	Restarts int    `json:"restarts"`
	HTTP     string `json:"http"`
	RPC      string `json:"rpc"`
	Admin    string `json:"admin"`
	// Ports are the instance's extra ports, by the names its topology
	// gives them ("link": a gateway's long-link listener).
	Ports map[string]string `json:"ports,omitempty"`
	// Serves lists the protobuf services its RPC port serves
	// ("hello.Greeter").
	Serves []string `json:"serves,omitempty"`
}

// ErrNotRunning is what Read returns (wrapped) when there is no state
// file: no `svrkit up` runs with that data directory.
var ErrNotRunning = errors.New("no svrkit up is running there")

// Read reads a state file.
func Read(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNotRunning)
	}
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &st, nil
}

// Write replaces the state file at path with st, atomically.
func Write(path string, st *State) error { return jsonfile.Write(path, st, 0o644) }

// Instance returns the instance named name ("send", or "send-1" with
// replicas).
func (st *State) Instance(name string) (Instance, bool) {
	for _, in := range st.Instances {
		if in.Name == name {
			return in, true
		}
	}
	return Instance{}, false
}

// Find returns an instance by instance name or, failing that, an instance
// of the topology service of that name or of the protobuf service of that
// name: a ready one if there is one, else the first.
func (st *State) Find(name string) (Instance, bool) {
	if in, ok := st.Instance(name); ok {
		return in, true
	}
	var found Instance
	ok := false
	for _, in := range st.Instances {
		if in.Service != name && !slices.Contains(in.Serves, name) {
			continue
		}
		if in.State == Ready {
			return in, true
		}
		if !ok {
			found, ok = in, true
		}
	}
	return found, ok
}

// RPCs returns the binary RPC addresses of every instance of the topology
// service or protobuf service name (none when name is an instance's own
// name): a client given them all follows a replica group's redirects to
// its leader.
func (st *State) RPCs(name string) []string {
	if _, ok := st.Instance(name); ok {
		return nil
	}
	var out []string
	for _, in := range st.Instances {
		if (in.Service == name || slices.Contains(in.Serves, name)) && in.RPC != "" {
			out = append(out, in.RPC)
		}
	}
	return out
}

// AllReady reports whether there are instances and every one is ready.
func (st *State) AllReady() bool {
	for _, in := range st.Instances {
		if in.State != Ready {
			return false
		}
	}
	return len(st.Instances) > 0
}
