// Command fuzz runs every fuzz target of the repository, one after another,
// for a chosen time each — a fuzzing campaign outside CI, where `go test`
// only replays the seed corpora:
//
//	go run ./tools/fuzz [-time 10m] [-run REGEXP] [PACKAGES]
//
// PACKAGES defaults to ./... . Targets are found with `go test -list`.
// A target that finds a failure stops with it; `go test` has then written
// the input to the package's testdata/fuzz/FuzzXxx/ directory, where it
// becomes a seed that every later `go test` replays: commit it with the
// fix. The summary lists each target with its result, and the exit status
// is 1 if any failed.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

func main() {
	fuzzTime := flag.Duration("time", 10*time.Minute, "how long to fuzz each target")
	only := flag.String("run", "", "fuzz only the targets whose name matches this regular expression")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: fuzz [-time 10m] [-run REGEXP] [PACKAGES]")
		flag.PrintDefaults()
	}
	flag.Parse()
	var match *regexp.Regexp
	if *only != "" {
		var err error
		if match, err = regexp.Compile(*only); err != nil {
			fmt.Fprintln(os.Stderr, "fuzz: -run:", err)
			os.Exit(2)
		}
	}
	pkgs := flag.Args()
	if len(pkgs) == 0 {
		pkgs = []string{"./..."}
	}
	targets, err := list(pkgs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fuzz:", err)
		os.Exit(1)
	}
	failed := 0
	var summary []string
	for _, tg := range targets {
		if match != nil && !match.MatchString(tg.name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "== %s %s for %v\n", tg.pkg, tg.name, *fuzzTime)
		start := time.Now()
		cmd := exec.Command("go", "test", "-run=^$", "-fuzz=^"+tg.name+"$", "-fuzztime="+fuzzTime.String(), tg.pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		status := "ok"
		if err := cmd.Run(); err != nil {
			status = "FAIL"
			failed++
		}
		line := fmt.Sprintf("%-4s  %s %s  %s", status, tg.pkg, tg.name, time.Since(start).Round(time.Second))
		if status != "ok" {
			line += "  (the failing input is under " + tg.name + "'s testdata/fuzz directory)"
		}
		summary = append(summary, line)
	}
	fmt.Println(strings.Join(summary, "\n"))
	if failed > 0 {
		os.Exit(1)
	}
}

type target struct{ pkg, name string }

// list returns the fuzz targets of pkgs, as `go test -list` reports them.
func list(pkgs []string) ([]target, error) {
	out, err := exec.Command("go", append([]string{"test", "-run=^$", "-list=^Fuzz"}, pkgs...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("go test -list: %w", err)
	}
	// The output is each package's target names, then "ok  <pkg>".
	var targets []target
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Fuzz"):
			names = append(names, line)
		case strings.HasPrefix(line, "ok "):
			f := strings.Fields(line)
			for _, n := range names {
				targets = append(targets, target{pkg: f[1], name: n})
			}
			names = nil
		}
	}
	return targets, nil
}
