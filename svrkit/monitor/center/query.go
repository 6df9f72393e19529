package center

import (
	"encoding/binary"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor/monitorpb"
)

// Query limits: a curve has at most MaxQueryPoints points, and a query
// reads at most the retained partitions of one resolution, so any range —
// a century included — costs bounded work.
const (
	MaxQueryPoints     = 5000
	defaultQueryPoints = 600
	// A range up to rawMaxRange reads seconds, up to minuteMaxRange
	// minutes, beyond that hours.
	rawMaxRange    = 3 * time.Hour
	minuteMaxRange = 4 * 24 * time.Hour
)

func (c *Center) seriesPB(s *seriesRec) *monitorpb.Series {
	return &monitorpb.Series{Name: s.Name, Id: s.MonID, Kind: s.Kind, Unit: s.Unit, Alert: s.Alert,
		Services: append([]string(nil), s.Services...), Problem: s.Problem}
}

// ListSeries lists the series whose names contain the query.
func (c *Center) ListSeries(req *monitorpb.ListSeriesRequest) *monitorpb.ListSeriesReply {
	limit := int(req.GetLimit())
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	q := strings.ToLower(req.GetQuery())
	c.mu.Lock()
	defer c.mu.Unlock()
	reply := &monitorpb.ListSeriesReply{Machines: append([]string(nil), c.machineNames...)}
	var names []string
	for name := range c.seriesByName {
		if strings.Contains(strings.ToLower(name), q) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) > limit {
		names, reply.More = names[:limit], true
	}
	for _, n := range names {
		reply.Series = append(reply.Series, c.seriesPB(c.seriesByName[n]))
	}
	return reply
}

// Query returns a series' curve over a time range: the sum over machines
// and, if asked, each machine's.
func (c *Center) Query(req *monitorpb.QueryRequest) (*monitorpb.QueryReply, error) {
	c.mu.Lock()
	s := c.seriesByName[req.GetName()]
	var rec seriesRec
	if s != nil {
		rec = *s
	}
	machines := append([]string(nil), c.machineNames...)
	c.mu.Unlock()
	if s == nil {
		return nil, svrkit.Errorf(svrkit.NotFound, "no series named %q", req.GetName())
	}
	now := c.cfg.Now()
	to := time.UnixMilli(req.GetToUnixMs())
	if req.GetToUnixMs() <= 0 || to.After(now) {
		to = now
	}
	from := time.UnixMilli(req.GetFromUnixMs())
	if req.GetFromUnixMs() <= 0 {
		from = to.Add(-time.Hour)
	}
	if !from.Before(to) {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "empty range: from %v is not before to %v", from.UTC(), to.UTC())
	}
	l, keep := levelHour, c.cfg.Retention.Hour
	switch rng := to.Sub(from); {
	case rng <= rawMaxRange:
		l, keep = levelRaw, c.cfg.Retention.Raw
	case rng <= minuteMaxRange:
		l, keep = levelMinute, c.cfg.Retention.Minute
	}
	reply := &monitorpb.QueryReply{Series: c.seriesPB(&rec), Resolution: l.name}
	if oldest := now.Add(-keep); from.Before(oldest) {
		from, reply.Clipped = oldest, true
		if !from.Before(to) {
			return nil, svrkit.Errorf(svrkit.InvalidArgument, "the range ends before the oldest %s kept (%v)", l.name, oldest.UTC())
		}
	}
	maxPts := int64(req.GetMaxPoints())
	if maxPts <= 0 {
		maxPts = defaultQueryPoints
	}
	maxPts = min(maxPts, MaxQueryPoints)
	stepSec := int64(l.step / time.Second)
	rngSec := int64(math.Ceil(to.Sub(from).Seconds()))
	if per := (rngSec + maxPts - 1) / maxPts; per > stepSec {
		stepSec = (per + stepSec - 1) / stepSec * stepSec
	}
	fromSec := from.Unix() / stepSec * stepSec
	toSec := to.Unix() + 1
	n := int((toSec - fromSec + stepSec - 1) / stepSec)
	reply.FromUnixMs, reply.StepMs = fromSec*1000, stepSec*1000

	type acc struct {
		sum, n []float64
		seen   []bool // the machine reported in the bucket
	}
	per := map[uint32]*acc{}
	get := func(m uint32) *acc {
		a := per[m]
		if a == nil {
			a = &acc{sum: make([]float64, n), n: make([]float64, n), seen: make([]bool, n)}
			per[m] = a
		}
		return a
	}
	err := c.scan(l, rec.ID, fromSec, toSec, func(m uint32, t int64, r rollup) {
		a := get(m)
		i := (t - fromSec) / stepSec
		a.sum[i] += float64(r.sum)
		a.n[i] += float64(r.n)
	})
	if err == nil && rec.Kind == kindCounter {
		err = c.scan(l, heartbeatSeries, fromSec, toSec, func(m uint32, t int64, r rollup) {
			get(m).seen[(t-fromSec)/stepSec] = true
		})
	}
	if err != nil {
		return nil, svrkit.Errorf(svrkit.Internal, "monitor center: reading %s: %v", rec.Name, err)
	}
	value := func(a *acc, i int) (float64, bool) {
		if rec.Kind == kindGauge {
			if a.n[i] == 0 {
				return 0, false
			}
			return a.sum[i] / a.n[i], true
		}
		return a.sum[i], a.seen[i] || a.n[i] > 0
	}
	sum := &monitorpb.Curve{Values: make([]float64, n)}
	present := make([]bool, n)
	ids := make([]uint32, 0, len(per))
	for m := range per {
		ids = append(ids, m)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, m := range ids {
		a := per[m]
		var curve *monitorpb.Curve
		if req.GetPerMachine() && int(m) <= len(machines) {
			curve = &monitorpb.Curve{Machine: machines[m-1], Values: make([]float64, n)}
			reply.Machines = append(reply.Machines, curve)
		}
		for i := 0; i < n; i++ {
			v, ok := value(a, i)
			if ok {
				sum.Values[i] += v
				present[i] = true
			}
			if curve != nil {
				if !ok {
					v = math.NaN()
				}
				curve.Values[i] = v
			}
		}
	}
	for i, ok := range present {
		if !ok {
			sum.Values[i] = math.NaN()
		}
	}
	reply.Sum = sum
	return reply, nil
}

// scan calls f for every stored point of series sid at level l in
// [fromSec, toSec), with the point's machine and bucket start time.
func (c *Center) scan(l level, sid uint32, fromSec, toSec int64, f func(machine uint32, t int64, r rollup)) error {
	stepSec := int64(l.step / time.Second)
	for p := l.partOf(fromSec); p <= l.partOf(toSec-1); p++ {
		lo := seriesPrefix(l, p, sid)
		hi := seriesPrefix(l, p, sid+1)
		it, err := c.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return err
		}
		for it.First(); it.Valid(); it.Next() {
			k := it.Key()
			if len(k) != 17 {
				continue
			}
			t := int64(binary.BigEndian.Uint32(k[13:])) * stepSec
			if t < fromSec || t >= toSec {
				continue
			}
			r, err := decodeRollup(it.Value())
			if err != nil {
				continue
			}
			f(binary.BigEndian.Uint32(k[9:]), t, r)
		}
		if err := it.Close(); err != nil {
			return err
		}
	}
	if l.prefix != prefixRaw {
		for k, r := range c.pendingFor(l, sid) {
			if t := int64(k.bucket) * stepSec; t >= fromSec && t < toSec {
				f(k.machine, t, r)
			}
		}
	}
	return nil
}
