package logicsvr

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/pprof"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Version is the Logicsvr's version as reported by /buildinfo and the
// logicsvr_build_info metric. Set it at link time:
//
//	go build -ldflags "-X github.com/svrkit/svrkit/logicsvr.Version=v1.4.2" ./logicsvr/account
//
// Left empty, the main module's version from the binary's build info is
// used ("(devel)" for a build inside the module).
var Version string

// BuildInfo says what a Logicsvr binary is: its version and exactly which
// services and CGIs are linked into it. The admin endpoint /buildinfo
// serves it, and `<binary> -buildinfo` prints it without starting.
type BuildInfo struct {
	Logicsvr  string        `json:"logicsvr"`
	Version   string        `json:"version"`
	GoVersion string        `json:"go_version"`
	Path      string        `json:"path,omitempty"` // the main package
	Revision  string        `json:"revision,omitempty"`
	Modified  bool          `json:"modified,omitempty"`
	Services  []ServiceInfo `json:"services"`
}

// ServiceInfo is one service linked into a Logicsvr.
type ServiceInfo struct {
	Name    string       `json:"name"`
	Methods []MethodInfo `json:"methods"`
}

// MethodInfo is one method (CGI) of a service, with its effective limits.
type MethodInfo struct {
	Name          string   `json:"name"` // "/pkg.Service/Method"
	CmdID         uint32   `json:"cmdid"`
	CGIPath       string   `json:"cgi_path,omitempty"`
	Timeout       Duration `json:"timeout,omitempty"`
	MaxConcurrent int      `json:"max_concurrent,omitempty"`
	Idempotent    bool     `json:"idempotent,omitempty"`
}

// BuildInfo returns what the binary is and serves.
func (h *Host) BuildInfo() *BuildInfo {
	bi := &BuildInfo{Logicsvr: h.name, Version: Version, GoVersion: runtime.Version(), Services: []ServiceInfo{}}
	if info, ok := debug.ReadBuildInfo(); ok {
		bi.Path = info.Path
		if bi.Version == "" {
			bi.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				bi.Revision = s.Value
			case "vcs.modified":
				bi.Modified = s.Value == "true"
			}
		}
	}
	for _, sd := range h.Services() {
		si := ServiceInfo{Name: sd.Name}
		for i := range sd.Methods {
			m := &sd.Methods[i]
			mi := MethodInfo{Name: m.FullName, CmdID: m.CmdID, CGIPath: m.CGIPath,
				Timeout: Duration(m.Timeout), Idempotent: m.Idempotent}
			if st := h.state(m); st != nil {
				mi.MaxConcurrent = int(st.limit)
			}
			si.Methods = append(si.Methods, mi)
		}
		bi.Services = append(bi.Services, si)
	}
	return bi
}

// adminHandler serves the admin port. It is a separate listener, usually
// bound to a private address, so that probes, scrapes and profiles never
// queue behind CGI traffic and are never exposed with it.
//
//	/healthz       liveness: 200 while the process serves at all
//	/readyz        readiness: 200 when serving, 503 while starting or draining
//	/metrics       Prometheus metrics: per-method calls, errors by code,
//	               latency histograms, panics, in-flight; Go runtime, process
//	/buildinfo     BuildInfo as JSON
//	/debug/pprof/  the runtime profiles
func (h *Host) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ready := h.Ready()
		state := "ready"
		status := http.StatusOK
		switch {
		case h.draining.Load():
			state, status = "draining", http.StatusServiceUnavailable
		case !ready:
			state, status = "starting", http.StatusServiceUnavailable
		}
		writeJSON(w, status, map[string]any{"ready": ready, "state": state, "logicsvr": h.name})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(h.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /buildinfo", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, h.buildInfo)
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "logicsvr %s %s, up since %s\n\n/healthz\n/readyz\n/metrics\n/buildinfo\n/debug/pprof/\n",
			h.name, h.buildInfo.Version, h.startedAt.Format(time.RFC3339))
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
