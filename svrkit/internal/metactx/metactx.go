// Package metactx carries a call's incoming metadata in a context. It is
// internal so that only the framework's fronts (the binary server and the
// HTTP CGI front) can say what a caller sent: a handler or library outside
// the framework reads incoming metadata with svrkit.IncomingMetadata but
// cannot forge it for code further down the chain (the IM's session
// interceptor trusts it to carry the caller's token).
package metactx

import "context"

// IncomingKey is the context key of the incoming metadata, a
// map[string]string; svrkit's call context answers it without a
// context.WithValue per call.
type IncomingKey struct{}

// WithIncoming returns ctx carrying md as the incoming metadata.
func WithIncoming(ctx context.Context, md map[string]string) context.Context {
	return context.WithValue(ctx, IncomingKey{}, md)
}

// Incoming returns the incoming metadata of ctx, or nil.
func Incoming(ctx context.Context) map[string]string {
	md, _ := ctx.Value(IncomingKey{}).(map[string]string)
	return md
}
