package rpcbench

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"one", []float64{7}, 7},
		{"odd unsorted", []float64{3, 1, 2}, 2},
		{"even", []float64{4, 1, 3, 2}, 2.5},
		{"outlier ignored", []float64{100, 101, 5000}, 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.in...)
			if got := Median(tt.in); got != tt.want {
				t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
			}
			for i := range in {
				if in[i] != tt.in[i] {
					t.Fatalf("Median modified its input")
				}
			}
		})
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median(nil) is not NaN")
	}
}

func TestRatio(t *testing.T) {
	if got := Ratio(300, 100); got != 3 {
		t.Errorf("Ratio(300, 100) = %v", got)
	}
	if got := Ratio(70, 100); got != 0.7 {
		t.Errorf("Ratio(70, 100) = %v", got)
	}
	if !math.IsNaN(Ratio(1, 0)) || !math.IsNaN(Ratio(1, math.NaN())) {
		t.Error("Ratio by zero or NaN is not NaN")
	}
}

func TestMedianSampleTakesEachFieldsMedian(t *testing.T) {
	runs := []Sample{
		{ReqPerSec: 100, P99: 9 * time.Millisecond, AllocsPerCall: 5},
		{ReqPerSec: 300, P99: 1 * time.Millisecond, AllocsPerCall: 7},
		{ReqPerSec: 200, P99: 5 * time.Millisecond, AllocsPerCall: 6, FirstError: "boom"},
	}
	m := MedianSample(runs)
	if m.ReqPerSec != 200 || m.P99 != 5*time.Millisecond || m.AllocsPerCall != 6 {
		t.Errorf("MedianSample = %+v, want req/s 200, p99 5ms, allocs 6", m)
	}
	if m.FirstError != "boom" {
		t.Errorf("FirstError = %q, want the run's error kept", m.FirstError)
	}
}

// sampleReport is a report with known medians, for checking what the table
// and the JSON derive from them.
func sampleReport() *Report {
	res := func(sys string, rps float64, p99 time.Duration, allocs, fw float64) *Result {
		return &Result{System: sys, Size: 1024, Callers: 64, Median: Sample{
			ReqPerSec: rps, P50: p99 / 4, P99: p99, P999: 2 * p99,
			AllocsPerCall: allocs, FrameworkAllocsPerCall: fw,
			BytesPerCall: 2048, FrameworkBytesPerCall: 100,
		}}
	}
	row := &Row{Size: 1024, Callers: 64, Results: map[string]*Result{
		"svrkit":  res("svrkit", 300000, 800*time.Microsecond, 6.5, 1.5),
		"grpc":    res("grpc", 80000, 3*time.Millisecond, 130, 125),
		"ceiling": res("ceiling", 400000, 500*time.Microsecond, 0, 0),
	}}
	row.SvrkitOverGRPC = row.ratio("svrkit", "grpc")
	row.SvrkitOverCeiling = row.ratio("svrkit", "ceiling")
	return &Report{
		Machine: Machine{Cores: 2, GOMAXPROCS: 2, CPU: "Test CPU", Go: "go1.26", OS: "linux/amd64", Date: "2026-01-01 00:00 UTC"},
		Runs:    3, DurationNS: int64(2 * time.Second), WarmupNS: int64(500 * time.Millisecond),
		Systems: []string{"svrkit", "grpc", "ceiling"},
		Rows:    []*Row{row},
	}
}

func TestRowRatios(t *testing.T) {
	row := sampleReport().Rows[0]
	if row.SvrkitOverGRPC != 3.75 {
		t.Errorf("svrkit/grpc = %v, want 3.75", row.SvrkitOverGRPC)
	}
	if row.SvrkitOverCeiling != 0.75 {
		t.Errorf("svrkit/ceiling = %v, want 0.75", row.SvrkitOverCeiling)
	}
	delete(row.Results, "grpc")
	if !math.IsNaN(row.ratio("svrkit", "grpc")) {
		t.Error("ratio with a missing side is not NaN")
	}
}

