// Package center is svrkit's monitor center: it takes the agents' reports,
// keeps a curve per monitor point and machine, evaluates alert rules,
// serves the dashboard page and exports everything to Prometheus. The
// Logicsvr "monitor" (svrkit/monitor/monitorpb/logicsvr/monitor) hosts it;
// tests and tools embed it with Open.
//
// # Ingest
//
// A report is one reading of every region on a machine: cumulative counter
// values and gauge levels per slot (see monitorpb.RegionReading). The
// center remembers each region's last reading and turns counters into
// per-second increases; a gauge's curve is the sum of the levels of the
// machine's live processes. A sparse reading (only changed slots) applies
// only on top of the reading it names as its predecessor; a full reading
// applies on top of any reading less than MaxGap old. Otherwise the
// reading only sets the region's baseline and the curve shows a gap for
// the time nothing arrived: counts are never spread over a gap they were
// not seen in, and a replayed report (older than the last one applied) is
// ignored, so an agent that resends or restarts counts nothing twice. A
// report's points and the regions' new baselines are one pebble batch: a
// crash leaves all or nothing of it. Minute and hour rollups are gathered
// in memory and written every 10 seconds (a crash loses at most those 10
// seconds of the coarse curves, never the seconds).
//
// # Storage
//
// pebble, with seconds, minutes and hours each in time partitions (store.go
// has the keys); retention drops whole partitions. A query reads the
// coarsest resolution that still gives its range enough points and never
// more than MaxQueryPoints per curve, so a query over years costs what one
// over a day does.
//
// # What it does not do
//
// One center per deployment, no replication: a center that is down loses
// nothing the agents can buffer, and shows the rest as a gap.
package center

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/svrkit/svrkit/svrkit/monitor/rule"
)

// Config configures a Center.
type Config struct {
	// Dir holds the database. Required.
	Dir string
	// Retention of each resolution (default DefaultRetention).
	Retention Retention
	// MaxGap is the longest silence of a region across which a full
	// reading's increase is still counted (default 10s).
	MaxGap time.Duration
	// Rules are alert rules beyond those declared with the points, for
	// framework points and for operators: series name → rule.
	Rules []RuleConfig
	// EvalInterval is how often alert rules run (default 10s).
	EvalInterval time.Duration
	// Settle is how far behind now rules look, so that the seconds they
	// read are complete (default 3s).
	Settle time.Duration
	// Webhook, if set, receives every alert notification as a JSON POST.
	Webhook string
	Logger  *slog.Logger
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
}

// RuleConfig is an alert rule from configuration.
type RuleConfig struct {
	Series string `json:"series"`
	Rule   string `json:"rule"`
}

