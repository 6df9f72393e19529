// Package agent is the monitor agent: one per machine, it reads every
// monitor region in the region directory on a period and reports them to
// the monitor center over svrkit RPC (MonitorIngest.Report). Its main is
// svrkit/monitor/cmd/monitoragent.
//
// # A tick
//
// List the directory; open regions it has not seen (a corrupt one is
// reported as a problem once and skipped); for each region, read new
// declarations, check whether its process is gone, then read the values:
// every slot the first time (a full reading), afterwards only those that
// changed. Queue the report, then send queued reports oldest first until
// one fails. A region whose process is gone is reported one last time and
// deleted once the center has acknowledged that report.
//
// # When the center is down
//
// Reports queue, up to Config.Buffer worth of periods (and MaxBufferBytes).
// Past that the two oldest are merged into one — the later values, the
// earlier predecessor — so the queue stays bounded and no count is lost,
// only the resolution of the oldest seconds: the center sees a reading
// whose predecessor is older than its MaxGap and shows the time between
// as a gap rather than a spike. Within the buffer every second arrives as
// it was read.
//
// # When the agent restarts
//
// It keeps nothing on disk. The regions keep cumulative values, so the new
// agent's first reading of each is full, and the center turns it into the
// increase since the last reading it applied: nothing is counted twice,
// and what the old agent read but never sent is counted in that reading.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/internal/beat"
	"github.com/svrkit/svrkit/svrkit/monitor/internal/shm"
	"github.com/svrkit/svrkit/svrkit/monitor/monitorpb"
)

// Config configures an Agent.
type Config struct {
	// Dir is the region directory (default: the monitor package's default).
	Dir string
	// Machine names this machine (default: the host name).
	Machine string
	// Period is how often regions are read (default 1s).
	Period time.Duration
	// Buffer is how much reading time is kept while the center is down
	// (default 10 minutes), and MaxBufferBytes bounds it in bytes (default
	// 64 MiB).
	Buffer         time.Duration
	MaxBufferBytes int
	// Center is the center's client, usually a *svrkit.Client with the
	// agent's identity.
	Center svrkit.Invoker
	// SendTimeout bounds one report (default 5s).
	SendTimeout time.Duration
	Logger      *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Agent reads regions and reports them. Run it with Run; Tick does one
// period's work. Its methods are safe for concurrent use.
type Agent struct {
	cfg    Config
	ingest monitorpb.MonitorIngestClient

	mu      sync.Mutex
	regions map[string]*tracked // by path
	bad     map[string]bool     // paths refused as corrupt
	queue   []*queued
	qBytes  int
	stats   Stats
	ids     map[uint32]string // monitor ID -> name, across regions
	told    map[string]bool   // problems already reported
	pending []string          // problems for the next report
}

type tracked struct {
	r           *shm.Reader
	h           shm.Header
	declsQueued int
	lastSent    []int64
	lastSet     []bool
	prevMs      int64
	needFull    bool
	gone        bool
	finalQueued bool
}

type queued struct {
	req   *monitorpb.ReportRequest
	size  int
	paths map[uint64]string // instance -> path, for the final readings
}

// Stats count what the agent did.
type Stats struct {
	Regions int // regions being read
	Queued  int // reports waiting for the center
	Sent    int // reports the center acknowledged
	Merged  int // reports merged away because the buffer was full
	Failed  int // sends that failed
	Bytes   int // bytes of reports sent
}

// New returns an agent.
func New(cfg Config) (*Agent, error) {
	if cfg.Center == nil {
		return nil, errors.New("monitor agent: no center")
	}
	if cfg.Dir == "" {
		return nil, errors.New("monitor agent: no region directory")
	}
	if cfg.Machine == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("monitor agent: machine name: %w", err)
		}
		cfg.Machine = h
	}
	if cfg.Period <= 0 {
		cfg.Period = time.Second
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 10 * time.Minute
	}
	if cfg.MaxBufferBytes <= 0 {
		cfg.MaxBufferBytes = 64 << 20
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Agent{cfg: cfg, ingest: monitorpb.NewMonitorIngestClient(cfg.Center),
		regions: map[string]*tracked{}, bad: map[string]bool{}, ids: map[uint32]string{}, told: map[string]bool{}}, nil
}

// Run ticks every period until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	t := time.NewTimer(beat.Until(a.cfg.Period)) // on the process's beat
	defer t.Stop()
	for {
		a.Tick(ctx)
		select {
		case <-ctx.Done():
			a.close()
			return nil
		case <-t.C:
		}
		t.Reset(beat.Until(a.cfg.Period))
	}
}

