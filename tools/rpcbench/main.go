// Command rpcbench runs svrkit, gRPC-Go and a raw gnet ceiling side by side
// on this machine and prints the result as a markdown table (or JSON):
//
//	go run ./tools/rpcbench [-duration 2s] [-warmup 500ms] [-runs 3] \
//	    [-sizes 16,1024,16384] [-callers 1,64,1024] \
//	    [-systems svrkit,grpc,ceiling] [-conns 0] [-grpc-conns 1] [-loops 0] [-json] [-q]
//	go run ./tools/rpcbench -against REV -runs 5 [matrix flags]
//
// Every cell (payload size × concurrent callers × system) is a warm-up and a
// measured window of closed-loop callers; the whole matrix is repeated -runs
// times and medians are reported. A progress line per cell goes to stderr.
// With -against, it compares itself with rpcbench built at another git
// revision instead (against.go).
// How it measures, and why, is in the doc of package
// github.com/svrkit/svrkit/tools/internal/rpcbench.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/svrkit/svrkit/tools/internal/rpcbench"
)

func main() {
	def := rpcbench.DefaultConfig()
	var (
		duration  = flag.Duration("duration", def.Duration, "measured window per cell")
		warmup    = flag.Duration("warmup", def.Warmup, "unmeasured warm-up per cell")
		runs      = flag.Int("runs", def.Runs, "repeat the matrix this many times and report medians")
		sizes     = flag.String("sizes", joinInts(def.Sizes), "payload sizes in bytes, comma-separated")
		callers   = flag.String("callers", joinInts(def.Callers), "concurrent callers, comma-separated")
		systems   = flag.String("systems", strings.Join(def.Systems, ","), "systems to run, comma-separated, from: "+strings.Join(rpcbench.SystemNames(), ","))
		conns     = flag.Int("conns", 0, "connections of the ceiling's raw client (0 = svrkit client's default)")
		grpcConns = flag.Int("grpc-conns", 1, "gRPC ClientConns callers are spread over")
		loops     = flag.Int("loops", 0, "gnet event loops of the svrkit and ceiling servers (0 = svrkit's default, half the CPUs)")
		asJSON    = flag.Bool("json", false, "print JSON instead of the markdown table")
		quiet     = flag.Bool("q", false, "no progress lines on stderr")
		cpuprof   = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
		vs        = flag.String("against", "", "compare with rpcbench built at this git revision: -runs rounds, the two alternating, per-round ratios")
	)
	flag.Parse()
	if *vs != "" {
		// The matrix flags the user gave go to both builds as they are.
		var args []string
		flag.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "against", "runs", "json", "q", "cpuprofile":
			default:
				args = append(args, "-"+f.Name+"="+f.Value.String())
			}
		})
		if *runs < 1 {
			fail("-runs must be at least 1")
		}
		if err := against(*vs, *runs, args, os.Stdout, os.Stderr); err != nil {
			fail("%v", err)
		}
		return
	}

	cfg := rpcbench.Config{
		Duration: *duration,
		Warmup:   *warmup,
		Runs:     *runs,
		Systems:  splitNames(*systems),
		Options:  rpcbench.Options{Conns: *conns, GRPCConns: *grpcConns, EventLoops: *loops},
	}
	var err error
	if cfg.Sizes, err = parseInts(*sizes, 0); err != nil {
		fail("-sizes: %v", err)
	}
	if cfg.Callers, err = parseInts(*callers, 1); err != nil {
		fail("-callers: %v", err)
	}
	if cfg.Duration <= 0 || cfg.Warmup < 0 || cfg.Runs < 1 {
		fail("-duration must be positive, -warmup not negative, -runs at least 1")
	}
	if !*quiet {
		cfg.Progress = os.Stderr
		cells := len(cfg.Sizes) * len(cfg.Callers) * len(cfg.Systems) * cfg.Runs
		est := time.Duration(cells) * (cfg.Duration + cfg.Warmup)
		fmt.Fprintf(os.Stderr, "rpcbench: %d cells, about %s\n", cells, est.Round(time.Second))
	}

	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			fail("%v", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail("%v", err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	rep, err := rpcbench.Run(cfg)
	if err != nil {
		fail("%v", err)
	}
	if *asJSON {
		err = rep.WriteJSON(os.Stdout)
	} else {
		err = rep.WriteTable(os.Stdout)
	}
	if err != nil {
		fail("%v", err)
	}
}

func fail(format string, args ...any) {
	pprof.StopCPUProfile()
	fmt.Fprintf(os.Stderr, "rpcbench: "+format+"\n", args...)
	os.Exit(1)
}

func splitNames(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseInts parses a comma-separated list of integers, each at least min.
func parseInts(s string, min int) ([]int, error) {
	var out []int
	for _, f := range splitNames(s) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, err
		}
		if n < min {
			return nil, fmt.Errorf("%d is below %d", n, min)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return out, nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
