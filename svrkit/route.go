package svrkit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/svrkit/svrkit/svrkit/internal/beat"
)

// Resolver finds the endpoints of a service by name. RouteTable reads them
// from a file; a registry (etcd, Consul, DNS) plugs in by implementing these
// two methods.
type Resolver interface {
	// Resolve returns the service's current endpoints ("host:port").
	Resolve(service string) ([]string, error)
	// Watch calls notify with the service's endpoints each time they
	// change, until stop is called.
	Watch(service string, notify func(addrs []string)) (stop func())
}

// RouteTable is a Resolver backed by a routing file: a static table of
// which endpoints serve each service, re-read when the file changes so
// endpoints can be added and removed without restarting anything.
//
// The file is JSON:
//
//	{
//	  "services": {
//	    "im.MessageStore": ["127.0.0.1:7101", "127.0.0.1:7102"],
//	    "hello.Greeter":   ["127.0.0.1:8080"]
//	  }
//	}
//
// Keys are fully-qualified protobuf service names. Whether a call is spread
// round robin or routed by key hash is the method's business (its IDL
// routing key), not the table's. A file that fails to parse on reload is
// logged and ignored: the last good table stays in force, so a bad edit
// never takes a running service's routes away.
//
// A table can follow a file of another format too (LoadRouteTableFunc):
// the logicsvr host follows the "routes" object of its config file so.
type RouteTable struct {
	path     string
	interval time.Duration
	parse    func([]byte) (map[string][]string, error)
	log      *slog.Logger

	mu       sync.Mutex
	services map[string][]string
	raw      []byte
	modTime  time.Time
	lastErr  error
	watchers map[string]map[*routeWatch]struct{}

	quit chan struct{}
	done chan struct{}
}

type routeWatch struct{ notify func([]string) }

// LoadRouteTable reads the routing file at path and re-reads it every
// interval (1s if zero) until Close.
func LoadRouteTable(path string, interval time.Duration) (*RouteTable, error) {
	return LoadRouteTableFunc(path, interval, parseRoutes)
}

// LoadRouteTableFunc is LoadRouteTable for a file of another format: parse
// returns the table (service name to endpoints) the file's content holds.
// It is called with the content read at start and again each time the
// content changes; an error at start fails the load, one on a reload keeps
// the last good table. Reload errors are logged with slog.Default().
func LoadRouteTableFunc(path string, interval time.Duration, parse func(raw []byte) (map[string][]string, error)) (*RouteTable, error) {
	if interval <= 0 {
		interval = time.Second
	}
	t := &RouteTable{
		path: path, interval: interval, parse: parse, log: slog.Default(),
		watchers: map[string]map[*routeWatch]struct{}{},
		quit:     make(chan struct{}), done: make(chan struct{}),
	}
	raw, mod, err := readRouteFile(path)
	if err != nil {
		return nil, err
	}
	svcs, err := parse(raw)
	if err != nil {
		return nil, fmt.Errorf("svrkit: routing file %s: %w", path, err)
	}
	t.services, t.raw, t.modTime = svcs, raw, mod
	go t.watchFile()
	return t, nil
}

// parseRoutes parses the routing file format (see RouteTable).
func parseRoutes(raw []byte) (map[string][]string, error) {
	var f struct {
		Services map[string][]string `json:"services"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if f.Services == nil {
		return nil, fmt.Errorf(`no "services" object`)
	}
	for name, addrs := range f.Services {
		for _, a := range addrs {
			if a == "" {
				return nil, fmt.Errorf("service %s: empty endpoint", name)
			}
		}
	}
	return f.Services, nil
}

func readRouteFile(path string) ([]byte, time.Time, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("svrkit: routing file: %w", err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("svrkit: routing file: %w", err)
	}
	return raw, st.ModTime(), nil
}

// Resolve implements Resolver.
func (t *RouteTable) Resolve(service string) ([]string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	addrs, ok := t.services[service]
	if !ok {
		return nil, Errorf(NotFound, "service %s is not in the routes of %s", service, t.path)
	}
	return slices.Clone(addrs), nil
}

// Watch implements Resolver.
func (t *RouteTable) Watch(service string, notify func([]string)) func() {
	w := &routeWatch{notify: notify}
	t.mu.Lock()
	if t.watchers[service] == nil {
		t.watchers[service] = map[*routeWatch]struct{}{}
	}
	t.watchers[service][w] = struct{}{}
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		delete(t.watchers[service], w)
		t.mu.Unlock()
	}
}

// Services returns a copy of the table.
func (t *RouteTable) Services() map[string][]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string][]string, len(t.services))
	for k, v := range t.services {
		out[k] = slices.Clone(v)
	}
	return out
}

// LastError returns the error of the last reload, nil if it succeeded.
func (t *RouteTable) LastError() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastErr
}

// Close stops watching the file.
func (t *RouteTable) Close() error {
	select {
	case <-t.quit:
	default:
		close(t.quit)
	}
	<-t.done
	return nil
}

func (t *RouteTable) watchFile() {
	defer close(t.done)
	tick := time.NewTimer(beat.Until(t.interval)) // on the process's beat
	defer tick.Stop()
	for {
		select {
		case <-t.quit:
			return
		case <-tick.C:
		}
		t.reload()
		tick.Reset(beat.Until(t.interval))
	}
}

// reload re-reads the file if its bytes changed and tells the watchers of
// each service whose endpoints changed.
func (t *RouteTable) reload() {
	raw, mod, err := readRouteFile(t.path)
	t.mu.Lock()
	if err == nil && bytes.Equal(raw, t.raw) {
		t.modTime = mod
		t.mu.Unlock()
		return
	}
	var svcs map[string][]string
	if err == nil {
		svcs, err = t.parse(raw)
	}
	if err != nil {
		changed := t.lastErr == nil || t.lastErr.Error() != err.Error()
		t.lastErr = err
		t.mu.Unlock()
		if changed {
			t.log.Error("svrkit: routing file not reloaded; keeping the last good table", "path", t.path, "err", err)
		}
		return
	}
	old := t.services
	t.services, t.raw, t.modTime, t.lastErr = svcs, raw, mod, nil
	type note struct {
		fn    func([]string)
		addrs []string
	}
	var notes []note
	for svc, ws := range t.watchers {
		if slices.Equal(old[svc], svcs[svc]) {
			continue
		}
		for w := range ws {
			notes = append(notes, note{w.notify, slices.Clone(svcs[svc])})
		}
	}
	t.mu.Unlock()
	for _, n := range notes {
		n.fn(n.addrs)
	}
}
