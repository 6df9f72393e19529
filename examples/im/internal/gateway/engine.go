package gateway

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/panjf2000/gnet/v2"
)

// engineAddr finds the bound address (needed when the port was 0) by
// duplicating the listener's descriptor.
func engineAddr(eng gnet.Engine) (net.Addr, error) {
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

// gnetLogger routes gnet's own logging to slog.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(string, ...any) {}
func (g gnetLogger) Infof(string, ...any)  {}
func (g gnetLogger) Warnf(format string, args ...any) {
	g.l.Warn("gateway: gnet: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
}
func (g gnetLogger) Errorf(format string, args ...any) {
	g.l.Error("gateway: gnet: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
}
func (g gnetLogger) Fatalf(format string, args ...any) {
	g.l.Error("gateway: gnet: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
}
