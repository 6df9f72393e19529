// Package overloadbench measures svrkit's overload control the way DAGOR's
// evaluation did: a three-tier chain — an entry service calling a shared
// service calling a basic service, each its own process — driven open-loop
// (requests at a fixed offered rate, whatever the answers) at multiples of
// the chain's measured capacity, with overload control on and off in the
// same run.
//
// Open loop matters: a closed-loop generator slows itself down when the
// system does and never shows collapse. Offered load here is a clock: each
// millisecond the generator starts as many requests as the rate says, each
// in its own goroutine with the deadline a user would give up at.
//
// What it reports per (load, mode): goodput (calls answered OK within their
// deadline, per second, and as a share of capacity), the success rate of
// high-priority calls, and the p99 latency of the calls that succeeded.
// Requests mix business priorities (a fifth high, the rest spread over four
// lower levels) and come from many users (the entry names the user, so the
// user priority is the user's, and a user's calls share a verdict).
//
// The basic service's handler burns CPU (the chain's bottleneck on a small
// machine); the entry and shared tiers burn a little and forward with the
// handler's context, so the entry request's priorities travel down the
// chain.
package overloadbench

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svrkit/svrkit/svrkit"
)

// callDesc is the one method every tier serves: the request says how much
// CPU the basic tier burns, in microseconds.
var callDesc = svrkit.ServiceDesc{
	Name: "overloadbench.Tier",
	Methods: []svrkit.MethodDesc{{
		CmdID:       1,
		FullName:    "/overloadbench.Tier/Call",
		NewRequest:  func() proto.Message { return new(wrapperspb.UInt32Value) },
		NewResponse: func() proto.Message { return new(wrapperspb.UInt32Value) },
		Handler: func(impl any, ctx context.Context, req proto.Message) (proto.Message, error) {
			return impl.(*tier).call(ctx, req.(*wrapperspb.UInt32Value))
		},
	}},
}

// callMethod is callDesc's method, for clients.
var callMethod *svrkit.MethodDesc

func init() { callMethod = &callDesc.Methods[0] }

// tier is one service of the chain: it burns own of CPU and, unless it is
// the basic service, calls the next tier.
type tier struct {
	own  time.Duration
	next *svrkit.Client
}

func (t *tier) call(ctx context.Context, req *wrapperspb.UInt32Value) (*wrapperspb.UInt32Value, error) {
	if t.next == nil {
		burn(time.Duration(req.Value) * time.Microsecond)
		return req, nil
	}
	burn(t.own)
	resp := new(wrapperspb.UInt32Value)
	if err := t.next.Invoke(ctx, callMethod, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// burn keeps the CPU busy for d.
func burn(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
	}
}

// Serve runs one tier on addr until ctx ends: next is the address of the
// tier it calls ("" for the basic one), control whether overload control
// is on. ready receives the bound address.
func Serve(ctx context.Context, addr, next string, control bool, ready func(string)) error {
	t := &tier{own: 20 * time.Microsecond}
	if next != "" {
		c, err := svrkit.NewClient(next, svrkit.WithRetries(0))
		if err != nil {
			return err
		}
		defer c.Close()
		t.next = c
	}
	var opts []svrkit.ServerOption
	if !control {
		opts = append(opts, svrkit.WithOverloadControl(0))
	}
	s := svrkit.NewServer(opts...)
	s.RegisterService(&callDesc, t)
	if err := s.Start(addr); err != nil {
		return err
	}
	ready(s.Addr().String())
	<-ctx.Done()
	stop, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Shutdown(stop)
}