// Center is a running monitor center. Its methods are safe for concurrent
// use.
type Center struct {
	cfg Config
	db  *pebble.DB
	log *slog.Logger

	mu           sync.Mutex
	seriesByName map[string]*seriesRec
	series       []*seriesRec // by id-1
	byMonitorID  map[uint32]*seriesRec
	machines     map[string]uint32
	machineNames []string // by id-1
	regions      map[regionKey]*regionState
	totals       map[[2]uint32]*total
	pendingRoll  map[rollKey]rollup
	problems     map[string]time.Time
	alerts       *alerter

	stop      chan struct{}
	done      sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

type seriesRec struct {
	ID       uint32   `json:"id"`
	Name     string   `json:"name"`
	MonID    uint32   `json:"monitor_id,omitempty"`
	Kind     uint32   `json:"kind"`
	Unit     string   `json:"unit,omitempty"`
	Alert    string   `json:"alert,omitempty"`
	Services []string `json:"services,omitempty"`
	Problem  string   `json:"problem,omitempty"`
}

const (
	kindCounter = 1
	kindGauge   = 2
)

// heartbeatSeries is the pseudo-series whose points say a machine
// reported: 1 per second, so its rollups count the seconds.
const heartbeatSeries = 0

// Open opens (creating if needed) the center's database and starts its
// alert evaluation and retention. Close stops them.
func Open(cfg Config) (*Center, error) {
	if cfg.Dir == "" {
		return nil, errors.New("monitor center: no data directory")
	}
	if cfg.Retention == (Retention{}) {
		cfg.Retention = DefaultRetention
	}
	if cfg.MaxGap <= 0 {
		cfg.MaxGap = 10 * time.Second
	}
	if cfg.EvalInterval <= 0 {
		cfg.EvalInterval = 10 * time.Second
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	for _, r := range cfg.Rules {
		if _, err := rule.Parse(r.Rule); err != nil {
			return nil, fmt.Errorf("monitor center: rule for %s %q: %w", r.Series, r.Rule, err)
		}
	}
	db, err := openPebble(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("monitor center: %w", err)
	}
	c := &Center{
		cfg: cfg, db: db, log: cfg.Logger,
		seriesByName: map[string]*seriesRec{},
		byMonitorID:  map[uint32]*seriesRec{},
		machines:     map[string]uint32{},
		regions:      map[regionKey]*regionState{},
		totals:       map[[2]uint32]*total{},
		pendingRoll:  map[rollKey]rollup{},
		problems:     map[string]time.Time{},
		stop:         make(chan struct{}),
	}
	if err := c.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("monitor center: loading %s: %w", cfg.Dir, err)
	}
	c.alerts = newAlerter(c)
	c.done.Add(1)
	go c.background()
	return c, nil
}

// Close stops the background work and closes the database. Calls after
// the first return its result.
func (c *Center) Close() error {
	c.closeOnce.Do(func() {
		close(c.stop)
		c.done.Wait()
		c.alerts.close()
		if err := c.flushRollups(); err != nil {
			c.log.Error("monitor center: writing rollups at close", "err", err)
		}
		c.closeErr = c.db.Close()
	})
	return c.closeErr
}

func (c *Center) background() {
	defer c.done.Done()
	eval := time.NewTicker(c.cfg.EvalInterval)
	defer eval.Stop()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	roll := time.NewTicker(rollupFlush)
	defer roll.Stop()
	c.sweep()
	for {
		select {
		case <-c.stop:
			return
		case <-eval.C:
			c.alerts.evaluate(c.cfg.Now())
		case <-sweep.C:
			c.sweep()
		case <-roll.C:
			if err := c.flushRollups(); err != nil {
				c.log.Error("monitor center: writing rollups", "err", err)
			}
		}
	}
}

// sweep drops expired partitions and forgets regions silent for an hour.
func (c *Center) sweep() {
	now := c.cfg.Now()
	if err := dropExpired(c.db, now, c.cfg.Retention); err != nil {
		c.log.Error("monitor center: retention", "err", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, st := range c.regions {
		if now.UnixMilli()-st.lastMs > time.Hour.Milliseconds() {
			delete(c.regions, k)
			b := c.db.NewBatch()
			deleteRegion(b, k)
			_ = b.Commit(pebble.NoSync)
			b.Close()
		}
	}
	for p, at := range c.problems {
		if now.Sub(at) > time.Hour {
			delete(c.problems, p)
		}
	}
}

// problem records something wrong that the dashboard shows for an hour.
// c.mu must be held.
func (c *Center) problemLocked(format string, args ...any) {
	p := fmt.Sprintf(format, args...)
	if _, ok := c.problems[p]; !ok {
		c.log.Warn("monitor center: " + p)
	}
	if len(c.problems) < 1000 {
		c.problems[p] = c.cfg.Now()
	}
}

// Problems returns what the center knows to be wrong, sorted.
func (c *Center) Problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for p := range c.problems {
		out = append(out, p)
	}
	for _, s := range c.series {
		if s.Problem != "" {
			out = append(out, s.Name+": "+s.Problem)
		}
	}
	sort.Strings(out)
	return out
}

// seriesLocked returns the series named by a declaration, creating it.
func (c *Center) seriesLocked(b *pebble.Batch, name string, monID, kind uint32, unit, alert, service string) *seriesRec {
	s := c.seriesByName[name]
	if s == nil {
		s = &seriesRec{ID: uint32(len(c.series) + 1), Name: name, MonID: monID, Kind: kind, Unit: unit, Alert: alert}
		if alert != "" {
			if _, err := rule.Parse(alert); err != nil {
				s.Problem = fmt.Sprintf("alert rule %q: %v", alert, err)
			}
		}
		c.series = append(c.series, s)
		c.seriesByName[name] = s
		if monID != 0 {
			if prev := c.byMonitorID[monID]; prev != nil && prev != s {
				msg := fmt.Sprintf("monitor ID %d is declared as %q (by %s) and as %q (by %s)", monID, prev.Name, strings.Join(prev.Services, ","), name, service)
				s.Problem, prev.Problem = msg, msg
			} else {
				c.byMonitorID[monID] = s
			}
		}
		c.alerts.seriesAdded(s)
	} else if (s.Kind != kind || s.Unit != unit || s.Alert != alert || s.MonID != monID) && s.Problem == "" {
		s.Problem = fmt.Sprintf("declared differently by %s: ID %d, %s, unit %q, alert %q (the center keeps ID %d, %s, unit %q, alert %q)",
			service, monID, kindName(kind), unit, alert, s.MonID, kindName(s.Kind), s.Unit, s.Alert)
	}
	if service != "" && !slices.Contains(s.Services, service) && len(s.Services) < 64 {
		s.Services = append(s.Services, service)
		sort.Strings(s.Services)
	}
	b.Set(nameKey(prefixSeries, uint32Key(s.ID)), mustJSON(s), nil)
	b.Set(nameKey(prefixName, []byte(name)), uint32Key(s.ID), nil)
	return s
}

func kindName(k uint32) string {
	if k == kindGauge {
		return "gauge"
	}
	return "counter"
}

func (c *Center) machineLocked(b *pebble.Batch, name string) uint32 {
	if id, ok := c.machines[name]; ok {
		return id
	}
	id := uint32(len(c.machineNames) + 1)
	c.machines[name] = id
	c.machineNames = append(c.machineNames, name)
	b.Set(nameKey(prefixMachine, []byte(name)), uint32Key(id), nil)
	return id
}

func nameKey(prefix byte, rest []byte) []byte { return append([]byte{prefix}, rest...) }

func uint32Key(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// load reads the catalog, machines and region states.
func (c *Center) load() error {
	it, err := c.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixSeries}, UpperBound: []byte{prefixSeries + 1}})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		var s seriesRec
		if err := unmarshalJSON(it.Value(), &s); err != nil || s.ID == 0 {
			it.Close()
			return fmt.Errorf("series record %x: %v", it.Key(), err)
		}
		for uint32(len(c.series)) < s.ID {
			c.series = append(c.series, nil)
		}
		rec := s
		c.series[s.ID-1] = &rec
		c.seriesByName[s.Name] = &rec
		if s.MonID != 0 && c.byMonitorID[s.MonID] == nil {
			c.byMonitorID[s.MonID] = &rec
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	for i, s := range c.series {
		if s == nil {
			return fmt.Errorf("series %d missing from the catalog", i+1)
		}
	}
	it, err = c.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixMachine}, UpperBound: []byte{prefixMachine + 1}})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		name := string(it.Key()[1:])
		id := binary.BigEndian.Uint32(it.Value())
		c.machines[name] = id
		for uint32(len(c.machineNames)) < id {
			c.machineNames = append(c.machineNames, "")
		}
		c.machineNames[id-1] = name
	}
	if err := it.Close(); err != nil {
		return err
	}
	regions, err := loadRegions(c.db, c.log)
	if err != nil {
		return err
	}
	c.regions = regions
	return nil
}

// Machines returns the machines that ever reported.
func (c *Center) Machines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.machineNames)
}
