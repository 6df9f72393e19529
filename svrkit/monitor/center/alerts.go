package center

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/svrkit/svrkit/svrkit/monitor/monitorpb"
	"github.com/svrkit/svrkit/svrkit/monitor/rule"
)

// Alerting. Every EvalInterval each rule — declared with a point, or
// configured — is evaluated on the point's curve summed over machines, up
// to Settle before now (the last seconds are still arriving). A rule goes
// ok → pending (its condition holds) → firing (it held for its "for") →
// ok again (it no longer holds: "resolved"). Only firing and resolved are
// notified, to the log and the webhook, so one incident is two
// notifications however long it lasts; the states are stored, so a
// restarted center does not notify again what it already did.

// Notification is what the webhook receives, as JSON.
type Notification struct {
	Series  string  `json:"series"`
	Rule    string  `json:"rule"`
	State   string  `json:"state"` // "firing" or "resolved"
	Value   float64 `json:"value"`
	Since   int64   `json:"since_unix_ms"`
	Message string  `json:"message"`
}

type alertState struct {
	Series  string  `json:"series"`
	Rule    string  `json:"rule"`
	State   string  `json:"state"` // ok, pending, firing
	Since   int64   `json:"since_unix_ms"`
	Value   float64 `json:"value"`
	Message string  `json:"message"`
	// Resolved is when a firing rule last resolved, shown for a while.
	Resolved int64 `json:"resolved_unix_ms,omitempty"`
}

type ruleRef struct {
	series string
	r      *rule.Rule
}

type alerter struct {
	c      *Center
	mu     sync.Mutex
	rules  map[string]ruleRef // key: series + "\x00" + rule
	states map[string]*alertState
	out    chan Notification
	wg     sync.WaitGroup
	client *http.Client
}

func newAlerter(c *Center) *alerter {
	a := &alerter{c: c, rules: map[string]ruleRef{}, states: map[string]*alertState{},
		out: make(chan Notification, 256), client: &http.Client{Timeout: 5 * time.Second}}
	for _, rc := range c.cfg.Rules {
		r, _ := rule.Parse(rc.Rule) // checked by Open
		a.rules[rc.Series+"\x00"+rc.Rule] = ruleRef{rc.Series, r}
	}
	for _, s := range c.series {
		a.seriesAdded(s)
	}
	it, err := c.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixAlert}, UpperBound: []byte{prefixAlert + 1}})
	if err == nil {
		for it.First(); it.Valid(); it.Next() {
			var st alertState
			if json.Unmarshal(it.Value(), &st) == nil {
				a.states[string(it.Key()[1:])] = &st
			}
		}
		it.Close()
	}
	a.wg.Add(1)
	go a.deliver()
	return a
}

// seriesAdded registers the rule a series was declared with.
func (a *alerter) seriesAdded(s *seriesRec) {
	if a == nil || s.Alert == "" {
		return
	}
	r, err := rule.Parse(s.Alert)
	if err != nil {
		return // the series carries the problem
	}
	a.mu.Lock()
	a.rules[s.Name+"\x00"+s.Alert] = ruleRef{s.Name, r}
	a.mu.Unlock()
}

func (a *alerter) close() {
	close(a.out)
	a.wg.Wait()
}

// window returns the per-second values of series over [from, to), summed
// over machines, NaN where nothing was reported.
func (a *alerter) window(series string, from, to time.Time) ([]float64, error) {
	reply, err := a.c.Query(&monitorpb.QueryRequest{Name: series, FromUnixMs: from.UnixMilli(), ToUnixMs: to.UnixMilli() - 1, MaxPoints: MaxQueryPoints})
	if err != nil {
		return nil, err
	}
	return reply.GetSum().GetValues(), nil
}

// value computes a rule's value at now; ok is false when there is no data
// to judge by.
func (a *alerter) value(ref ruleRef, now time.Time) (v float64, ok bool, err error) {
	r := ref.r
	end := now.Add(-a.c.cfg.Settle).Truncate(time.Second)
	agg := func(series string, shift time.Duration) (float64, bool, error) {
		vals, err := a.window(series, end.Add(-r.Window-shift), end.Add(-shift))
		if err != nil {
			return 0, false, err
		}
		x, ok := rule.Aggregate(r.Agg, vals)
		return x, ok, nil
	}
	v, ok, err = agg(ref.series, 0)
	if err != nil || !ok {
		return v, ok, err
	}
	if r.Denominator != "" {
		d, dok, err := agg(r.Denominator, 0)
		if err != nil || !dok || d == 0 {
			return 0, false, err
		}
		v /= d
	}
	switch r.Compare {
	case rule.Yesterday, rule.Previous:
		shift := 24 * time.Hour
		if r.Compare == rule.Previous {
			shift = r.Window
		}
		then, tok, err := agg(ref.series, shift)
		if err != nil || !tok {
			return 0, false, err
		}
		v = rule.Change(v, then)
	}
	return v, true, nil
}

// holds evaluates a rule: whether its condition holds and the value.
func (a *alerter) holds(ref ruleRef, now time.Time) (bool, float64, string, error) {
	r := ref.r
	if r.NoData {
		end := now.Add(-a.c.cfg.Settle).Truncate(time.Second)
		vals, err := a.window(ref.series, end.Add(-r.For), end)
		if err != nil {
			return false, 0, "", err
		}
		for _, x := range vals {
			if !math.IsNaN(x) && x != 0 {
				return false, 0, "", nil
			}
		}
		return true, 0, fmt.Sprintf("%s: no data for %v", ref.series, r.For), nil
	}
	v, ok, err := a.value(ref, now)
	if err != nil || !ok {
		return false, v, "", err
	}
	if !r.Holds(v) {
		return false, v, "", nil
	}
	shown := fmt.Sprintf("%g", v)
	if r.Compare != rule.Absolute || r.Denominator != "" {
		shown = fmt.Sprintf("%.1f%%", v*100)
	}
	return true, v, fmt.Sprintf("%s: %s is %s (rule: %s)", ref.series, string(r.Agg)+" over "+r.Window.String(), shown, r.Source), nil
}

