package center

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor/monitorpb"
)

// total is a series' running state on one machine, for the Prometheus
// export: a counter's total since the center started, a gauge's last
// level.
type total struct {
	value  int64
	lastMs int64
}

// Limits on a report, so that a bad or hostile agent costs bounded work.
const (
	maxRegionsPerReport = 4096
	maxValuesPerRegion  = 1 << 20
	maxFutureSkew       = time.Minute
	// MaxSeries bounds the catalog: declarations of new names beyond it
	// are refused (and reported), so that no agent can grow the center's
	// memory without end.
	MaxSeries = 500_000
)

// Report applies one agent report (see the package doc).
func (c *Center) Report(req *monitorpb.ReportRequest) (*monitorpb.ReportReply, error) {
	now := c.cfg.Now()
	switch {
	case req.GetMachine() == "" || len(req.GetMachine()) > 255:
		return nil, svrkit.NewError(svrkit.InvalidArgument, "report names no machine (or a name over 255 bytes)")
	case req.GetUnixMs() <= 0:
		return nil, svrkit.NewError(svrkit.InvalidArgument, "report has no time")
	case req.GetUnixMs() > now.Add(maxFutureSkew).UnixMilli():
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "report time %v is ahead of the center's clock (%v): check the machine's clock",
			time.UnixMilli(req.GetUnixMs()).UTC(), now.UTC())
	case len(req.GetRegions()) > maxRegionsPerReport:
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "report has %d regions, over %d", len(req.GetRegions()), maxRegionsPerReport)
	}
	for _, rr := range req.GetRegions() {
		if len(rr.GetSlots()) != len(rr.GetValues()) || len(rr.GetSlots()) > maxValuesPerRegion {
			return nil, svrkit.Errorf(svrkit.InvalidArgument, "region %016x: %d slots and %d values", rr.GetInstance(), len(rr.GetSlots()), len(rr.GetValues()))
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.db.NewBatch()
	defer b.Close()
	mid := c.machineLocked(b, req.GetMachine())
	for _, p := range req.GetProblems() {
		if len(p) > 500 {
			p = p[:500]
		}
		c.problemLocked("machine %s: %s", req.GetMachine(), p)
	}
	ms := req.GetUnixMs()
	sec := ms / 1000
	sums := map[uint32]int64{}
	var reply monitorpb.ReportReply
	maxGap := c.cfg.MaxGap.Milliseconds()
	// The machine's heartbeat says "every counter increase of this second
	// is here": not so when no region's increase could be counted.
	counted := len(req.GetRegions()) == 0
	for _, rr := range req.GetRegions() {
		key := regionKey{mid, rr.GetInstance()}
		st := c.regions[key]
		if st == nil {
			st = &regionState{service: rr.GetService()}
		}
		if ms <= st.lastMs {
			continue // already applied: a resent report
		}
		for _, d := range rr.GetDecls() {
			c.declareLocked(b, st, d, req.GetMachine())
		}
		chain := st.lastMs != 0 && rr.GetPrevUnixMs() == st.lastMs
		// Increases are counted only on top of a complete baseline (a
		// synced region, and this reading its successor or a full one)
		// and only across at most MaxGap: across a longer silence they are
		// not spread, and the curve shows the gap.
		apply := ms-st.lastMs <= maxGap && (st.synced && chain || rr.GetFull() && st.baselined)
		// A region the center meets for the first time counts from zero
		// if its process started within the gap: nothing was missed.
		fresh := st.lastMs == 0 && rr.GetFull() && ms-rr.GetStartUnixMs() <= maxGap
		counted = counted || apply || fresh
		listed := make(map[uint32]bool, len(rr.GetSlots()))
		unknown := false
		for i, slot := range rr.GetSlots() {
			if int(slot) >= len(st.series) || st.series[slot] == 0 {
				unknown = true
				continue
			}
			v := rr.GetValues()[i]
			listed[slot] = true
			if st.kinds[slot] == kindCounter {
				switch {
				case apply:
					// A slot declared since the last reading starts at 0.
					if d := v - st.values[slot]; d > 0 {
						sums[st.series[slot]] += d
					}
				case fresh && v > 0:
					sums[st.series[slot]] += v
				}
			}
			if st.values[slot] != v || !st.set[slot] {
				st.values[slot], st.set[slot] = v, true
				st.markDirty(int(slot))
			}
		}
		if rr.GetFull() {
			for slot := range st.series {
				if st.kinds[slot] == kindGauge && !listed[uint32(slot)] && st.set[slot] {
					st.set[slot] = false
					st.markDirty(slot)
				}
			}
		}
		if !rr.GetFinal() {
			for slot, sid := range st.series {
				if sid != 0 && st.kinds[slot] == kindGauge && st.set[slot] {
					sums[sid] += st.values[slot]
				}
			}
		}
		st.lastMs = ms
		switch {
		case unknown:
			st.synced = false
		case rr.GetFull():
			st.synced, st.baselined = true, true
		case !chain:
			st.synced = false
		}
		if !st.synced {
			reply.Resync = append(reply.Resync, rr.GetInstance())
		}
		if rr.GetFinal() {
			delete(c.regions, key)
			deleteRegion(b, key)
			continue
		}
		c.regions[key] = st
		st.save(b, key)
	}
	c.writePointsLocked(b, mid, sec, sums, counted)
	if err := b.Commit(pebble.NoSync); err != nil {
		return nil, svrkit.Errorf(svrkit.Internal, "monitor center: storing a report: %v", err)
	}
	return &reply, nil
}

// declareLocked records a region's declaration of a slot.
func (c *Center) declareLocked(b *pebble.Batch, st *regionState, d *monitorpb.Decl, machine string) {
	if d.GetName() == "" || len(d.GetName()) > 1024 || d.GetSlot() >= maxValuesPerRegion || (d.GetKind() != kindCounter && d.GetKind() != kindGauge) {
		c.problemLocked("machine %s, service %s: a malformed declaration of slot %d (%q)", machine, st.service, d.GetSlot(), d.GetName())
		return
	}
	if c.seriesByName[d.GetName()] == nil && len(c.series) >= MaxSeries {
		c.problemLocked("the catalog holds %d series, its limit: %q (machine %s, service %s) is not recorded", MaxSeries, d.GetName(), machine, st.service)
		return
	}
	for uint32(len(st.series)) <= d.GetSlot() {
		st.series = append(st.series, 0)
		st.kinds = append(st.kinds, 0)
		st.values = append(st.values, 0)
		st.set = append(st.set, false)
	}
	s := c.seriesLocked(b, d.GetName(), d.GetId(), d.GetKind(), d.GetUnit(), d.GetAlert(), st.service)
	st.series[d.GetSlot()] = s.ID
	st.kinds[d.GetSlot()] = uint8(d.GetKind())
	st.markDirty(int(d.GetSlot()))
}

func (c *Center) writePointsLocked(b *pebble.Batch, mid uint32, sec int64, sums map[uint32]int64, heartbeat bool) {
	if heartbeat {
		b.Merge(pointKey(levelRaw, heartbeatSeries, mid, sec), rollup{1, 1}.encode(), nil)
		c.rollLocked(heartbeatSeries, mid, sec, 1)
	}
	for sid, v := range sums {
		s := c.series[sid-1]
		if s.Kind == kindCounter && v == 0 {
			continue
		}
		b.Merge(pointKey(levelRaw, sid, mid, sec), rollup{v, 1}.encode(), nil)
		c.rollLocked(sid, mid, sec, v)
		t := c.totals[[2]uint32{sid, mid}]
		if t == nil {
			t = &total{}
			c.totals[[2]uint32{sid, mid}] = t
		}
		if s.Kind == kindCounter {
			t.value += v
		} else {
			t.value = v
		}
		t.lastMs = sec * 1000
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("monitor center: %v", err))
	}
	return b
}

