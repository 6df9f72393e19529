package logicsvr

import (
	"log/slog"
)

// Option configures a Host.
type Option func(*hostOptions)

type hostOptions struct {
	logger   *slog.Logger
	infoOnly bool
}

// WithLogger sets the host's logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *hostOptions) { o.logger = l } }

// infoOnly builds a host that is only asked for its BuildInfo: its clients
// resolve nothing and fail every call, so that handlers can be constructed
// before any routing table exists (`svrkit up` asks each binary for its
// services before it writes the routing tables).
func infoOnly() Option { return func(o *hostOptions) { o.infoOnly = true } }
