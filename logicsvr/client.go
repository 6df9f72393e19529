package logicsvr

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor"
)

// Client returns a client of the named service (a protobuf full name, e.g.
// "im.AccountStore"), with endpoints from the config's routing table and
// kept up to date when it changes. The client sends the request id of the
// call being handled with every call (PropagateRequestID) and has the
// options of WithClientOptions. Clients are made once per service and
// closed by Shutdown; it is an error to ask for a service the routing table
// does not list.
func (h *Host) Client(service string) (svrkit.Invoker, error) {
	if h.infoOnly {
		return noRoutes(service), nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.clients[service]; c != nil {
		return c, nil
	}
	opts := append([]svrkit.ClientOption{svrkit.WithResolver(h.resolver),
		svrkit.WithClientInterceptors(monitor.ClientInterceptor, PropagateRequestID)}, h.clientOpts...)
	c, err := svrkit.NewClient(service, opts...)
	if err != nil {
		return nil, fmt.Errorf("logicsvr %s: client of %s: %w", h.name, service, err)
	}
	h.clients[service] = c
	return c, nil
}

// noRoutes is the invoker of an info-only host.
type noRoutes string

func (n noRoutes) Invoke(context.Context, *svrkit.MethodDesc, proto.Message, proto.Message, ...svrkit.CallOption) error {
	return svrkit.Errorf(svrkit.Unavailable, "no routes to %s: the host only describes itself", string(n))
}