func unmarshalJSON(b []byte, v any) error { return json.Unmarshal(b, v) }

// Rollups. Writing a minute and an hour merge operand with every point
// would triple the keys a report writes; instead the center adds points to
// pending rollups in memory and writes them as merge operands every
// rollupFlush (and at Close), one per bucket. Queries add the pending
// ones, so nothing is missing from a curve. A crash loses at most
// rollupFlush of the minute and hour curves; the seconds, written with
// every report, are intact.

const rollupFlush = 10 * time.Second

type rollKey struct {
	l       byte // prefixMinute or prefixHour
	series  uint32
	machine uint32
	bucket  uint32
}

func (c *Center) rollLocked(sid, mid uint32, sec int64, v int64) {
	for _, l := range []level{levelMinute, levelHour} {
		k := rollKey{l.prefix, sid, mid, l.bucketOf(sec)}
		r := c.pendingRoll[k]
		r.sum += v
		r.n++
		c.pendingRoll[k] = r
	}
}

// FlushRollups writes the pending minute and hour rollups now, as the
// center does every few seconds and at Close.
func (c *Center) FlushRollups() error { return c.flushRollups() }

// flushRollups writes the pending rollups.
func (c *Center) flushRollups() error {
	c.mu.Lock()
	pending := c.pendingRoll
	c.pendingRoll = map[rollKey]rollup{}
	c.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	b := c.db.NewBatch()
	defer b.Close()
	for k, r := range pending {
		l := levelMinute
		if k.l == prefixHour {
			l = levelHour
		}
		sec := int64(k.bucket) * int64(l.step/time.Second)
		b.Merge(pointKey(l, k.series, k.machine, sec), r.encode(), nil)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		// Put them back: the next flush tries again.
		c.mu.Lock()
		for k, r := range pending {
			p := c.pendingRoll[k]
			p.sum, p.n = p.sum+r.sum, p.n+r.n
			c.pendingRoll[k] = p
		}
		c.mu.Unlock()
		return err
	}
	return nil
}

// pendingFor returns the pending rollups of a series at level l.
func (c *Center) pendingFor(l level, sid uint32) map[rollKey]rollup {
	out := map[rollKey]rollup{}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, r := range c.pendingRoll {
		if k.l == l.prefix && k.series == sid {
			out[k] = r
		}
	}
	return out
}
