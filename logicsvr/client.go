package logicsvr

import (
	"context"
	"fmt"
	"strconv"

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
// does not list. A service the config shards (Config.Shards) gets a
// svrkit.ShardedInvoker over a client per shard group.
func (h *Host) Client(service string) (svrkit.Invoker, error) {
	if h.infoOnly {
		return noRoutes(service), nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if shards, ok := h.cfg.Shards[service]; ok {
		return h.shardedLocked(service, shards)
	}
	return h.clientLocked(service)
}

// shardedLocked returns the invoker of a sharded service (Config.Shards):
// one client per shard group, each following the routing table.
func (h *Host) shardedLocked(service string, shards []ShardRange) (svrkit.Invoker, error) {
	if inv := h.sharded[service]; inv != nil {
		return inv, nil
	}
	var ss []svrkit.Shard
	for _, sh := range shards {
		from, err := strconv.ParseUint(sh.From, 16, 64)
		if err != nil {
			return nil, fmt.Errorf("logicsvr %s: shard %s of %s: %w", h.name, sh.Group, service, err)
		}
		c, err := h.clientLocked(sh.Group)
		if err != nil {
			return nil, err
		}
		ss = append(ss, svrkit.Shard{Name: sh.Group, From: from, Invoker: c})
	}
	inv, err := svrkit.NewShardedInvoker(ss)
	if err != nil {
		return nil, fmt.Errorf("logicsvr %s: shards of %s: %w", h.name, service, err)
	}
	h.sharded[service] = inv
	return inv, nil
}

func (h *Host) clientLocked(service string) (*svrkit.Client, error) {
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

// EndpointClient returns a client of service that calls only the endpoint
// addr ("host:port"), for calls that must reach one particular instance:
// a push to the gateway that holds a connection, a lease renewed on every
// replica in turn. It proves the Logicsvr's identity and carries the
// request id as Client's clients do; it is made once per endpoint and
// closed by Shutdown. A call to an endpoint that is down fails with
// Unavailable: there is no other endpoint to try.
func (h *Host) EndpointClient(service, addr string) (svrkit.Invoker, error) {
	if h.infoOnly {
		return noRoutes(service), nil
	}
	key := service + "@" + addr
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.clients[key]; c != nil {
		return c, nil
	}
	opts := append([]svrkit.ClientOption{svrkit.WithClientInterceptors(monitor.ClientInterceptor, PropagateRequestID)}, h.clientOpts...)
	c, err := svrkit.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("logicsvr %s: client of %s at %s: %w", h.name, service, addr, err)
	}
	h.clients[key] = c
	return c, nil
}

// Endpoints returns the endpoints the routing table lists for service now
// (it follows the table as it changes); it is an error when the table does
// not list the service.
func (h *Host) Endpoints(service string) ([]string, error) {
	if h.infoOnly {
		return nil, nil
	}
	addrs, err := h.resolver.Resolve(service)
	if err != nil {
		return nil, fmt.Errorf("logicsvr %s: endpoints of %s: %w", h.name, service, err)
	}
	return addrs, nil
}

// noRoutes is the invoker of an info-only host.
type noRoutes string

func (n noRoutes) Invoke(context.Context, *svrkit.MethodDesc, proto.Message, proto.Message, ...svrkit.CallOption) error {
	return svrkit.Errorf(svrkit.Unavailable, "no routes to %s: the host only describes itself", string(n))
}
