package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/svrkit/svrkit/tools/internal/rpcbench"
)

// against compares this build of rpcbench with one built at git revision
// rev, in the same run: it builds rev's rpcbench from a temporary
// worktree, then runs the two binaries alternately for rounds rounds (one
// matrix each, the order flipped every round so that a machine getting
// busier or quieter does not favour either), and prints each cell's
// after/before ratios as the median of the per-round ratios, with their
// range.
//
// Ratios of rounds run minutes apart on a shared machine still move;
// pairing each round's two runs and taking the median of the pairs is what
// keeps drift out of the verdict. CPU per call is printed beside req/s
// because it moves far less with the machine's other load. Each median
// ratio comes with a 95% bootstrap interval (the median of the pairs
// resampled 2,000 times): on the 2-core VMs a single 2 s run of one build
// swings by ±15% from one minute to the next, so a verdict of "no worse"
// needs the interval, not the point, and many short rounds (-runs 40
// -duration 1s -warmup 300ms) narrow it better than a few long ones.
//
// Builds older than the CPU-per-call column are still compared on CPU:
// "process CPU per call" is each run's whole process (getrusage of the
// child: setup and warm-ups included, the same for both builds) over the
// calls its measured windows made.
func against(rev string, rounds int, args []string, out io.Writer, progress io.Writer) error {
	top, err := gitOut("", "rev-parse", "--show-toplevel")
	if err != nil {
		return fmt.Errorf("-against needs a git checkout: %w", err)
	}
	dir, err := os.MkdirTemp("", "rpcbench-against-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "src")
	if _, err := gitOut(top, "worktree", "add", "--detach", src, rev); err != nil {
		return fmt.Errorf("checking out %s: %w", rev, err)
	}
	defer gitOut(top, "worktree", "remove", "--force", src) //nolint:errcheck // best effort; the directory goes with dir
	base := filepath.Join(dir, "rpcbench-"+rev)
	fmt.Fprintf(progress, "rpcbench: building %s\n", rev)
	build := exec.Command("go", "build", "-o", base, "./tools/rpcbench")
	build.Dir, build.Stderr = src, progress
	if err := build.Run(); err != nil {
		return fmt.Errorf("building rpcbench at %s: %w", rev, err)
	}
	head, err := os.Executable()
	if err != nil {
		return err
	}
	args = append(slices.Clone(args), "-runs", "1", "-json", "-q")

	var befores, afters []*report
	for r := range rounds {
		order := []string{base, head}
		if r%2 == 1 {
			order = []string{head, base}
		}
		for _, bin := range order {
			which := "this build"
			if bin == base {
				which = rev
			}
			fmt.Fprintf(progress, "rpcbench: round %d/%d, %s (%s)\n", r+1, rounds, which, time.Now().Format("15:04:05"))
			rep, err := runReport(bin, args, progress)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, which, err)
			}
			if bin == base {
				befores = append(befores, rep)
			} else {
				afters = append(afters, rep)
			}
		}
	}
	writeAgainst(out, rev, befores, afters)
	return nil
}

// report is the part of rpcbench's JSON the comparison reads (older builds
// without CPU per call leave it zero), and the CPU its process used.
type report struct {
	processCPU time.Duration
	Rows       []reportRow `json:"rows"`
}

type reportRow struct {
	Size    int                   `json:"size"`
	Callers int                   `json:"callers"`
	Results map[string]cellResult `json:"results"`
}

type cellResult struct {
	Median struct {
		Calls      int64   `json:"calls"`
		ReqPerSec  float64 `json:"req_per_sec"`
		CPUPerCall int64   `json:"cpu_per_call_ns"`
	} `json:"median"`
}

func runReport(bin string, args []string, progress io.Writer) (*report, error) {
	var stdout bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, progress
	if err := cmd.Run(); err != nil {
		return nil, err
	}
	rep := new(report)
	if err := json.Unmarshal(stdout.Bytes(), rep); err != nil {
		return nil, fmt.Errorf("reading its JSON: %w", err)
	}
	st := cmd.ProcessState
	rep.processCPU = st.UserTime() + st.SystemTime()
	return rep, nil
}

type cellKey struct {
	size, callers int
	system        string
}

