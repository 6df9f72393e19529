// Package netloop runs a gnet engine the way svrkit's server runs its own,
// for other servers built on gnet beside it (the IM gateway's long links):
// one setting of the engine, and one way to learn the bound address, in
// one place.
package netloop

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"
)

// Run serves h on the TCP address addr with loops event loops (0: gnet's
// default) until the engine stops, as gnet.Run does. The engine ticks
// (OnTick runs), reuses the address as net.Listen does (a restart on a
// port with TIME_WAIT sockets binds), sets TCP_NODELAY, and logs gnet's
// warnings and errors to log.
func Run(h gnet.EventHandler, addr string, loops int, log *slog.Logger) error {
	return gnet.Run(h, "tcp://"+addr,
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(loops),
		gnet.WithTicker(true),
		gnet.WithReuseAddr(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLogger(logger{log}),
		gnet.WithLogLevel(logging.ErrorLevel),
	)
}

// Addr returns the address eng listens on (needed when the port was 0),
// found by duplicating the listener's descriptor; call it from OnBoot.
func Addr(eng gnet.Engine) (net.Addr, error) {
	fd, err := eng.Dup()
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "listener")
	defer f.Close()
	l, err := net.FileListener(f)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return l.Addr(), nil
}

// logger routes gnet's own logging to slog.
type logger struct{ l *slog.Logger }

func (g logger) Debugf(string, ...any) {}
func (g logger) Infof(string, ...any)  {}
func (g logger) Warnf(format string, args ...any) {
	g.l.Warn("gnet: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
}
func (g logger) Errorf(format string, args ...any) {
	g.l.Error("gnet: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
}
func (g logger) Fatalf(format string, args ...any) {
	g.l.Error("gnet: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
}
