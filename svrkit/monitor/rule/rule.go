// Package rule is the alert-rule language of svrkit's monitor: one line
// per rule, written beside a monitor ID in the IDL or in the center's
// config, parsed here by the IDL compiler (to report mistakes at their
// file:line:col), by the process that declares the ID, and by the center
// that evaluates it. It imports nothing of the runtime.
//
// # Syntax
//
//	AGG over WINDOW [/ NAME] [vs yesterday|previous] OP NUMBER[%] [for DURATION]
//	nodata for DURATION
//
// AGG is sum, avg, max or min of the curve's per-second values — summed
// over machines first — within the last WINDOW. OP is >, >=, < or <=.
// Durations are Go's (90s, 5m, 1h30m) or whole days (1d).
//
//	sum over 1m > 1000                     more than 1,000 in the last minute
//	avg over 5m < 10                       fewer than 10 a second on average
//	sum over 5m / im.send.calls > 5%       ratio to another point over the same window
//	sum over 10m vs yesterday < -50%       half of the same ten minutes yesterday
//	sum over 1m vs previous > 300%         quadrupled against the minute before
//	max over 1m > 200 for 3m               held for three minutes before firing
//	nodata for 5m                          no machine reported a value for 5 minutes
//
// With "vs", NUMBER is a change in percent ((now - then) / then). A ratio
// may be written as a fraction (0.05) or a percent (5%).
//
// # States
//
// A rule whose condition holds becomes pending, and firing once it has
// held for its "for" duration (at once without one); it is resolved when
// the condition stops holding. The center notifies on firing and on
// resolved only, so one incident is one pair of notifications.
package rule

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Agg is how a window's per-second values become one number.
type Agg string

// The aggregations.
const (
	Sum Agg = "sum"
	Avg Agg = "avg"
	Max Agg = "max"
	Min Agg = "min"
)

// Compare is what the value is compared against.
type Compare string

// The comparisons.
const (
	Absolute  Compare = ""          // the value itself
	Yesterday Compare = "yesterday" // change against the same window a day earlier
	Previous  Compare = "previous"  // change against the window just before
)

// Rule is a parsed rule.
type Rule struct {
	// NoData rules fire when no value arrived for For.
	NoData bool
	Agg    Agg
	Window time.Duration
	// Denominator names the point the value is divided by, if any.
	Denominator string
	Compare     Compare
	Op          string // ">", ">=", "<", "<="
	// Threshold is the number to compare with; a percent is stored as a
	// fraction (5% is 0.05).
	Threshold float64
	// For is how long the condition must hold before the rule fires.
	For time.Duration
	// Source is the text the rule was parsed from.
	Source string
}

// MaxWindow bounds windows and durations: a rule reads at most this much
// of a curve per evaluation.
const MaxWindow = 24 * time.Hour