type cellSample struct{ reqs, cpu float64 }

func samples(reps []*report) map[cellKey][]cellSample {
	m := map[cellKey][]cellSample{}
	for _, rep := range reps {
		for _, row := range rep.Rows {
			for sys, res := range row.Results {
				k := cellKey{row.Size, row.Callers, sys}
				m[k] = append(m[k], cellSample{res.Median.ReqPerSec, float64(res.Median.CPUPerCall)})
			}
		}
	}
	return m
}

// processCPUPerCall is the run's whole-process CPU over the calls of its
// measured windows, in nanoseconds.
func (r *report) processCPUPerCall() float64 {
	var calls int64
	for _, row := range r.Rows {
		for _, res := range row.Results {
			calls += res.Median.Calls
		}
	}
	if calls == 0 {
		return 0
	}
	return float64(r.processCPU) / float64(calls)
}

func writeAgainst(w io.Writer, rev string, befores, afters []*report) {
	b, a := samples(befores), samples(afters)
	var keys []cellKey
	for k := range a {
		if len(b[k]) == len(a[k]) && len(a[k]) > 0 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(x, y cellKey) int {
		if x.system != y.system {
			return strings.Compare(x.system, y.system)
		}
		if x.size != y.size {
			return x.size - y.size
		}
		return x.callers - y.callers
	})
	fmt.Fprintf(w, "rpcbench, this build against %s, %s: %d rounds, the two alternating; medians of per-round ratios [95%% bootstrap interval]\n\n", rev, time.Now().UTC().Format("2006-01-02 15:04 UTC"), len(afters))
	fmt.Fprintln(w, "| system | size | callers | req/s before | after | after/before | CPU/call before | after | after/before |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, k := range keys {
		bs, as := b[k], a[k]
		var rq, rc, bq, aq, bc, ac []float64
		for i := range as {
			bq, aq = append(bq, bs[i].reqs), append(aq, as[i].reqs)
			bc, ac = append(bc, bs[i].cpu), append(ac, as[i].cpu)
			if bs[i].reqs > 0 {
				rq = append(rq, as[i].reqs/bs[i].reqs)
			}
			if bs[i].cpu > 0 && as[i].cpu > 0 {
				rc = append(rc, as[i].cpu/bs[i].cpu)
			}
		}
		cpu := func(xs []float64) string {
			if m := rpcbench.Median(xs); m > 0 {
				return time.Duration(m).Round(100 * time.Nanosecond).String()
			}
			return "—"
		}
		fmt.Fprintf(w, "| %s | %d | %d | %.0f | %.0f | %s | %s | %s | %s |\n", k.system, k.size, k.callers,
			rpcbench.Median(bq), rpcbench.Median(aq), ratio(rq), cpu(bc), cpu(ac), ratio(rc))
	}
	var rp []float64
	for i := range afters {
		if b, a := befores[i].processCPUPerCall(), afters[i].processCPUPerCall(); b > 0 && a > 0 {
			rp = append(rp, a/b)
		}
	}
	fmt.Fprintf(w, "\nprocess CPU per call (whole runs, every cell), after/before: %s\n", ratio(rp))
}

// ratio formats the median of xs with its 95% bootstrap interval.
func ratio(xs []float64) string {
	if len(xs) == 0 {
		return "—"
	}
	lo, hi := bootstrapMedian(xs, 2000)
	return fmt.Sprintf("%.3f× [%.3f–%.3f]", rpcbench.Median(xs), lo, hi)
}

// bootstrapMedian returns the 2.5th and 97.5th percentiles of the medians
// of n resamples of xs (with replacement), from a fixed seed so that the
// same figures print the same interval.
func bootstrapMedian(xs []float64, n int) (lo, hi float64) {
	rng := rand.New(rand.NewPCG(1, uint64(len(xs))))
	meds := make([]float64, n)
	re := make([]float64, len(xs))
	for i := range meds {
		for j := range re {
			re[j] = xs[rng.IntN(len(xs))]
		}
		meds[i] = rpcbench.Median(re)
	}
	slices.Sort(meds)
	return meds[n*25/1000], meds[n*975/1000-1]
}

func gitOut(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return strings.TrimSpace(string(out)), nil
}
