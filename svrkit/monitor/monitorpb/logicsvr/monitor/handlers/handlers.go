// Package handlers implements the monitor Logicsvr (idl/svrkit/monitor.proto):
// the monitor center of package github.com/svrkit/svrkit/svrkit/monitor/center,
// served over svrkit RPC (MonitorIngest for the agents, MonitorQuery for
// programs and the dashboard's CGIs) with its dashboard page on an HTTP
// listener of its own. NewMonitorIngest and NewMonitorQuery are the
// constructors its generated main calls; both serve one center per host.
//
// Its settings are the config's "app" object (AppConfig):
//
//	{"app": {"dir": "{data}/monitor", "dashboard": "127.0.0.1:7480",
//	         "webhook": "http://127.0.0.1:9000/alerts",
//	         "rules": [{"series": "svrkit.server.errors{method=\"/im.Send/SendText\",code=\"internal\"}",
//	                    "rule": "sum over 1m > 10"}]}}
package handlers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit/monitor/center"
	"github.com/svrkit/svrkit/svrkit/monitor/monitorpb"
)

// AppConfig is the monitor Logicsvr's "app" config.
type AppConfig struct {
	// Dir holds the center's database. Required.
	Dir string `json:"dir"`
	// Dashboard is the address the dashboard page listens on (default
	// "127.0.0.1:0": a free port, logged and written to Dir/dashboard.url).
	// "off" serves no page.
	Dashboard string `json:"dashboard,omitempty"`
	// Webhook receives alert notifications (JSON POST), if set.
	Webhook string `json:"webhook,omitempty"`
	// Rules are alert rules beyond those declared with the points.
	Rules []center.RuleConfig `json:"rules,omitempty"`
	// EvalInterval is how often rules run (default 10s); MaxGap the
	// longest silence a region's increase is counted across (default 10s).
	EvalInterval logicsvr.Duration `json:"eval_interval,omitempty"`
	MaxGap       logicsvr.Duration `json:"max_gap,omitempty"`
	// RetainSeconds, RetainMinutes and RetainHours override the center's
	// retention of each resolution.
	RetainSeconds logicsvr.Duration `json:"retain_seconds,omitempty"`
	RetainMinutes logicsvr.Duration `json:"retain_minutes,omitempty"`
	RetainHours   logicsvr.Duration `json:"retain_hours,omitempty"`
}

// DashboardURLFile is the file in AppConfig.Dir where the center writes
// its dashboard's URL once it listens.
const DashboardURLFile = "dashboard.url"

var (
	mu      sync.Mutex
	centers = map[*logicsvr.Host]*center.Center{}
)

// centerOf opens the host's center once.
func centerOf(h *logicsvr.Host) (*center.Center, error) {
	mu.Lock()
	defer mu.Unlock()
	if c := centers[h]; c != nil || h.InfoOnly() {
		return c, nil
	}
	var app AppConfig
	if err := h.AppConfig(&app); err != nil {
		return nil, err
	}
	if app.Dir == "" {
		return nil, errors.New(`monitor: the config's "app" object needs "dir", where the center keeps its data`)
	}
	ret := center.DefaultRetention
	for _, o := range []struct {
		v   logicsvr.Duration
		dst *time.Duration
	}{{app.RetainSeconds, &ret.Raw}, {app.RetainMinutes, &ret.Minute}, {app.RetainHours, &ret.Hour}} {
		if o.v > 0 {
			*o.dst = time.Duration(o.v)
		}
	}
	c, err := center.Open(center.Config{
		Dir: app.Dir, Retention: ret, Rules: app.Rules, Webhook: app.Webhook,
		EvalInterval: time.Duration(app.EvalInterval), MaxGap: time.Duration(app.MaxGap), Logger: h.Logger(),
	})
	if err != nil {
		return nil, err
	}
	stop, err := serveDashboard(h, c, app)
	if err != nil {
		c.Close()
		return nil, err
	}
	h.OnShutdown(func(ctx context.Context) error {
		stop(ctx)
		mu.Lock()
		delete(centers, h)
		mu.Unlock()
		return c.Close()
	})
	centers[h] = c
	return c, nil
}

// httpMounter is what a host offers if it can serve extra HTTP routes
// beside its CGIs; the dashboard is then also at /monitor/ there.
type httpMounter interface {
	HandleHTTP(pattern string, handler http.Handler)
}

func serveDashboard(h *logicsvr.Host, c *center.Center, app AppConfig) (stop func(context.Context), err error) {
	page := c.Handler()
	if m, ok := any(h).(httpMounter); ok {
		m.HandleHTTP("/monitor/", http.StripPrefix("/monitor", page))
	}
	if app.Dashboard == logicsvr.Off {
		return func(context.Context) {}, nil
	}
	addr := app.Dashboard
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("monitor: dashboard: %w", err)
	}
	url := "http://" + ln.Addr().String() + "/"
	if err := os.WriteFile(filepath.Join(app.Dir, DashboardURLFile), []byte(url+"\n"), 0o644); err != nil {
		ln.Close()
		return nil, fmt.Errorf("monitor: dashboard: %w", err)
	}
	srv := &http.Server{Handler: page, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.Logger().Error("monitor dashboard stopped", "err", err)
		}
	}()
	h.Logger().Info("monitor dashboard", "url", url)
	return func(ctx context.Context) { _ = srv.Shutdown(ctx) }, nil
}

// NewMonitorIngest returns the agents' side of the center.
func NewMonitorIngest(h *logicsvr.Host) (monitorpb.MonitorIngestServer, error) {
	c, err := centerOf(h)
	if err != nil || c == nil {
		return monitorpb.UnimplementedMonitorIngestServer{}, err
	}
	return c.IngestServer(), nil
}

// NewMonitorQuery returns the query side of the center.
func NewMonitorQuery(h *logicsvr.Host) (monitorpb.MonitorQueryServer, error) {
	c, err := centerOf(h)
	if err != nil || c == nil {
		return monitorpb.UnimplementedMonitorQueryServer{}, err
	}
	return c.QueryServer(), nil
}
