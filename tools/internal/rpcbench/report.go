package rpcbench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"time"
)

var nan = math.NaN()

// Machine describes where the numbers were measured.
type Machine struct {
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPU        string `json:"cpu"`
	Go         string `json:"go"`
	OS         string `json:"os"`
	Date       string `json:"date"`
}

// DescribeMachine reads the machine line: cores, the CPU model from
// /proc/cpuinfo, the Go version and today's date.
func DescribeMachine() Machine {
	return Machine{
		Cores:      runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		CPU:        cpuModel(),
		Go:         runtime.Version(),
		OS:         runtime.GOOS + "/" + runtime.GOARCH,
		Date:       time.Now().UTC().Format("2006-01-02 15:04 MST"),
	}
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// String is the machine line printed above the table.
func (m Machine) String() string {
	return fmt.Sprintf("%d cores (GOMAXPROCS %d), %s, %s %s, %s",
		m.Cores, m.GOMAXPROCS, m.CPU, m.Go, m.OS, m.Date)
}

// MarshalJSON writes the ratios as numbers, or null where a side was not
// run (JSON has no NaN).
func (r *Row) MarshalJSON() ([]byte, error) {
	type plain Row
	return json.Marshal(struct {
		*plain
		SvrkitOverGRPC    *float64 `json:"svrkit_over_grpc"`
		SvrkitOverCeiling *float64 `json:"svrkit_over_ceiling"`
	}{(*plain)(r), finite(r.SvrkitOverGRPC), finite(r.SvrkitOverCeiling)})
}

func finite(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteTable writes the report as markdown: the machine line, one row per
// payload size × callers with every system's medians, the ratios, and the
// issue's targets checked against the cells they are stated for.
func (rep *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "machine: %s\n\n", rep.Machine)
	fmt.Fprintf(&b, "medians of %d run(s), %s measured per cell after %s warm-up; latencies p50 / p99 / p999; allocs and bytes per call count client + server + protobuf, with the framework's share (protobuf messages subtracted) in parentheses.\n\n",
		rep.Runs, time.Duration(rep.DurationNS), time.Duration(rep.WarmupNS))

	head := []string{"size", "callers"}
	for _, s := range rep.Systems {
		head = append(head, s+" req/s")
	}
	showGRPC := has(rep.Systems, "svrkit") && has(rep.Systems, "grpc")
	showCeil := has(rep.Systems, "svrkit") && has(rep.Systems, "ceiling")
	showProto := has(rep.Systems, "ceiling-proto") && has(rep.Systems, "ceiling")
	showOverProto := has(rep.Systems, "svrkit") && has(rep.Systems, "ceiling-proto")
	if showGRPC {
		head = append(head, "svrkit/grpc")
	}
	if showCeil {
		head = append(head, "svrkit/ceiling")
	}
	if showProto {
		head = append(head, "ceiling-proto/ceiling")
	}
	if showOverProto {
		head = append(head, "svrkit/ceiling-proto")
	}
	for _, s := range rep.Systems {
		head = append(head, s+" latency")
	}
	for _, s := range rep.Systems {
		head = append(head, s+" allocs/call")
	}
	for _, s := range rep.Systems {
		head = append(head, s+" B/call")
	}
	for _, s := range rep.Systems {
		head = append(head, s+" CPU/call")
	}
	writeRow(&b, head)
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = "---:"
	}
	writeRow(&b, sep)

	for _, row := range rep.Rows {
		cells := []string{fmtSize(row.Size), fmt.Sprint(row.Callers)}
		for _, s := range rep.Systems {
			cells = append(cells, fmtRate(row.Results[s]))
		}
		if showGRPC {
			cells = append(cells, fmtRatio(row.SvrkitOverGRPC, "×"))
		}
		if showCeil {
			cells = append(cells, fmtRatio(row.SvrkitOverCeiling, "%"))
		}
		if showProto {
			cells = append(cells, fmtRatio(row.ratio("ceiling-proto", "ceiling"), "%"))
		}
		if showOverProto {
			cells = append(cells, fmtRatio(row.ratio("svrkit", "ceiling-proto"), "%"))
		}
		for _, s := range rep.Systems {
			m := row.Results[s].Median
			cells = append(cells, fmt.Sprintf("%s / %s / %s", fmtDuration(m.P50), fmtDuration(m.P99), fmtDuration(m.P999)))
		}
		for _, s := range rep.Systems {
			m := row.Results[s].Median
			cells = append(cells, withShare(fmt.Sprintf("%.1f", m.AllocsPerCall), fmt.Sprintf("%.1f", m.FrameworkAllocsPerCall), m.AllocsPerCall != m.FrameworkAllocsPerCall))
		}
		for _, s := range rep.Systems {
			m := row.Results[s].Median
			cells = append(cells, withShare(fmtBytes(m.BytesPerCall), fmtBytes(m.FrameworkBytesPerCall), m.BytesPerCall != m.FrameworkBytesPerCall))
		}
		for _, s := range rep.Systems {
			cells = append(cells, fmtDuration(row.Results[s].Median.CPUPerCall))
		}
		writeRow(&b, cells)
	}

	if targets := rep.targets(); len(targets) > 0 {
		b.WriteString("\nTargets (64 and 1024 callers, 16 B and 1 KiB): svrkit ≥ 3× gRPC req/s with lower p99, ≥ 70% of the ceiling, ≤ 2 framework allocs/call.\n\n")
		for _, t := range targets {
			b.WriteString(t)
			b.WriteByte('\n')
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// targets checks the goals on the cells they are stated for.
func (rep *Report) targets() []string {
	var out []string
	for _, row := range rep.Rows {
		if (row.Callers != 64 && row.Callers != 1024) || (row.Size != 16 && row.Size != 1024) {
			continue
		}
		sv := row.Results["svrkit"]
		if sv == nil {
			continue
		}
		var parts []string
		if g := row.Results["grpc"]; g != nil {
			parts = append(parts,
				fmt.Sprintf("%s gRPC req/s (≥ 3×)", mark(row.SvrkitOverGRPC >= 3, fmtRatio(row.SvrkitOverGRPC, "×"))),
				fmt.Sprintf("%s p99 %s vs gRPC %s", mark(sv.Median.P99 < g.Median.P99, "lower"), fmtDuration(sv.Median.P99), fmtDuration(g.Median.P99)))
		}
		if row.Results["ceiling"] != nil {
			ceil := fmt.Sprintf("%s of ceiling (≥ 70%%)", mark(row.SvrkitOverCeiling >= 0.7, fmtRatio(row.SvrkitOverCeiling, "%")))
			if row.Results["ceiling-proto"] != nil {
				// What protobuf alone leaves of the ceiling bounds what
				// any protobuf stack can reach.
				ceil += fmt.Sprintf(" (protobuf alone, ceiling-proto: %s of ceiling; svrkit %s of ceiling-proto)",
					fmtRatio(row.ratio("ceiling-proto", "ceiling"), "%"), fmtRatio(row.ratio("svrkit", "ceiling-proto"), "%"))
			}
			parts = append(parts, ceil)
		}
		parts = append(parts, fmt.Sprintf("%s framework allocs/call (≤ 2)", mark(sv.Median.FrameworkAllocsPerCall <= 2, fmt.Sprintf("%.1f", sv.Median.FrameworkAllocsPerCall))))
		out = append(out, fmt.Sprintf("- %s × %d callers: %s", fmtSize(row.Size), row.Callers, strings.Join(parts, "; ")))
	}
	return out
}

func mark(ok bool, s string) string {
	if ok {
		return "✅ " + s
	}
	return "❌ " + s
}

func has(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

func writeRow(b *strings.Builder, cells []string) {
	b.WriteString("| ")
	b.WriteString(strings.Join(cells, " | "))
	b.WriteString(" |\n")
}

func withShare(total, framework string, differ bool) string {
	if !differ {
		return total
	}
	return total + " (" + framework + ")"
}

func fmtRate(r *Result) string {
	if r == nil {
		return "–"
	}
	s := fmt.Sprintf("%.0f", r.Median.ReqPerSec)
	if r.Median.Errors > 0 {
		s += fmt.Sprintf(" (%d err)", r.Median.Errors)
	}
	return s
}

// fmtRatio prints a ratio as "3.10×" or, with unit "%", as "72%".
func fmtRatio(f float64, unit string) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "–"
	}
	if unit == "%" {
		return fmt.Sprintf("%.0f%%", f*100)
	}
	return fmt.Sprintf("%.2f×", f)
}

func fmtSize(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func fmtBytes(f float64) string {
	switch a := math.Abs(f); {
	case a >= 10<<10:
		return fmt.Sprintf("%.0fK", f/1024)
	case a >= 1<<10:
		return fmt.Sprintf("%.1fK", f/1024)
	}
	return fmt.Sprintf("%.0f", f)
}

// fmtDuration prints a latency with three significant digits in µs or ms.
func fmtDuration(d time.Duration) string {
	us := float64(d) / float64(time.Microsecond)
	switch {
	case us >= 10000:
		return fmt.Sprintf("%.0fms", us/1000)
	case us >= 1000:
		return fmt.Sprintf("%.2fms", us/1000)
	case us >= 100:
		return fmt.Sprintf("%.0fµs", us)
	case us >= 10:
		return fmt.Sprintf("%.1fµs", us)
	}
	return fmt.Sprintf("%.2fµs", us)
}
