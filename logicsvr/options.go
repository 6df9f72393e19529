package logicsvr

import (
	"log/slog"

	"github.com/svrkit/svrkit/svrkit"
)

// Option configures a Host. New and Main take them; the few knobs a
// Logicsvr's code (rather than its config file) decides are here.
type Option func(*hostOptions)

type hostOptions struct {
	logger       *slog.Logger
	infoOnly     bool
	interceptors []svrkit.UnaryServerInterceptor
	clientOpts   []svrkit.ClientOption
}

// WithLogger sets the host's logger (default slog.Default(); Main's is the
// one the config asks for).
func WithLogger(l *slog.Logger) Option { return func(o *hostOptions) { o.logger = l } }

// WithInterceptors wraps every call of the host's services in ics, the first
// outermost, as Host.Use does; Use's interceptors come after these.
func WithInterceptors(ics ...svrkit.UnaryServerInterceptor) Option {
	return func(o *hostOptions) { o.interceptors = append(o.interceptors, ics...) }
}

// WithClientOptions adds opts to every client Host.Client makes. They apply
// after the host's own (the routing table as resolver, then
// PropagateRequestID as the outermost interceptor), so
// svrkit.WithClientInterceptors adds interceptors inside PropagateRequestID
// and svrkit.WithResolver replaces the routing table, with a registry say.
func WithClientOptions(opts ...svrkit.ClientOption) Option {
	return func(o *hostOptions) { o.clientOpts = append(o.clientOpts, opts...) }
}

// infoOnly builds a host that is only asked for its BuildInfo: its clients
// resolve nothing and fail every call, so that handlers can be constructed
// before any routing table exists (`svrkit up` asks each binary for its
// services before it writes the routing tables).
func infoOnly() Option { return func(o *hostOptions) { o.infoOnly = true } }
