package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
)

// topology is a topology file: the services `svrkit up` runs together (the
// format is in upHelp).
type topology struct {
	Services []*topoService `json:"services"`
	// Usage is printed once every service is ready: how to talk to them.
	Usage []string `json:"usage,omitempty"`
}

type topoService struct {
	Name     string   `json:"name"`
	Package  string   `json:"package"`
	Kind     string   `json:"kind,omitempty"`
	Args     []string `json:"args,omitempty"`
	Serves   []string `json:"serves,omitempty"`
	Ready    string   `json:"ready,omitempty"`
	Replicas int      `json:"replicas,omitempty"`
	// Group names the shard group the service's instances form: routes
	// list them as SERVICE/GROUP instead of SERVICE.
	Group  string            `json:"group,omitempty"`
	Config json.RawMessage   `json:"config,omitempty"`
	Env    map[string]string `json:"env,omitempty"`
	// Ports names extra ports each instance gets beside http, rpc and
	// admin, e.g. "link" for a gateway's long-link listener: {link} in
	// its args and config, {link:NAME} in usage lines.
	Ports []string `json:"ports,omitempty"`

	bin      string // built binary
	identity string // who its instances are to the services they call: the Logicsvr's name, or the service's
}

const (
	kindLogicsvr = "logicsvr"
	kindMain     = "main"
)

var (
	serviceName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)
	portName    = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	digits      = regexp.MustCompile(`^[0-9]+$`)
)

// loadTopology reads and validates a topology file, filling in defaults
// (kind logicsvr, one replica).
func loadTopology(path string) (*topology, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t topology
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(t.Services) == 0 {
		return nil, fmt.Errorf("%s: no services", path)
	}
	seen := map[string]bool{}
	for i, s := range t.Services {
		where := fmt.Sprintf("%s: service %d (%s)", path, i+1, s.Name)
		switch {
		case !serviceName.MatchString(s.Name):
			return nil, fmt.Errorf("%s: name must be letters, digits, '_' and '-', starting with a letter", where)
		case seen[s.Name]:
			return nil, fmt.Errorf("%s: name used twice", where)
		case s.Package == "":
			return nil, fmt.Errorf("%s: no package", where)
		case s.Replicas < 0:
			return nil, fmt.Errorf("%s: negative replicas", where)
		case s.Group != "" && !serviceName.MatchString(s.Group) && !digits.MatchString(s.Group):
			return nil, fmt.Errorf("%s: group must be letters, digits, '_' and '-'", where)
		}
		seen[s.Name] = true
		for j, p := range s.Ports {
			switch {
			case !portName.MatchString(p):
				return nil, fmt.Errorf("%s: port name %q must be lower-case letters, digits and '_', starting with a letter", where, p)
			case slices.Contains(reservedPortNames, p):
				return nil, fmt.Errorf("%s: port name %q is taken by a built-in placeholder", where, p)
			case slices.Contains(s.Ports[:j], p):
				return nil, fmt.Errorf("%s: port %q named twice", where, p)
			}
		}
		if s.Replicas == 0 {
			s.Replicas = 1
		}
		switch s.Kind {
		case "", kindLogicsvr:
			s.Kind = kindLogicsvr
			if len(s.Serves) > 0 || s.Ready != "" {
				return nil, fmt.Errorf("%s: a Logicsvr says what it serves and when it is ready itself; drop serves and ready", where)
			}
		case kindMain:
			if len(s.Config) > 0 {
				return nil, fmt.Errorf("%s: config is for Logicsvrs; pass flags in args", where)
			}
		default:
			return nil, fmt.Errorf("%s: kind must be logicsvr or main, not %q", where, s.Kind)
		}
		if len(s.Config) > 0 {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(s.Config, &obj); err != nil {
				return nil, fmt.Errorf("%s: config must be an object: %w", where, err)
			}
		}
	}
	// Instance names share one namespace: state file, logs, {http:NAME}.
	owner := map[string]string{}
	for _, s := range t.Services {
		for _, n := range s.instanceNames() {
			if other, dup := owner[n]; dup {
				return nil, fmt.Errorf("%s: service %s: instance name %s is also an instance of service %s; rename one", path, s.Name, n, other)
			}
			owner[n] = s.Name
		}
	}
	return &t, nil
}

// instanceNames are the names of a service's instances: the service's
// own with one replica, NAME-1, NAME-2... with more.
func (s *topoService) instanceNames() []string {
	if s.Replicas <= 1 {
		return []string{s.Name}
	}
	names := make([]string, s.Replicas)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", s.Name, i+1)
	}
	return names
}
