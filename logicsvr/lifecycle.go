package logicsvr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"

	"github.com/svrkit/svrkit/svrkit/monitor"
)

// Start listens on the configured addresses and serves in the background.
// It returns once every listener accepts; the host is then ready.
func (h *Host) Start() error {
	h.mu.Lock()
	if h.started {
		h.mu.Unlock()
		return errors.New("logicsvr: already started")
	}
	h.started = true
	h.mu.Unlock()
	h.buildInfo = h.BuildInfo()
	h.startedAt = time.Now()
	sampleCtx, stopSampler := context.WithCancel(context.Background())
	h.stopSampler = stopSampler
	monitor.SampleProcess(sampleCtx, time.Second)
	h.metrics.setBuildInfo(h.buildInfo)

	var closers []func()
	fail := func(err error) error {
		for _, c := range closers {
			c()
		}
		return fmt.Errorf("logicsvr %s: %w", h.name, err)
	}
	adminLn, err := net.Listen("tcp", h.cfg.Admin)
	if err != nil {
		return fail(fmt.Errorf("admin: %w", err))
	}
	closers = append(closers, func() { adminLn.Close() })
	h.adminAddr = adminLn.Addr()
	var httpLn net.Listener
	// A Logicsvr of internal services only has nothing to serve on HTTP,
	// and so does not listen there at all.
	if h.cfg.HTTP != Off && (h.httpRoutes > 0 || h.cfg.HTTPDescribe || h.extraHTTP != nil) {
		if httpLn, err = net.Listen("tcp", h.cfg.HTTP); err != nil {
			return fail(fmt.Errorf("http: %w", err))
		}
		closers = append(closers, func() { httpLn.Close() })
		h.httpAddr = httpLn.Addr()
		httpLn = netutil.LimitListener(httpLn, h.cfg.MaxHTTPConns)
	}
	if h.rpc != nil {
		if err := h.rpc.Start(h.cfg.RPC); err != nil {
			return fail(fmt.Errorf("rpc: %w", err))
		}
		h.rpcAddr = h.rpc.Addr()
	}

	h.adminSrv = &http.Server{Handler: h.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
	go h.serve("admin", h.adminSrv, adminLn)
	if httpLn != nil {
		h.httpSrv = &http.Server{
			Handler:           h.httpHandler(),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       time.Duration(h.cfg.HTTPReadTimeout),
			IdleTimeout:       time.Duration(h.cfg.HTTPIdleTimeout),
			ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
			ConnState: func(c net.Conn, st http.ConnState) {
				if st == http.StateNew {
					h.newConns.Store(c, time.Now())
				} else {
					h.newConns.Delete(c)
				}
			},
		}
		go h.serve("http", h.httpSrv, httpLn)
	}
	h.ready.Store(true)
	h.metrics.ready.Set(1)
	h.log.Info("logicsvr ready", "logicsvr", h.name, "http", addrString(h.httpAddr),
		"rpc", addrString(h.rpcAddr), "admin", addrString(h.adminAddr), "services", len(h.services))
	return nil
}

func (h *Host) serve(what string, s *http.Server, ln net.Listener) {
	if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		h.failed <- fmt.Errorf("%s listener: %w", what, err)
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return Off
	}
	return a.String()
}

// HTTPAddr, RPCAddr and AdminAddr return the bound addresses after Start
// (nil for a disabled transport).
func (h *Host) HTTPAddr() net.Addr  { return h.httpAddr }
func (h *Host) RPCAddr() net.Addr   { return h.rpcAddr }
func (h *Host) AdminAddr() net.Addr { return h.adminAddr }

// Ready reports whether the host is serving and not draining; the admin
// endpoint /readyz answers it.
func (h *Host) Ready() bool { return h.ready.Load() }

// Failed delivers an error if a listener stops on its own.
func (h *Host) Failed() <-chan error { return h.failed }

// Run starts the host, serves until ctx ends or a listener fails, then
// shuts down gracefully.
func (h *Host) Run(ctx context.Context) error {
	if err := h.Start(); err != nil {
		return err
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-h.failed:
		h.log.Error("logicsvr listener failed; stopping", "err", err)
	}
	return errors.Join(err, h.Shutdown(context.Background()))
}