func (a *Agent) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.regions {
		t.r.Close()
	}
	a.regions = map[string]*tracked{}
}

// Stats returns the agent's counters.
func (a *Agent) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stats
	s.Regions, s.Queued = len(a.regions), len(a.queue)
	return s
}

// Tick reads every region once, queues the report and sends what is
// queued.
func (a *Agent) Tick(ctx context.Context) {
	a.read()
	a.flush(ctx)
}

// Flush sends what is queued, oldest first, until a send fails, and
// reports how many reports are still queued.
func (a *Agent) Flush(ctx context.Context) int {
	a.flush(ctx)
	return a.Stats().Queued
}

func (a *Agent) problem(p string) {
	if a.told[p] {
		return
	}
	a.told[p] = true
	a.cfg.Logger.Warn("monitor agent: " + p)
	if len(a.pending) < 100 {
		a.pending = append(a.pending, p)
	}
}

// read makes one report of every region and queues it.
func (a *Agent) read() {
	a.mu.Lock()
	defer a.mu.Unlock()
	paths, err := shm.List(a.cfg.Dir)
	if err != nil && !os.IsNotExist(err) {
		a.problem(fmt.Sprintf("cannot list %s: %v", a.cfg.Dir, err))
	}
	present := map[string]bool{}
	for _, p := range paths {
		present[p] = true
		if a.regions[p] != nil || a.bad[p] {
			continue
		}
		r, err := shm.Open(p)
		if err != nil {
			if !os.IsNotExist(err) {
				a.bad[p] = true
				a.problem(err.Error())
			}
			continue
		}
		a.regions[p] = &tracked{r: r, h: r.Header(), needFull: true}
	}
	for p := range a.bad {
		if !present[p] {
			delete(a.bad, p)
		}
	}
	now := a.cfg.Now()
	ms := now.Truncate(time.Millisecond).UnixMilli()
	req := &monitorpb.ReportRequest{Machine: a.cfg.Machine, UnixMs: ms}
	q := &queued{req: req, paths: map[uint64]string{}}
	for p, t := range a.regions {
		if !present[p] && !t.finalQueued {
			// Deleted by someone else: nothing more to read.
			t.r.Close()
			delete(a.regions, p)
			continue
		}
		if t.finalQueued {
			continue
		}
		if !t.gone {
			t.gone = t.r.OwnerGone() // before reading: values read after are final
		}
		decls, err := t.r.Refresh()
		if err != nil {
			a.problem(err.Error())
			if len(decls) == 0 {
				continue
			}
		}
		a.checkIDs(t, decls)
		rr := &monitorpb.RegionReading{
			Instance: t.h.Instance, Service: t.h.Service, Pid: t.h.PID,
			StartUnixMs: t.h.StartNano / 1e6, PrevUnixMs: t.prevMs, Full: t.needFull, Final: t.gone,
		}
		for _, d := range decls[t.declsQueued:] {
			rr.Decls = append(rr.Decls, &monitorpb.Decl{Slot: d.Slot, Id: d.ID, Kind: uint32(d.Kind), Name: d.Name, Unit: d.Unit, Alert: d.Alert})
		}
		t.declsQueued = len(decls)
		for len(t.lastSent) < len(decls) {
			t.lastSent = append(t.lastSent, 0)
			t.lastSet = append(t.lastSet, false)
		}
		for i, d := range decls {
			v, flags := t.r.Value(uint32(i))
			set := d.Kind == shm.Counter || flags&shm.FlagSet != 0
			if set && (t.needFull || v != t.lastSent[i] || !t.lastSet[i]) {
				rr.Slots = append(rr.Slots, uint32(i))
				rr.Values = append(rr.Values, v)
			}
			t.lastSent[i], t.lastSet[i] = v, set
		}
		t.needFull = false
		t.prevMs = ms
		if t.gone {
			t.finalQueued = true
			q.paths[t.h.Instance] = p
		}
		req.Regions = append(req.Regions, rr)
	}
	req.Problems, a.pending = a.pending, nil
	q.size = proto.Size(req)
	a.queue = append(a.queue, q)
	a.qBytes += q.size
	maxReports := max(2, int(a.cfg.Buffer/a.cfg.Period))
	for len(a.queue) > 2 && (len(a.queue) > maxReports || a.qBytes > a.cfg.MaxBufferBytes) {
		a.mergeOldest()
	}
}

