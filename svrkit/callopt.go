package svrkit

// CallOption changes one call. Generated clients pass them through.
type CallOption func(*callOptions)

type callOptions struct {
	routingKey    string
	hasRoutingKey bool
	priority      uint8
	noRetry       bool
}

// WithRoutingKey chooses the endpoint by consistent hash of key instead of
// round robin, overriding the key the method's IDL routing field gives.
func WithRoutingKey(key string) CallOption {
	return func(o *callOptions) { o.routingKey, o.hasRoutingKey = key, true }
}

// WithPriority sets the call's business priority (higher is more
// important) over the method's and the inherited one. An overloaded server
// sheds low priorities first (see WithEntryPriority).
func WithPriority(p uint8) CallOption {
	return func(o *callOptions) { o.priority = p }
}

// WithoutRetry turns off retries for this call even if the method is
// idempotent.
func WithoutRetry() CallOption {
	return func(o *callOptions) { o.noRetry = true }
}
