package logicsvr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/svrkit/svrkit/svrkit"
)

// Shutdown stops the host gracefully:
//
//  1. readiness turns false, and every HTTP response from now on carries
//     Connection: close, so keep-alive clients reconnect (elsewhere, once
//     the front has noticed);
//  2. the host goes on serving for the configured drain delay;
//  3. the HTTP listener closes and idle connections with it (and, after
//     silentConnGrace, connections that never sent a request); new RPC calls
//     are answered Unavailable and, once the running ones have answered, the
//     RPC server sends goaway (see drainRPC);
//  4. calls in flight on both transports finish, bounded by the drain
//     timeout (or ctx, if it ends first); those still running are then
//     canceled and their connections closed;
//  5. clients and the admin endpoints close last, so /metrics and /readyz
//     are there to watch the drain.
//
// It returns an error if the drain did not finish in time. Calling it
// again waits for the first call and returns its result.
func (h *Host) Shutdown(ctx context.Context) error {
	h.stopOnce.Do(func() {
		defer close(h.stopped)
		h.stopErr = h.shutdown(ctx)
	})
	<-h.stopped
	return h.stopErr
}

func (h *Host) shutdown(ctx context.Context) error {
	h.ready.Store(false)
	h.metrics.ready.Set(0)
	h.draining.Store(true)
	h.log.Info("logicsvr draining", "logicsvr", h.name, "delay", time.Duration(h.cfg.DrainDelay),
		"timeout", time.Duration(h.cfg.DrainTimeout))
	if d := time.Duration(h.cfg.DrainDelay); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	start := time.Now()
	drainCtx, cancel := context.WithTimeout(ctx, time.Duration(h.cfg.DrainTimeout))
	defer cancel()
	var wg sync.WaitGroup
	var httpErr, rpcErr error
	if h.httpSrv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stopReaping := h.reapSilentConns()
			defer stopReaping()
			if err := h.httpSrv.Shutdown(drainCtx); err != nil {
				_ = h.httpSrv.Close()
				httpErr = fmt.Errorf("http: %w", err)
			}
			h.log.Info("logicsvr http drained", "logicsvr", h.name, "elapsed", time.Since(start))
		}()
	}
	if h.rpc != nil && h.rpcAddr != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.drainRPC(drainCtx); err != nil {
				rpcErr = fmt.Errorf("rpc: %w", err)
			}
			h.log.Info("logicsvr rpc drained", "logicsvr", h.name, "elapsed", time.Since(start))
		}()
	}
	wg.Wait()

	h.mu.Lock()
	clients := h.clients
	h.clients = map[string]*svrkit.Client{}
	h.mu.Unlock()
	for _, c := range clients {
		_ = c.Close()
	}
	if h.closeResolver != nil {
		h.closeResolver()
	}
	h.mu.Lock()
	hooks := h.onShutdown
	h.onShutdown = nil
	h.mu.Unlock()
	var hookErr error
	for i := len(hooks) - 1; i >= 0; i-- {
		if err := hooks[i](ctx); err != nil {
			h.log.Error("logicsvr shutdown hook failed", "logicsvr", h.name, "err", err)
			hookErr = errors.Join(hookErr, err)
		}
	}
	err := errors.Join(httpErr, rpcErr)
	if err != nil {
		h.log.Error("logicsvr drain did not finish in time; remaining calls were canceled",
			"logicsvr", h.name, "err", err, "elapsed", time.Since(start))
		err = fmt.Errorf("logicsvr %s: drain: %w", h.name, err)
	} else {
		h.log.Info("logicsvr stopped", "logicsvr", h.name, "drain", time.Since(start))
	}
	if h.adminSrv != nil {
		_ = h.adminSrv.Close()
	}
	if h.stopSampler != nil {
		h.stopSampler()
	}
	if hookErr != nil {
		err = errors.Join(err, fmt.Errorf("logicsvr %s: shutdown: %w", h.name, hookErr))
	}
	return err
}

// silentConnGrace is how long a connection accepted during the drain may
// stay without sending a request before it is closed.
const silentConnGrace = 500 * time.Millisecond

// reapSilentConns closes, while http.Server.Shutdown waits, connections that
// were opened but never carried a request. Shutdown leaves such connections
// (StateNew) alone for five seconds, and HTTP clients open them routinely:
// Go's transport dials a spare connection when a request waits and keeps it
// unused if another frees up first. Without this, one such connection holds
// the drain for five seconds.
func (h *Host) reapSilentConns() (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			h.newConns.Range(func(k, v any) bool {
				if time.Since(v.(time.Time)) >= silentConnGrace {
					_ = k.(net.Conn).Close()
					h.newConns.Delete(k)
				}
				return true
			})
		}
	}()
	return func() { close(done); <-finished }
}

// drainRPC shuts the RPC server down without losing the responses of calls
// that ran: the host first refuses new calls (Unavailable, before they
// run), waits for the running ones to finish, then lets the server send
// goaway and close. svrkit.Server.Shutdown writes the responses of answered
// calls out before it stops its engine, so nothing more is needed here.
func (h *Host) drainRPC(ctx context.Context) error {
	h.rpcDraining.Store(true)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for h.rpcInflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return h.rpc.Shutdown(ctx)
		case <-tick.C:
		}
	}
	return h.rpc.Shutdown(ctx)
}