// checkIDs reports monitor IDs that two regions declare with different
// names.
func (a *Agent) checkIDs(t *tracked, decls []shm.Decl) {
	for _, d := range decls {
		if d.ID == 0 {
			continue
		}
		if prev, ok := a.ids[d.ID]; !ok {
			a.ids[d.ID] = d.Name
		} else if prev != d.Name {
			a.problem(fmt.Sprintf("monitor ID %d is declared as %q and, by %s (pid %d), as %q", d.ID, prev, t.h.Service, t.h.PID, d.Name))
		}
	}
}

// mergeOldest folds the oldest queued report into the next one.
func (a *Agent) mergeOldest() {
	first, second := a.queue[0], a.queue[1]
	byInst := map[uint64]*monitorpb.RegionReading{}
	for _, rr := range second.req.Regions {
		byInst[rr.Instance] = rr
	}
	for _, old := range first.req.Regions {
		cur := byInst[old.Instance]
		if cur == nil {
			second.req.Regions = append(second.req.Regions, old)
			continue
		}
		cur.PrevUnixMs = old.PrevUnixMs
		cur.Full = cur.Full || old.Full
		cur.Decls = append(old.Decls, cur.Decls...)
		listed := map[uint32]bool{}
		for _, s := range cur.Slots {
			listed[s] = true
		}
		for i, s := range old.Slots {
			if !listed[s] {
				cur.Slots = append(cur.Slots, s)
				cur.Values = append(cur.Values, old.Values[i])
			}
		}
	}
	second.req.Problems = append(first.req.Problems, second.req.Problems...)
	for k, v := range first.paths {
		second.paths[k] = v
	}
	a.qBytes -= first.size + second.size
	second.size = proto.Size(second.req)
	a.qBytes += second.size
	a.queue = slices.Delete(a.queue, 0, 1)
	a.stats.Merged++
}

// flush sends queued reports oldest first until one fails.
func (a *Agent) flush(ctx context.Context) {
	for {
		a.mu.Lock()
		if len(a.queue) == 0 {
			a.mu.Unlock()
			return
		}
		q := a.queue[0]
		a.mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, a.cfg.SendTimeout)
		reply, err := a.ingest.Report(cctx, q.req)
		cancel()
		a.mu.Lock()
		if err != nil {
			a.stats.Failed++
			first := a.stats.Failed == 1
			if svrkit.CodeOf(err) == svrkit.InvalidArgument && len(a.queue) > 0 && a.queue[0] == q {
				// The center will never take it (a clock far ahead, say):
				// discard it and start over with full readings.
				a.discardFront()
				a.mu.Unlock()
				a.cfg.Logger.Error("monitor agent: the center refused a report; discarded", "err", err)
				continue
			}
			a.mu.Unlock()
			if first || svrkit.CodeOf(err) != svrkit.Unavailable {
				a.cfg.Logger.Warn("monitor agent: report not delivered; buffering", "err", err)
			}
			return
		}
		if len(a.queue) > 0 && a.queue[0] == q {
			a.stats.Sent++
			a.stats.Bytes += q.size
			a.dropFront()
		}
		for _, inst := range reply.GetResync() {
			for _, t := range a.regions {
				if t.h.Instance == inst {
					t.needFull, t.declsQueued = true, 0
				}
			}
		}
		a.mu.Unlock()
	}
}

// discardFront removes the oldest report without its having been
// applied: the regions it carried final readings of are read again, and
// every region's next reading is full. a.mu must be held.
func (a *Agent) discardFront() {
	q := a.queue[0]
	a.queue = slices.Delete(a.queue, 0, 1)
	a.qBytes -= q.size
	for _, t := range a.regions {
		t.needFull, t.declsQueued = true, 0
	}
	for _, p := range q.paths {
		if t := a.regions[p]; t != nil {
			t.finalQueued = false
		}
	}
}

// dropFront removes the oldest report, deleting the regions whose final
// reading it carried. a.mu must be held.
func (a *Agent) dropFront() {
	q := a.queue[0]
	a.queue = slices.Delete(a.queue, 0, 1)
	a.qBytes -= q.size
	for _, p := range q.paths {
		if t := a.regions[p]; t != nil {
			t.r.Close()
			delete(a.regions, p)
		}
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			a.problem(fmt.Sprintf("cannot remove the finished region %s: %v", p, err))
		}
	}
}