func TestWriteTable(t *testing.T) {
	tableHas(t, sampleReport(),
		"machine: 2 cores (GOMAXPROCS 2), Test CPU, go1.26 linux/amd64",
		"| size | callers | svrkit req/s | grpc req/s | ceiling req/s | svrkit/grpc | svrkit/ceiling |",
		"| 1 KiB | 64 | 300000 | 80000 | 400000 | 3.75× | 75% | 200µs / 800µs / 1.60ms |",
		"6.5 (1.5)",
		"✅ 3.75× gRPC req/s",
		"✅ lower p99 800µs vs gRPC 3.00ms",
		"✅ 75% of ceiling",
		"✅ 1.5 framework allocs/call",
	)
}

// tableHas fails t unless rep's markdown table contains every line part
// in wants.
func tableHas(t *testing.T, rep *Report, wants ...string) {
	t.Helper()
	var b bytes.Buffer
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// With ceiling-proto in the run, the table and the ceiling target say what
// protobuf alone leaves of the ceiling and how far svrkit is from that.
func TestWriteTableShowsTheProtobufBound(t *testing.T) {
	rep := sampleReport()
	row := rep.Rows[0]
	row.Results["ceiling-proto"] = &Result{System: "ceiling-proto", Size: 1024, Callers: 64, Median: Sample{ReqPerSec: 240000, AllocsPerCall: 5, FrameworkAllocsPerCall: 0}}
	rep.Systems = append(rep.Systems, "ceiling-proto")
	tableHas(t, rep,
		"| svrkit/grpc | svrkit/ceiling | ceiling-proto/ceiling | svrkit/ceiling-proto |",
		"| 1 KiB | 64 | 300000 | 80000 | 400000 | 240000 | 3.75× | 75% | 60% | 125% |",
		"✅ 75% of ceiling (≥ 70%) (protobuf alone, ceiling-proto: 60% of ceiling; svrkit 125% of ceiling-proto)",
	)
}

func TestWriteJSONWritesMissingRatiosAsNull(t *testing.T) {
	rep := sampleReport()
	row := rep.Rows[0]
	delete(row.Results, "ceiling")
	row.SvrkitOverCeiling = row.ratio("svrkit", "ceiling")
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Rows []struct {
			SvrkitOverGRPC    *float64 `json:"svrkit_over_grpc"`
			SvrkitOverCeiling *float64 `json:"svrkit_over_ceiling"`
			Results           map[string]struct {
				Median struct {
					ReqPerSec float64 `json:"req_per_sec"`
					P99       int64   `json:"p99_ns"`
				} `json:"median"`
			} `json:"results"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	r := got.Rows[0]
	if r.SvrkitOverGRPC == nil || *r.SvrkitOverGRPC != 3.75 {
		t.Errorf("svrkit_over_grpc = %v, want 3.75", r.SvrkitOverGRPC)
	}
	if r.SvrkitOverCeiling != nil {
		t.Errorf("svrkit_over_ceiling = %v, want null", *r.SvrkitOverCeiling)
	}
	if m := r.Results["svrkit"].Median; m.ReqPerSec != 300000 || m.P99 != int64(800*time.Microsecond) {
		t.Errorf("svrkit median = %+v", m)
	}
}

func TestProtoCost(t *testing.T) {
	// Decoding two messages with a payload each: at least the two message
	// structs, the two payload copies and the handler's response.
	c := ProtoCost(1024)
	if c.Allocs < 4 || c.Allocs > 8 {
		t.Errorf("ProtoCost(1024).Allocs = %v, want 4..8", c.Allocs)
	}
	if c.Bytes < 2*1024 {
		t.Errorf("ProtoCost(1024).Bytes = %v, want at least two payload copies", c.Bytes)
	}
}