// evaluate runs every rule once.
func (a *alerter) evaluate(now time.Time) {
	a.mu.Lock()
	refs := make(map[string]ruleRef, len(a.rules))
	for k, v := range a.rules {
		refs[k] = v
	}
	a.mu.Unlock()
	for key, ref := range refs {
		hold, v, msg, err := a.holds(ref, now)
		if err != nil {
			continue // a series not reported yet has no curve to judge
		}
		a.transition(key, ref, hold, v, msg, now)
	}
}

func (a *alerter) transition(key string, ref ruleRef, hold bool, v float64, msg string, now time.Time) {
	a.mu.Lock()
	st := a.states[key]
	if st == nil {
		st = &alertState{Series: ref.series, Rule: ref.r.Source, State: "ok"}
		a.states[key] = st
	}
	prev := st.State
	var note *Notification
	// A nodata rule's duration is its window: it fires when it holds.
	pendFor := ref.r.For
	if ref.r.NoData {
		pendFor = 0
	}
	switch {
	case hold && st.State == "ok":
		st.State, st.Since = "pending", now.UnixMilli()
		if pendFor == 0 {
			st.State = "firing"
		}
	case hold && st.State == "pending" && now.Sub(time.UnixMilli(st.Since)) >= pendFor:
		st.State = "firing"
	case !hold && st.State == "pending":
		st.State = "ok"
	case !hold && st.State == "firing":
		st.State, st.Resolved = "ok", now.UnixMilli()
		note = &Notification{Series: st.Series, Rule: st.Rule, State: "resolved", Value: v, Since: st.Since,
			Message: fmt.Sprintf("%s: resolved (rule: %s)", st.Series, st.Rule)}
	}
	st.Value = v
	if hold {
		st.Message = msg
	}
	if st.State == "firing" && prev != "firing" {
		note = &Notification{Series: st.Series, Rule: st.Rule, State: "firing", Value: v, Since: st.Since, Message: msg}
	}
	changed := prev != st.State
	saved := *st
	a.mu.Unlock()
	if changed {
		_ = a.c.db.Set(append([]byte{prefixAlert}, key...), mustJSON(saved), pebble.NoSync)
	}
	if note != nil {
		a.notify(*note)
	}
}

func (a *alerter) notify(n Notification) {
	if n.State == "firing" {
		a.c.log.Warn("monitor alert firing", "series", n.Series, "rule", n.Rule, "value", n.Value, "message", n.Message)
	} else {
		a.c.log.Info("monitor alert resolved", "series", n.Series, "rule", n.Rule)
	}
	if a.c.cfg.Webhook == "" {
		return
	}
	select {
	case a.out <- n:
	default:
		a.c.log.Error("monitor alert webhook queue full; notification dropped", "series", n.Series, "state", n.State)
	}
}

// deliver posts notifications to the webhook, each tried three times.
func (a *alerter) deliver() {
	defer a.wg.Done()
	for n := range a.out {
		body := mustJSON(n)
		var err error
		for try, backoff := 0, 200*time.Millisecond; try < 3; try, backoff = try+1, backoff*4 {
			if try > 0 {
				time.Sleep(backoff)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			var req *http.Request
			req, err = http.NewRequestWithContext(ctx, http.MethodPost, a.c.cfg.Webhook, bytes.NewReader(body))
			if err == nil {
				req.Header.Set("Content-Type", "application/json")
				var res *http.Response
				if res, err = a.client.Do(req); err == nil {
					res.Body.Close()
					if res.StatusCode >= 300 {
						err = fmt.Errorf("status %s", res.Status)
					}
				}
			}
			cancel()
			if err == nil {
				break
			}
		}
		if err != nil {
			a.c.log.Error("monitor alert webhook failed", "url", a.c.cfg.Webhook, "series", n.Series, "state", n.State, "err", err)
		}
	}
}

// Alerts returns the rules that fire now, and those resolved in the last
// hour.
func (c *Center) Alerts() *monitorpb.ListAlertsReply {
	a := c.alerts
	reply := &monitorpb.ListAlertsReply{Problems: c.Problems()}
	cut := c.cfg.Now().Add(-time.Hour).UnixMilli()
	a.mu.Lock()
	for _, st := range a.states {
		switch {
		case st.State == "firing":
			reply.Alerts = append(reply.Alerts, &monitorpb.Alert{Series: st.Series, Rule: st.Rule, State: "firing", Value: st.Value, SinceUnixMs: st.Since, Message: st.Message})
		case st.Resolved > cut:
			reply.Alerts = append(reply.Alerts, &monitorpb.Alert{Series: st.Series, Rule: st.Rule, State: "resolved", Value: st.Value, SinceUnixMs: st.Resolved,
				Message: st.Series + ": resolved"})
		}
	}
	a.mu.Unlock()
	sort.Slice(reply.Alerts, func(i, j int) bool {
		x, y := reply.Alerts[i], reply.Alerts[j]
		if x.State != y.State {
			return x.State == "firing"
		}
		return x.SinceUnixMs > y.SinceUnixMs
	})
	return reply
}

// EvaluateAlerts runs every rule now, as the background loop does every
// EvalInterval; tests call it to step the clock.
func (c *Center) EvaluateAlerts() { c.alerts.evaluate(c.cfg.Now()) }
