package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/svrkit/svrkit/tools/svrkit/upstate"
)

// plan asks each Logicsvr binary what it serves, makes the instances,
// reserves their ports and returns the routing table of the whole
// topology: each protobuf service's RPC addresses.
func (u *up) plan(topo *topology) (map[string][]string, error) {
	routes := map[string][]string{}
	for _, s := range topo.Services {
		s.identity = s.Name
		if s.Kind == kindLogicsvr {
			logicsvr, serves, err := u.askServes(s)
			if err != nil {
				return nil, err
			}
			s.Serves, s.identity = serves, logicsvr
		}
		for _, name := range s.instanceNames() {
			u.instances = append(u.instances, &instance{svc: s, name: name, state: upstate.Starting})
		}
	}
	n := 0
	for _, in := range u.instances {
		n += 3 + len(in.svc.Ports)
	}
	ports, err := freePorts(n)
	if err != nil {
		return nil, err
	}
	for _, in := range u.instances {
		in.http, in.rpc, in.admin, ports = ports[0], ports[1], ports[2], ports[3:]
		if len(in.svc.Ports) > 0 {
			in.ports = map[string]string{}
			for _, p := range in.svc.Ports {
				in.ports[p], ports = ports[0], ports[1:]
			}
		}
		for _, svc := range in.svc.Serves {
			if g := in.svc.Group; g != "" {
				svc += "/" + g // a shard group's (see upHelp)
			}
			routes[svc] = append(routes[svc], in.rpc)
		}
	}
	return routes, nil
}

// askServes runs a Logicsvr binary with -buildinfo, which prints what it
// serves without starting.
func (u *up) askServes(s *topoService) (logicsvr string, serves []string, err error) {
	out, err := exec.CommandContext(u.e.ctx, s.bin, "-buildinfo").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", nil, fmt.Errorf("%s -buildinfo: %v\n%s", s.Name, err, ee.Stderr)
		}
		return "", nil, fmt.Errorf("%s -buildinfo: %v", s.Name, err)
	}
	var bi struct {
		Logicsvr string
		Services []struct{ Name string }
	}
	if err := json.Unmarshal(out, &bi); err != nil || bi.Logicsvr == "" {
		return "", nil, fmt.Errorf("%s: %s is not a Logicsvr (its -buildinfo printed %.200q); set \"kind\": \"main\"", s.Name, s.Package, out)
	}
	for _, svc := range bi.Services {
		serves = append(serves, svc.Name)
	}
	return bi.Logicsvr, serves, nil
}

// freePorts reserves n distinct free loopback ports. They are released
// before the services bind them; another process could take one in between,
// which the service then reports as a failed listen.
func freePorts(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	var addrs []string
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// writeConfigs writes the routing table and each Logicsvr instance's
// config file.
func (u *up) writeConfigs(routes map[string][]string) error {
	b, err := json.MarshalIndent(map[string]any{"services": routes}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(u.routesPath(), append(b, '\n'), 0o644); err != nil {
		return err
	}
	for _, in := range u.instances {
		if in.svc.Kind != kindLogicsvr {
			continue
		}
		cfg := map[string]any{}
		if len(in.svc.Config) > 0 {
			if err := json.Unmarshal(in.svc.Config, &cfg); err != nil {
				return err
			}
			cfg = u.expandJSON(in, cfg).(map[string]any)
		}
		cfg["http"], cfg["rpc"], cfg["admin"], cfg["routes"] = in.http, in.rpc, in.admin, routes
		if _, set := cfg["drain_timeout"]; !set {
			cfg["drain_timeout"] = u.stopTimeout.String()
		}
		// A development run on this machine, behind service
		// authentication (see credentials.go); the topology may say
		// otherwise.
		if _, set := cfg["dev"]; !set {
			cfg["dev"] = true
		}
		if _, set := cfg["auth"]; !set {
			cfg["auth"] = map[string]any{"key_file": u.keyPath(in), "keyring_file": u.keyring}
		}
		b, err := json.MarshalIndent(cfg, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(u.configPath(in), append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// routesPath is the routing table of the whole topology, {routes}.
func (u *up) routesPath() string { return filepath.Join(u.work, "routes.json") }

// configPath is a Logicsvr instance's config file.
func (u *up) configPath(in *instance) string { return filepath.Join(u.work, in.name+".json") }
