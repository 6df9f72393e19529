package logicsvr

import (
	"bytes"
	"context"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/svrkit/svrkit/svrkit"
)

// configRoutes is the svrkit.Resolver over the "routes" object of a config
// file. It re-reads the file every interval and tells watchers of services
// whose endpoints changed; a file that no longer parses is logged and
// ignored, keeping the last good table, as svrkit.RouteTable does.
type configRoutes struct {
	path string
	log  *slog.Logger

	mu       sync.Mutex
	routes   map[string][]string
	raw      []byte
	watchers map[string]map[*func([]string)]struct{}

	stop context.CancelFunc
	done chan struct{}
}

// newConfigRoutes serves routes, parsed from raw, the content of the file
// at path ("" for a config not read from a file, which never changes).
func newConfigRoutes(path string, raw []byte, routes map[string][]string, log *slog.Logger, interval time.Duration) *configRoutes {
	r := &configRoutes{
		path: path, log: log,
		routes:   routes,
		raw:      raw,
		watchers: map[string]map[*func([]string)]struct{}{},
		done:     make(chan struct{}),
	}
	if path == "" {
		close(r.done)
		r.stop = func() {}
		return r
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go r.watch(ctx, interval)
	return r
}

// Resolve implements svrkit.Resolver. A service missing from the table is
// an error, so that a Logicsvr whose config lacks a dependency fails at
// start, when its handlers create their clients, not at its first call.
func (r *configRoutes) Resolve(service string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	addrs, ok := r.routes[service]
	if !ok {
		where := "the config's routes"
		if r.path != "" {
			where = "routes of " + r.path
		}
		return nil, svrkit.Errorf(svrkit.NotFound, "service %s is not in %s", service, where)
	}
	return slices.Clone(addrs), nil
}

// Watch implements svrkit.Resolver.
func (r *configRoutes) Watch(service string, notify func([]string)) func() {
	p := &notify
	r.mu.Lock()
	if r.watchers[service] == nil {
		r.watchers[service] = map[*func([]string)]struct{}{}
	}
	r.watchers[service][p] = struct{}{}
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.watchers[service], p)
		r.mu.Unlock()
	}
}

func (r *configRoutes) close() {
	r.stop()
	<-r.done
}

func (r *configRoutes) watch(ctx context.Context, interval time.Duration) {
	defer close(r.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		raw, err := os.ReadFile(r.path)
		if err == nil && bytes.Equal(raw, r.raw) {
			continue
		}
		var c Config
		if err == nil {
			c, err = parseConfig(raw)
		}
		if err != nil {
			if err.Error() != lastErr {
				r.log.Error("logicsvr: routes not reloaded; keeping the last good table", "path", r.path, "err", err)
				lastErr = err.Error()
			}
			continue
		}
		lastErr = ""
		r.raw = raw
		r.update(c.Routes)
	}
}

func (r *configRoutes) update(next map[string][]string) {
	r.mu.Lock()
	old := r.routes
	r.routes = next
	var notes []func()
	for svc, ws := range r.watchers {
		if slices.Equal(old[svc], next[svc]) {
			continue
		}
		addrs := slices.Clone(next[svc])
		for w := range ws {
			notes = append(notes, func() { (*w)(addrs) })
		}
	}
	changed := !maps.EqualFunc(old, next, slices.Equal)
	r.mu.Unlock()
	if changed {
		r.log.Info("logicsvr: routes reloaded", "path", r.path, "services", len(next))
	}
	for _, n := range notes {
		n()
	}
}
