package rule

import (
	"math"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want Rule
	}{
		{"sum over 1m > 1000", Rule{Agg: Sum, Window: time.Minute, Op: ">", Threshold: 1000}},
		{"avg over 5m <= 10", Rule{Agg: Avg, Window: 5 * time.Minute, Op: "<=", Threshold: 10}},
		{"sum over 5m / im.send.calls > 5% for 2m", Rule{Agg: Sum, Window: 5 * time.Minute, Denominator: "im.send.calls", Op: ">", Threshold: 0.05, For: 2 * time.Minute}},
		{"sum over 5m/im.send.calls>0.05", Rule{Agg: Sum, Window: 5 * time.Minute, Denominator: "im.send.calls", Op: ">", Threshold: 0.05}},
		{"sum over 10m vs yesterday < -50%", Rule{Agg: Sum, Window: 10 * time.Minute, Compare: Yesterday, Op: "<", Threshold: -0.5}},
		{"max over 1m vs previous >= 300%", Rule{Agg: Max, Window: time.Minute, Compare: Previous, Op: ">=", Threshold: 3}},
		{"nodata for 5m", Rule{NoData: true, For: 5 * time.Minute}},
		{"min over 1d < 1", Rule{Agg: Min, Window: 24 * time.Hour, Op: "<", Threshold: 1}},
	} {
		got, err := Parse(tc.src)
		if err != nil {
			t.Errorf("%q: %v", tc.src, err)
			continue
		}
		tc.want.Source = tc.src
		if *got != tc.want {
			t.Errorf("%q: got %+v, want %+v", tc.src, *got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for src, want := range map[string]string{
		"":                            "column 1: empty rule",
		"total over 1m > 1":           `column 1: expected sum, avg, max, min or nodata, not "total"`,
		"sum 1m > 1":                  `column 5: expected "over", not "1m"`,
		"sum over banana > 1":         `column 10: expected a duration such as 30s, 5m, 1h or 1d, not "banana"`,
		"sum over 2d > 1":             `column 10: a duration must be at most 24h0m0s, not "2d"`,
		"sum over 500ms > 1":          `column 10: a duration must be at least 1s, not "500ms"`,
		"sum over 1m = 1":             `column 13: expected a comparison: >, >=, < or <=, not "="`,
		"sum over 1m >":               `column 14: expected a number, found the end of the rule`,
		"sum over 1m > x":             `column 15: expected a number, not "x"`,
		"sum over 1m vs lastweek > 1": `column 16: expected yesterday or previous after vs, not "lastweek"`,
		"sum over 1m vs previous > 3": `column 27: a change vs previous is a percent: write it with %, e.g. -50%, not "3"`,
		"sum over 1m > 5%":            `column 15: a percent needs a ratio (/ NAME) or a change (vs yesterday|previous), not "5%"`,
		"sum over 1m / Bad > 1":       `column 15: expected a point's name after '/', not "Bad"`,
		"sum over 1m > 1 for":         `column 20: expected a duration such as 30s, 5m, 1h or 1d, found the end of the rule`,
		"sum over 1m > 1 and more":    `column 17: unexpected "and" after the rule`,
		"nodata 5m":                   `column 8: expected "for", not "5m"`,
	} {
		_, err := Parse(src)
		if err == nil || err.Error() != want {
			t.Errorf("%q: error %v, want %s", src, err, want)
		}
	}
}

func TestEval(t *testing.T) {
	nan := math.NaN()
	if v, ok := Aggregate(Sum, []float64{1, nan, 2}); !ok || v != 3 {
		t.Errorf("sum = %v %v", v, ok)
	}
	if v, ok := Aggregate(Avg, []float64{1, nan, 2}); !ok || v != 1.5 {
		t.Errorf("avg = %v %v", v, ok)
	}
	if v, _ := Aggregate(Max, []float64{1, 7, 2}); v != 7 {
		t.Errorf("max = %v", v)
	}
	if _, ok := Aggregate(Min, []float64{nan}); ok {
		t.Error("no data must be ok=false")
	}
	if Change(50, 100) != -0.5 || !math.IsInf(Change(1, 0), 1) || Change(0, 0) != 0 {
		t.Error("Change")
	}
	r, _ := Parse("sum over 1m >= 3")
	if !r.Holds(3) || r.Holds(2) {
		t.Error("Holds")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"sum over 1m > 1000", "nodata for 5m", "sum over 5m / a.b > 5% for 2m", "max over 1m vs previous >= 300%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err == nil && r.Source != s {
			t.Fatal("source not kept")
		}
	})
}
