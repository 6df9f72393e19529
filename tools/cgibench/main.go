// Command cgibench measures a Logicsvr's HTTP CGI front against connect-go
// serving the same method over HTTP/1.1, with JSON and binary protobuf
// bodies, and prints a markdown table of requests/s, p50 and p99 latency and
// the throughput ratio (medians over -runs):
//
//	go run ./tools/cgibench [-duration 2s] [-warmup 300ms] [-runs 3] \
//	    [-callers 1,16,64] [-name-size 16] [-json]
//
// Each server runs in its own process (this binary, re-executed with
// -serve); what is measured and why is in the doc of package
// github.com/svrkit/svrkit/tools/internal/cgibench. Progress goes to stderr,
// the table to stdout.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/svrkit/svrkit/tools/internal/cgibench"
)

func main() {
	def := cgibench.DefaultConfig()
	serve := flag.String("serve", "", "internal: run this system's server (logicsvr or connect) and print its address")
	duration := flag.Duration("duration", def.Duration, "measured window per cell")
	warmup := flag.Duration("warmup", def.Warmup, "warm-up per cell")
	runs := flag.Int("runs", def.Runs, "repetitions of the whole matrix; medians are reported")
	callers := flag.String("callers", "1,16,64", "comma-separated numbers of concurrent callers")
	nameSize := flag.Int("name-size", def.NameSize, "bytes in the request's name")
	asJSON := flag.Bool("json", false, "print results as JSON instead of a table")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *serve != "" {
		err := cgibench.Serve(ctx, *serve, "127.0.0.1:0", func(a net.Addr) { fmt.Println("listening", a) })
		if err != nil {
			fmt.Fprintln(os.Stderr, "cgibench:", err)
			os.Exit(1)
		}
		return
	}

	cfg := def
	cfg.Duration, cfg.Warmup, cfg.Runs, cfg.NameSize = *duration, *warmup, *runs, *nameSize
	cfg.Callers = nil
	for _, f := range strings.Split(*callers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "cgibench: bad -callers %q\n", *callers)
			os.Exit(2)
		}
		cfg.Callers = append(cfg.Callers, n)
	}
	if err := run(ctx, cfg, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "cgibench:", err)
		os.Exit(1)
	}
}

// run starts both systems' servers, measures them and prints the result.
// Its defers stop the servers on every path, errors included: main exits
// only after run has returned.
func run(ctx context.Context, cfg cgibench.Config, asJSON bool) error {
	cfg.Addrs = map[string]string{}
	cfg.Progress = os.Stderr
	for _, sys := range cgibench.Systems {
		addr, stopServer, err := startServer(sys)
		if err != nil {
			return err
		}
		defer stopServer()
		cfg.Addrs[sys] = addr
	}
	results, err := cgibench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	fmt.Printf("HTTP/1.1 unary hello.Greeter/SayHello, name of %d bytes; medians of %d runs of %v; GOMAXPROCS per process = %d CPUs\n\n",
		cfg.NameSize, cfg.Runs, cfg.Duration, numCPU())
	fmt.Print(cgibench.Table(results))
	return nil
}

// startServer runs this binary with -serve=sys and reads the address it
// prints.
func startServer(sys string) (string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self, "-serve", sys)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
	}()
	select {
	case l, ok := <-line:
		addr, found := strings.CutPrefix(l, "listening ")
		if !ok || !found {
			stop()
			return "", nil, fmt.Errorf("%s server did not start (printed %q)", sys, l)
		}
		return addr, stop, nil
	case <-time.After(15 * time.Second):
		stop()
		return "", nil, fmt.Errorf("%s server did not start within 15s", sys)
	}
}

func numCPU() int { return runtime.GOMAXPROCS(0) }
