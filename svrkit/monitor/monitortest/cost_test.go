package monitortest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor/agent"
	"github.com/svrkit/svrkit/svrkit/monitor/center"
	"github.com/svrkit/svrkit/svrkit/monitor/internal/shm"
	"github.com/svrkit/svrkit/svrkit/monitor/monitorpb"
	"github.com/svrkit/svrkit/svrkit/monitor/rule"
)

// The cost of monitoring a machine: 8 processes with 10,000 points each,
// read and reported every second. One benchmark op is one second's report.
// "all" changes every point every second (the worst case), "1%" changes a
// hundred per process (a busy service: most points are quiet most
// seconds).

const (
	costProcesses = 8
	costPoints    = 10000
)

// costRegions makes the regions and returns a function that changes
// frac of each region's points.
func costRegions(b *testing.B, dir string) func(frac float64) {
	b.Helper()
	var slots [][]*shm.Slot
	for p := 0; p < costProcesses; p++ {
		w, err := shm.Create(dir, fmt.Sprintf("svc%d", p), costPoints+16, shm.DefaultDeclBytes)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { w.Close() })
		var ss []*shm.Slot
		for i := 0; i < costPoints; i++ {
			kind := shm.Counter
			if i%10 == 0 {
				kind = shm.Gauge
			}
			s, _, err := w.Declare(shm.Decl{ID: uint32(100000 + i), Kind: kind, Name: fmt.Sprintf("load.point_%05d", i), Unit: "count"})
			if err != nil {
				b.Fatal(err)
			}
			ss = append(ss, s)
		}
		slots = append(slots, ss)
	}
	round := 0
	return func(frac float64) {
		round++
		n := int(frac * costPoints)
		for _, ss := range slots {
			for i := 0; i < n; i++ {
				s := ss[(round*n+i)%costPoints]
				s.Value.Add(int64(1 + i%7))
				s.Flags.Or(shm.FlagSet)
			}
		}
	}
}

// captureInvoker records reports instead of sending them, marshalling each
// as a client would.
type captureInvoker struct {
	mu    sync.Mutex
	last  *monitorpb.ReportRequest
	bytes int
}

func (c *captureInvoker) Invoke(ctx context.Context, m *svrkit.MethodDesc, req, resp proto.Message, _ ...svrkit.CallOption) error {
	b, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.last, c.bytes = req.(*monitorpb.ReportRequest), len(b)
	c.mu.Unlock()
	return nil
}

// costMachine is a machine of costProcesses x costPoints points whose
// agent has made its first, full reading. step changes frac of the
// points, reads them and returns the report.
type costMachine struct {
	agent  *agent.Agent
	change func(frac float64)
	inv    *captureInvoker
	clk    *fakeClock
}

func newCostMachine(b *testing.B) *costMachine {
	b.Helper()
	dir := b.TempDir()
	m := &costMachine{change: costRegions(b, dir), inv: &captureInvoker{}, clk: newFakeClock()}
	a, err := agent.New(agent.Config{Dir: dir, Machine: "m1", Center: m.inv, Logger: quiet, Now: m.clk.now})
	if err != nil {
		b.Fatal(err)
	}
	m.agent = a
	a.Tick(context.Background())
	return m
}

// step moves the points and the clock; the next Tick reads them.
func (m *costMachine) step(frac float64) {
	m.change(frac)
	m.clk.tick()
}

// benchFractions runs f for the two shapes of load.
func benchFractions(b *testing.B, f func(b *testing.B, frac float64)) {
	for _, frac := range []float64{1, 0.01} {
		b.Run(fmt.Sprintf("10000x8/changed=%g%%", frac*100), func(b *testing.B) { f(b, frac) })
	}
}

func BenchmarkAgentReport(b *testing.B) {
	benchFractions(b, func(b *testing.B, frac float64) {
		m := newCostMachine(b)
		b.ReportAllocs()
		b.ResetTimer()
		var bytes int
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			m.step(frac)
			b.StartTimer()
			m.agent.Tick(context.Background())
			bytes += m.inv.bytes
		}
		b.ReportMetric(float64(bytes)/float64(b.N), "bytes/report")
	})
}

func BenchmarkCenterReport(b *testing.B) {
	benchFractions(b, func(b *testing.B, frac float64) {
		m := newCostMachine(b)
		c, err := center.Open(center.Config{Dir: b.TempDir(), Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Report(m.inv.last); err != nil {
			b.Fatal(err)
		}
		// Prepare the reports first: the timer covers the center only.
		reqs := make([]*monitorpb.ReportRequest, b.N)
		for i := range reqs {
			m.step(frac)
			m.agent.Tick(context.Background())
			reqs[i] = m.inv.last
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i, r := range reqs {
			if _, err := c.Report(r); err != nil {
				b.Fatal(err)
			}
			if i%10 == 9 { // the center writes its rollups every 10 s
				if err := c.FlushRollups(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkAddToCurve measures the time from monitor.Add in a process to
// the point on the curve the dashboard reads: a real process, a real agent
// reading every second, a real center over loopback RPC, polled as the
// page polls its data endpoint. Run with -benchtime 10x.
func BenchmarkAddToCurve(b *testing.B) {
	dir := b.TempDir()
	c := StartCenter(b, center.Config{Logger: quiet})
	client, err := svrkit.NewClient(c.Addr)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	a, err := agent.New(agent.Config{Dir: dir, Machine: "m1", Period: time.Second, Center: client, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.Run(ctx)
	p := StartProcess(b, "svc", dir)
	p.Do(b, "add 1")
	var seen float64
	total := func() float64 {
		r, err := c.Query(&monitorpb.QueryRequest{Name: "test.requests", FromUnixMs: time.Now().Add(-time.Hour).UnixMilli(), MaxPoints: center.MaxQueryPoints})
		if err != nil {
			return -1
		}
		v, _ := rule.Aggregate(rule.Sum, r.GetSum().GetValues())
		return v
	}
	deadline := time.Now().Add(30 * time.Second)
	for seen = total(); seen < 1; seen = total() {
		if time.Now().After(deadline) {
			b.Fatal("the first count never reached the curve")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Start at a random phase of the agent's period.
		time.Sleep(time.Duration(137*(i+1)%1000) * time.Millisecond)
		start := time.Now()
		p.Do(b, "add 1")
		want := seen + 1
		for seen = total(); seen < want; seen = total() {
			if time.Since(start) > 30*time.Second {
				b.Fatal("a count did not reach the curve within 30s")
			}
			time.Sleep(5 * time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	for i := 1; i < len(lat); i++ {
		for j := i; j > 0 && lat[j] < lat[j-1]; j-- {
			lat[j], lat[j-1] = lat[j-1], lat[j]
		}
	}
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "max-ms")
}
