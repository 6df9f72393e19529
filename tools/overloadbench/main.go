// Command overloadbench measures svrkit's overload control with a
// three-tier chain (entry → shared → basic, each its own process) driven
// open-loop at multiples of its capacity, control on and off in the same
// run, and prints a markdown table:
//
//	go run ./tools/overloadbench [-runs 3] [-duration 5s] [-warmup 2s] \
//	    [-factors 0.5,1,2,4] [-deadline 500ms] [-work 300µs]
//
// How it measures, and why, is in the doc of package
// github.com/svrkit/svrkit/tools/internal/overloadbench.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/svrkit/svrkit/tools/internal/overloadbench"
)

func main() {
	def := overloadbench.DefaultConfig()
	var (
		serve    = flag.String("serve", "", "internal: serve one tier (basic, or the address of the next tier) instead of measuring")
		control  = flag.Bool("control", true, "internal: with -serve, overload control on")
		runs     = flag.Int("runs", def.Runs, "repeat the whole measurement this many times and report medians")
		duration = flag.Duration("duration", def.Duration, "measured window per cell")
		warmup   = flag.Duration("warmup", def.Warmup, "unmeasured load before each window")
		factors  = flag.String("factors", "0.5,1,2,4", "offered loads as multiples of the capacity, comma-separated")
		deadline = flag.Duration("deadline", def.Deadline, "how long a caller waits for an answer")
		work     = flag.Duration("work", def.Work, "CPU the basic tier burns per call")
		quiet    = flag.Bool("q", false, "no progress lines on stderr")
	)
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: overloadbench [flags]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *serve != "" {
		if err := serveTier(*serve, *control); err != nil {
			fmt.Fprintln(os.Stderr, "overloadbench:", err)
			os.Exit(1)
		}
		return
	}
	cfg := def
	cfg.Runs, cfg.Duration, cfg.Warmup, cfg.Deadline, cfg.Work = *runs, *duration, *warmup, *deadline, *work
	cfg.Factors = nil
	for _, f := range strings.Split(*factors, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 {
			fmt.Fprintf(os.Stderr, "overloadbench: -factors: %q is not a positive number\n", f)
			os.Exit(2)
		}
		cfg.Factors = append(cfg.Factors, v)
	}
	if cfg.Runs < 1 || cfg.Duration <= 0 || cfg.Deadline <= 0 {
		fmt.Fprintln(os.Stderr, "overloadbench: -runs must be at least 1, -duration and -deadline positive")
		os.Exit(2)
	}
	if !*quiet {
		cfg.Progress = os.Stderr
	}
	cfg.Start = startChain
	rep, err := overloadbench.Run(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "overloadbench:", err)
		os.Exit(1)
	}
	fmt.Printf("overloadbench, %s, %d CPUs\n\n", time.Now().Format("2006-01-02"), runtime.NumCPU())
	rep.Markdown(os.Stdout)
}

// serveTier runs one tier until SIGTERM: role is "basic" or the address of
// the tier it calls. It prints its address on stdout once it serves.
func serveTier(role string, control bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	next := role
	if role == "basic" {
		next = ""
	}
	return overloadbench.Serve(ctx, "127.0.0.1:0", next, control, func(addr string) { fmt.Println(addr) })
}

// startChain starts basic, shared and entry as processes of this binary.
func startChain(control bool) (string, func(), error) {
	var procs []*exec.Cmd
	stop := func() {
		for i := len(procs) - 1; i >= 0; i-- {
			_ = procs[i].Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func(p *exec.Cmd) { _ = p.Wait(); close(done) }(procs[i])
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = procs[i].Process.Kill()
				<-done
			}
		}
	}
	next := "basic"
	for range 3 {
		cmd := exec.Command(os.Args[0], "-serve", next, "-control="+strconv.FormatBool(control))
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		out, err := cmd.StdoutPipe()
		if err == nil {
			err = cmd.Start()
		}
		if err != nil {
			stop()
			return "", nil, err
		}
		procs = append(procs, cmd)
		addr := make(chan string, 1)
		go func() {
			line, _ := bufio.NewReader(out).ReadString('\n')
			addr <- strings.TrimSpace(line)
		}()
		select {
		case a := <-addr:
			if a == "" {
				stop()
				return "", nil, errors.New("a tier exited before serving")
			}
			next = a
		case <-time.After(30 * time.Second):
			stop()
			return "", nil, errors.New("a tier did not start within 30s")
		}
	}
	return next, stop, nil
}