// Error is a mistake in a rule, at a 1-based column of its text.
type Error struct {
	Column int
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("column %d: %s", e.Column, e.Msg) }

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$`)

type token struct {
	text string
	col  int
}

func tokenize(s string) []token {
	var toks []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '>' || c == '<':
			if i+1 < len(s) && s[i+1] == '=' {
				toks = append(toks, token{s[i : i+2], i + 1})
				i += 2
			} else {
				toks = append(toks, token{s[i : i+1], i + 1})
				i++
			}
		case c == '/':
			toks = append(toks, token{"/", i + 1})
			i++
		default:
			j := i
			for j < len(s) && s[j] != ' ' && s[j] != '\t' && s[j] != '<' && s[j] != '>' && s[j] != '/' {
				j++
			}
			toks = append(toks, token{s[i:j], i + 1})
			i = j
		}
	}
	return toks
}

// Parse parses one rule. Its error is an *Error.
func Parse(s string) (*Rule, error) {
	toks := tokenize(s)
	p := &parser{toks: toks, end: len(s) + 1}
	r := &Rule{Source: s}
	if len(toks) == 0 {
		return nil, &Error{1, "empty rule"}
	}
	if toks[0].text == "nodata" {
		p.i = 1
		if err := p.word("for"); err != nil {
			return nil, err
		}
		d, err := p.duration()
		if err != nil {
			return nil, err
		}
		r.NoData, r.For = true, d
		return r, p.done()
	}
	switch a := Agg(toks[0].text); a {
	case Sum, Avg, Max, Min:
		r.Agg = a
	default:
		return nil, &Error{toks[0].col, fmt.Sprintf("expected sum, avg, max, min or nodata, not %q", toks[0].text)}
	}
	p.i = 1
	if err := p.word("over"); err != nil {
		return nil, err
	}
	w, err := p.duration()
	if err != nil {
		return nil, err
	}
	r.Window = w
	if p.peek() == "/" {
		p.i++
		t, ok := p.next()
		if !ok || !nameRE.MatchString(t.text) {
			return nil, p.errAt(t, "expected a point's name after '/'")
		}
		r.Denominator = t.text
	}
	if p.peek() == "vs" {
		p.i++
		t, ok := p.next()
		switch {
		case ok && t.text == "yesterday":
			r.Compare = Yesterday
		case ok && t.text == "previous":
			r.Compare = Previous
		default:
			return nil, p.errAt(t, "expected yesterday or previous after vs")
		}
	}
	t, ok := p.next()
	switch {
	case ok && (t.text == ">" || t.text == ">=" || t.text == "<" || t.text == "<="):
		r.Op = t.text
	default:
		return nil, p.errAt(t, "expected a comparison: >, >=, < or <=")
	}
	t, ok = p.next()
	if !ok {
		return nil, p.errAt(t, "expected a number")
	}
	num, pct := strings.CutSuffix(t.text, "%")
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, p.errAt(t, "expected a number")
	}
	if pct {
		v /= 100
	}
	if r.Compare != Absolute && !pct {
		return nil, p.errAt(t, "a change vs "+string(r.Compare)+" is a percent: write it with %, e.g. -50%")
	}
	if r.Compare == Absolute && r.Denominator == "" && pct {
		return nil, p.errAt(t, "a percent needs a ratio (/ NAME) or a change (vs yesterday|previous)")
	}
	r.Threshold = v
	if p.peek() == "for" {
		p.i++
		d, err := p.duration()
		if err != nil {
			return nil, err
		}
		r.For = d
	}
	return r, p.done()
}

type parser struct {
	toks []token
	i    int
	end  int
}

func (p *parser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i].text
	}
	return ""
}

func (p *parser) next() (token, bool) {
	if p.i < len(p.toks) {
		t := p.toks[p.i]
		p.i++
		return t, true
	}
	return token{col: p.end}, false
}

func (p *parser) errAt(t token, msg string) error {
	if t.text == "" {
		return &Error{t.col, msg + ", found the end of the rule"}
	}
	return &Error{t.col, fmt.Sprintf("%s, not %q", msg, t.text)}
}

func (p *parser) word(w string) error {
	t, ok := p.next()
	if !ok || t.text != w {
		return p.errAt(t, "expected "+strconv.Quote(w))
	}
	return nil
}

func (p *parser) duration() (time.Duration, error) {
	t, ok := p.next()
	if !ok {
		return 0, p.errAt(t, "expected a duration such as 30s, 5m, 1h or 1d")
	}
	var d time.Duration
	var err error
	if n, isDays := strings.CutSuffix(t.text, "d"); isDays {
		var days int
		days, err = strconv.Atoi(n)
		d = time.Duration(days) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(t.text)
	}
	switch {
	case err != nil:
		return 0, p.errAt(t, "expected a duration such as 30s, 5m, 1h or 1d")
	case d < time.Second:
		return 0, p.errAt(t, "a duration must be at least 1s")
	case d > MaxWindow:
		return 0, p.errAt(t, fmt.Sprintf("a duration must be at most %v", MaxWindow))
	case d%time.Second != 0:
		return 0, p.errAt(t, "a duration must be whole seconds")
	}
	return d, nil
}

func (p *parser) done() error {
	if p.i < len(p.toks) {
		t := p.toks[p.i]
		return &Error{t.col, fmt.Sprintf("unexpected %q after the rule", t.text)}
	}
	return nil
}

// Holds reports whether value satisfies the rule's comparison.
func (r *Rule) Holds(value float64) bool {
	switch r.Op {
	case ">":
		return value > r.Threshold
	case ">=":
		return value >= r.Threshold
	case "<":
		return value < r.Threshold
	case "<=":
		return value <= r.Threshold
	}
	return false
}

// Change is the relative change from then to now used by vs rules: +Inf
// when something appeared from nothing, 0 when both are zero.
func Change(now, then float64) float64 {
	if then == 0 {
		if now == 0 {
			return 0
		}
		return math.Inf(1)
	}
	return (now - then) / math.Abs(then)
}

// Aggregate folds a window's per-second values (NaN for seconds without
// data) with agg. ok is false when no second had data.
func Aggregate(agg Agg, values []float64) (v float64, ok bool) {
	n := 0
	for _, x := range values {
		if math.IsNaN(x) {
			continue
		}
		switch {
		case n == 0:
			v = x
		case agg == Max:
			v = max(v, x)
		case agg == Min:
			v = min(v, x)
		default:
			v += x
		}
		n++
	}
	if n == 0 {
		return 0, false
	}
	if agg == Avg {
		v /= float64(n)
	}
	return v, true
}
