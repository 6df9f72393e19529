package svrkit

import (
	"context"

	"github.com/svrkit/svrkit/svrkit/internal/metactx"
)

// Metadata is a call's key/value side channel (request ids, auth tokens,
// trace ids), carried in the frame's metadata section. Keys are lower-case by
// convention. On the wire a key may repeat; decoded into Metadata the last
// value wins.
type Metadata map[string]string

type outgoingKey struct{}

// IncomingMetadata returns the metadata the caller sent with the call being
// handled, or nil. Only the framework's servers and HTTP front set it, so
// what it returns came from the caller, not from code along the way.
func IncomingMetadata(ctx context.Context) Metadata {
	return Metadata(metactx.Incoming(ctx))
}

// OutgoingMetadata returns the metadata calls made with ctx will send.
func OutgoingMetadata(ctx context.Context) Metadata {
	md, _ := ctx.Value(outgoingKey{}).(Metadata)
	return md
}

// WithOutgoingMetadata returns ctx whose calls send md in addition to any
// metadata already set on ctx (md's values win). Incoming metadata is not
// forwarded automatically: a handler chooses what flows on, typically with an
// interceptor that copies the request id.
func WithOutgoingMetadata(ctx context.Context, md Metadata) context.Context {
	if prev := OutgoingMetadata(ctx); len(prev) > 0 {
		merged := make(Metadata, len(prev)+len(md))
		for k, v := range prev {
			merged[k] = v
		}
		for k, v := range md {
			merged[k] = v
		}
		md = merged
	}
	return context.WithValue(ctx, outgoingKey{}, md)
}
