package monitor

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor/internal/shm"
)

// ServerInterceptor records, for every method a server handles, the
// framework points
//
//	svrkit.server.calls{method="/pkg.Service/Method"}            count
//	svrkit.server.errors{method="...",code="unavailable"}        count, per status code
//	svrkit.server.latency_ms{method="...",le="5"}                count of calls that took at most le ms
//	                                                             (and more than the bucket below)
//
// Install it outermost, so that it sees what the caller sees. After a
// method's first call it allocates nothing and takes no lock.
var ServerInterceptor svrkit.UnaryServerInterceptor = func(ctx context.Context, req proto.Message, method *svrkit.MethodDesc, next svrkit.UnaryHandler) (proto.Message, error) {
	p := serverPoints.of(method)
	start := time.Now()
	resp, err := next(ctx, req)
	p.record(time.Since(start), err)
	return resp, err
}

// ClientInterceptor records the same points for every call a client makes,
// as svrkit.client.calls, svrkit.client.errors and svrkit.client.latency_ms.
var ClientInterceptor svrkit.UnaryClientInterceptor = func(ctx context.Context, method *svrkit.MethodDesc, req, resp proto.Message, next svrkit.UnaryInvoker) error {
	p := clientPoints.of(method)
	start := time.Now()
	err := next(ctx, method, req, resp)
	p.record(time.Since(start), err)
	return err
}

// LatencyBucketsMs are the upper bounds of the latency buckets, in
// milliseconds; a last bucket, le="inf", takes the rest.
var LatencyBucketsMs = [...]float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}

var latencyBoundsNs = func() (b [len(LatencyBucketsMs)]time.Duration) {
	for i, ms := range LatencyBucketsMs {
		b[i] = time.Duration(ms * float64(time.Millisecond))
	}
	return b
}()

// numCodes is the framework's codes (0..17) and one more for every
// application code.
const numCodes = int(svrkit.Overloaded) + 2

type methodPoints struct {
	side    string
	method  string
	calls   *shm.Slot
	buckets [len(LatencyBucketsMs) + 1]*shm.Slot
	errs    [numCodes]atomic.Pointer[shm.Slot]
	refused [numCodes]atomic.Pointer[shm.Slot]
}

type sidePoints struct {
	side string
	mu   sync.Mutex
	m    atomic.Pointer[map[*svrkit.MethodDesc]*methodPoints]
}

var (
	serverPoints = &sidePoints{side: "server"}
	clientPoints = &sidePoints{side: "client"}
)

// of returns the points of method, making them on its first call. The map
// is copied on write, so a lookup is one atomic load and a map read.
func (s *sidePoints) of(method *svrkit.MethodDesc) *methodPoints {
	if m := s.m.Load(); m != nil {
		if p := (*m)[method]; p != nil {
			return p
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.m.Load()
	if old != nil {
		if p := (*old)[method]; p != nil {
			return p
		}
	}
	p := &methodPoints{side: s.side, method: method.FullName}
	prefix := "svrkit." + s.side + "."
	p.calls = named(SeriesName(prefix+"calls", "method", method.FullName), Counter, "count")
	for i := range p.buckets {
		le := "inf"
		if i < len(LatencyBucketsMs) {
			le = strconv.FormatFloat(LatencyBucketsMs[i], 'g', -1, 64)
		}
		p.buckets[i] = named(SeriesName(prefix+"latency_ms", "method", method.FullName, "le", le), Counter, "count")
	}
	next := make(map[*svrkit.MethodDesc]*methodPoints, 1)
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[method] = p
	s.m.Store(&next)
	return p
}

func (p *methodPoints) record(d time.Duration, err error) {
	if p.calls != nil {
		p.calls.Value.Add(1)
	}
	i := 0
	for i < len(latencyBoundsNs) && d > latencyBoundsNs[i] {
		i++
	}
	if b := p.buckets[i]; b != nil {
		b.Value.Add(1)
	}
	if err == nil {
		return
	}
	p.count(&p.errs, "errors", svrkit.CodeOf(err))
}

// count adds one to the series of code in slots, making it on first use.
func (p *methodPoints) count(slots *[numCodes]atomic.Pointer[shm.Slot], what string, code svrkit.Code) {
	ci := int(code)
	if code >= svrkit.AppCodeBase || ci >= numCodes-1 {
		ci = numCodes - 1
	}
	s := slots[ci].Load()
	if s == nil {
		name := code.String()
		if ci == numCodes-1 {
			name = "app"
		}
		s = named(SeriesName("svrkit."+p.side+"."+what, "method", p.method, "code", name), Counter, "count")
		if s == nil {
			return
		}
		slots[ci].CompareAndSwap(nil, s)
	}
	s.Value.Add(1)
}

// unknownMethod stands for requests whose cmdid names no method.
var unknownMethod = &svrkit.MethodDesc{FullName: "unknown"}

// Refused records a request a server answered without running any
// handler, so without reaching ServerInterceptor: refused by admission
// control, by service authentication, for an unknown cmdid (method nil) or
// an undecodable body, or while draining. It records
//
//	svrkit.server.refused{method="...",code="resource_exhausted"}   count
//
// and has the shape of a hook the runtime can call; after a method's first
// refusal with a code it allocates nothing.
func Refused(method *svrkit.MethodDesc, code svrkit.Code) {
	if method == nil {
		method = unknownMethod
	}
	p := serverPoints.of(method)
	p.count(&p.refused, "refused", code)
}
