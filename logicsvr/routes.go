package logicsvr

import (
	"fmt"
	"slices"
	"time"

	"github.com/svrkit/svrkit/svrkit"
)

// routesReloadInterval is how often the host re-reads the file its routing
// table comes from.
const routesReloadInterval = time.Second

// newResolver returns the routing table of the services the host calls and
// what stops following it. The table is svrkit's: a routing file named by
// routes_file, or else the "routes" object of the config file itself, both
// re-read when they change; a config made in code has a table that never
// changes.
func newResolver(cfg Config) (svrkit.Resolver, func(), error) {
	var rt *svrkit.RouteTable
	var err error
	switch {
	case cfg.RoutesFile != "":
		rt, err = svrkit.LoadRouteTable(cfg.RoutesFile, routesReloadInterval)
	case cfg.path != "":
		rt, err = svrkit.LoadRouteTableFunc(cfg.path, routesReloadInterval, routesOfConfig)
	default:
		return staticRoutes(cfg.Routes), func() {}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("logicsvr: %w", err)
	}
	return rt, func() { _ = rt.Close() }, nil
}

// routesOfConfig reads the routing table out of a config file. A config
// that no longer parses as a whole is refused, so an edit with a typo
// anywhere keeps the last good table.
func routesOfConfig(raw []byte) (map[string][]string, error) {
	c, err := parseConfig(raw)
	return c.Routes, err
}

// staticRoutes is the routing table of a config made in code. A service
// missing from it is an error, as in svrkit.RouteTable, so that a Logicsvr
// whose config lacks a dependency fails at start, when its handlers create
// their clients, not at its first call.
type staticRoutes map[string][]string

// Resolve implements svrkit.Resolver.
func (r staticRoutes) Resolve(service string) ([]string, error) {
	addrs, ok := r[service]
	if !ok {
		return nil, svrkit.Errorf(svrkit.NotFound, "service %s is not in the config's routes", service)
	}
	return slices.Clone(addrs), nil
}

// Watch implements svrkit.Resolver: the table never changes.
func (staticRoutes) Watch(string, func([]string)) func() { return func() {} }
