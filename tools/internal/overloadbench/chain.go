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
//
// With OVERLOADBENCH_DEBUG set in the environment, every tier prints on
// stderr, four times a second, what its overload control saw (overloaded,
// queuing time, level, admitted, shed and expired since the last line) and
// what the Go scheduler did (goroutines, the p99 of the time runnable
// goroutines waited for a CPU), and the basic tier the CPU and the handler
// wall time per call: enough to tell a standing queue from processor
// sharing from a level that relaxes too slowly.
package overloadbench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"syscall"
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
		start := time.Now()
		burn(time.Duration(req.Value) * time.Microsecond)
		basicCalls.Add(1)
		basicWall.Add(int64(time.Since(start)))
		return req, nil
	}
	burn(t.own)
	resp := new(wrapperspb.UInt32Value)
	if err := t.next.Invoke(ctx, callMethod, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// basicCalls and basicWall count the basic tier's calls and their wall
// time, for debugLog.
var basicCalls, basicWall atomic.Int64

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
	if os.Getenv("OVERLOADBENCH_DEBUG") != "" {
		go debugLog(ctx, s, next == "")
	}
	<-ctx.Done()
	stop, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Shutdown(stop)
}

// debugLog prints the tier's admission state every 250 ms on stderr while
// OVERLOADBENCH_DEBUG is set: what the server measured (queuing time, level,
// admitted, shed and expired since the last line) and what the Go scheduler
// did (goroutines, the p99 of the time runnable goroutines waited for a
// CPU).
func debugLog(ctx context.Context, s *svrkit.Server, basic bool) {
	name := "upper"
	if basic {
		name = "basic"
	}
	sample := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	var prevA, prevS, prevE uint64
	var prevBuckets []uint64
	var prevCPU time.Duration
	var prevCalls, prevWall int64
	tk := time.NewTicker(250 * time.Millisecond)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		st := s.AdmissionStats()
		var a, sh uint64
		for i := range st.Admitted {
			a += st.Admitted[i]
			sh += st.Shed[i]
		}
		metrics.Read(sample)
		h := sample[0].Value.Float64Histogram()
		var p99 float64
		if prevBuckets != nil {
			var total uint64
			d := make([]uint64, len(h.Counts))
			for i := range h.Counts {
				d[i] = h.Counts[i] - prevBuckets[i]
				total += d[i]
			}
			var cum uint64
			for i := range d {
				cum += d[i]
				if total > 0 && cum*100 >= total*99 {
					p99 = h.Buckets[i+1]
					break
				}
			}
		}
		prevBuckets = append(prevBuckets[:0], h.Counts...)
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		calls, wall := basicCalls.Load(), basicWall.Load()
		var perCall, wallPer time.Duration
		if calls > prevCalls {
			perCall = (cpu - prevCPU) / time.Duration(calls-prevCalls)
			wallPer = time.Duration(wall-prevWall) / time.Duration(calls-prevCalls)
		}
		fmt.Fprintf(os.Stderr, "%s %s: cpu %v calls %d cpu/call %v handler-wall/call %v\n", time.Now().Format("15:04:05.000"), name, cpu-prevCPU, calls-prevCalls, perCall, wallPer)
		prevCPU, prevCalls, prevWall = cpu, calls, wall
		fmt.Fprintf(os.Stderr, "%s %s pid %d: overloaded %v wait %v level %d/%d admitted %d shed %d expired %d goroutines %d sched-p99 %.1fms\n",
			time.Now().Format("15:04:05.000"), name, os.Getpid(), st.Overloaded, st.QueueWait, st.LevelBusiness, st.LevelUser,
			a-prevA, sh-prevS, st.Expired-prevE, runtime.NumGoroutine(), p99*1000)
		prevA, prevS, prevE = a, sh, st.Expired
	}
}
