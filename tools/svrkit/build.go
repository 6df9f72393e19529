package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// build compiles the main package of every service into binDir with one
// `go build` (two only if two packages would build binaries of the same
// name): one build compiles a package that several binaries share once,
// and the go command spreads the whole graph over every CPU. Separate
// builds side by side would compile the shared packages twice at once.
//
// The go command leaves a binary that is up to date alone, so a second up
// of an unchanged topology links nothing. On a clean build cache the IM
// backend's first build takes minutes on a small machine; build reports
// what it is doing meanwhile (buildProgress).
func (u *up) build(topo *topology, binDir string) error {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	start := time.Now()
	pkgs, err := u.listMains(topo)
	if err != nil {
		return err
	}
	// A round holds packages whose binaries have distinct names; almost
	// every topology is one round.
	var rounds [][]*mainPkg
	for _, p := range pkgs {
		placed := false
		for i, r := range rounds {
			if !slices.ContainsFunc(r, func(q *mainPkg) bool { return q.exe == p.exe }) {
				rounds[i] = append(r, p)
				placed = true
				break
			}
		}
		if !placed {
			rounds = append(rounds, []*mainPkg{p})
		}
	}
	plural := "s"
	if len(topo.Services) == 1 {
		plural = ""
	}
	u.logf("building %d service%s into %s", len(topo.Services), plural, binDir)
	prog := newBuildProgress(u, pkgs, start)
	defer prog.stop()
	for i, r := range rounds {
		dir := binDir
		if i > 0 {
			dir = filepath.Join(binDir, fmt.Sprint(i))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		}
		args := []string{"build", "-v", "-o", dir + string(filepath.Separator)}
		for _, p := range r {
			args = append(args, p.arg)
			for _, s := range p.services {
				s.bin = filepath.Join(dir, p.exe)
			}
		}
		cmd := exec.CommandContext(u.e.ctx, "go", args...)
		cmd.Dir = u.dir
		out, err := cmd.StderrPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		prog.follow(out)
		if err := cmd.Wait(); err != nil {
			prog.stop()
			return fmt.Errorf("go build: %v\n%s", err, prog.errors())
		}
	}
	prog.stop()
	u.logf("built in %v%s", time.Since(start).Round(time.Millisecond), prog.summary())
	return nil
}

// mainPkg is one main package of the topology and the services run from it.
type mainPkg struct {
	arg        string // as the topology names it
	importPath string
	exe        string // the binary's name, as go build -o DIR names it
	services   []*topoService
}

// listMains asks the go command what each service's package is, so that a
// wrong package fails here, before any compiling, with the service's name.
func (u *up) listMains(topo *topology) ([]*mainPkg, error) {
	var pkgs []*mainPkg
	byArg := map[string]*mainPkg{}
	var args []string
	for _, s := range topo.Services {
		if p := byArg[s.Package]; p != nil {
			p.services = append(p.services, s)
			continue
		}
		p := &mainPkg{arg: s.Package, services: []*topoService{s}}
		byArg[s.Package] = p
		pkgs = append(pkgs, p)
		args = append(args, s.Package)
	}
	cmd := exec.CommandContext(u.e.ctx, "go", append([]string{"list", "-e", "-f",
		"{{.ImportPath}}\t{{.Dir}}\t{{.Name}}\t{{.Target}}\t{{if .Error}}{{.Error}}{{end}}"}, args...)...)
	cmd.Dir = u.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v\n%s", err, stderr.Bytes())
	}
	type listed struct{ importPath, dir, name, target, err string }
	var all []listed
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		f := strings.SplitN(line, "\t", 5)
		if len(f) == 5 {
			all = append(all, listed{f[0], f[1], f[2], f[3], strings.ReplaceAll(f[4], "\n", " ")})
		}
	}
	for _, p := range pkgs {
		// The go command names a relative package by its import path;
		// match it by directory.
		abs := ""
		if isRelativePackage(p.arg) {
			abs = filepath.Join(u.dir, filepath.FromSlash(p.arg))
		}
		for _, l := range all {
			if l.importPath == p.arg || (abs != "" && l.dir == abs) {
				p.importPath = l.importPath
				switch {
				case l.err != "":
					return nil, fmt.Errorf("service %s: package %s: %s", p.services[0].Name, p.arg, l.err)
				case l.name != "main":
					return nil, fmt.Errorf("service %s: package %s is package %s, not a main package", p.services[0].Name, p.arg, l.name)
				}
				p.exe = execName(l.importPath, l.target)
				break
			}
		}
		if p.importPath == "" {
			return nil, fmt.Errorf("service %s: go list does not know package %s:\n%s", p.services[0].Name, p.arg, stderr.Bytes())
		}
	}
	return pkgs, nil
}

func isRelativePackage(p string) bool {
	return p == "." || p == ".." || strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../")
}

// execName is the name go build -o DIR gives a main package's binary: its
// install target's, or the import path's last element that is not a major
// version (example.com/cmd/v2 builds cmd).
func execName(importPath, target string) string {
	if target != "" {
		return strings.TrimSuffix(filepath.Base(target), ".exe")
	}
	elem := path.Base(importPath)
	if dir := path.Dir(importPath); dir != "." && majorVersion.MatchString(elem) {
		elem = path.Base(dir)
	}
	return elem
}

var majorVersion = regexp.MustCompile(`^v[0-9]+$`)

// buildProgress follows the output of `go build -v`, which names each
// package as it starts compiling it (cached packages are not named), and
// shows what the build is doing: on a terminal one status line rewritten
// every second, elsewhere a line every progressEvery.
type buildProgress struct {
	u     *up
	start time.Time
	bins  int
	mains map[string][]*topoService // import path of a main -> its services; read-only

	mu       sync.Mutex
	compiled int
	current  string
	linked   int // main packages compiled: their binaries are linking or linked
	errLines []string
	total    int // packages in the build graph, once known
	counting bool

	ctx     context.Context // ends at stop: the package count is not needed after
	cancel  context.CancelFunc
	done    chan struct{} // closed by stop
	stopped chan struct{} // closed when the reporting goroutine has returned
	once    sync.Once
}

const progressEvery = 10 * time.Second

func newBuildProgress(u *up, pkgs []*mainPkg, start time.Time) *buildProgress {
	p := &buildProgress{u: u, start: start, bins: len(pkgs), mains: map[string][]*topoService{},
		done: make(chan struct{}), stopped: make(chan struct{})}
	p.ctx, p.cancel = context.WithCancel(u.e.ctx)
	for _, pkg := range pkgs {
		p.mains[pkg.importPath] = pkg.services
	}
	every := progressEvery
	if u.out.terminal {
		every = time.Second
	}
	go func() {
		defer close(p.stopped)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-tick.C:
				if text := p.status(); text != "" {
					if u.out.terminal {
						u.out.showStatus("svrkit up", text)
					} else {
						u.logf("%s", text)
					}
				}
			}
		}
	}()
	return p
}

// packageLine is a line of `go build -v`: an import path. Anything else
// (a "# pkg" header, a compiler error) is part of an error report.
var packageLine = regexp.MustCompile(`^[^\s#]+$`)

// follow reads one go build's standard error until it ends.
func (p *buildProgress) follow(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case packageLine.MatchString(line):
			p.mu.Lock()
			p.compiled++
			p.current = line
			if p.mains[line] != nil {
				p.linked++
			}
			first := !p.counting
			p.counting = true
			p.mu.Unlock()
			if first {
				go p.count()
			}
		case strings.HasPrefix(line, "go: downloading"):
			p.u.logf("%s", line)
		default:
			p.mu.Lock()
			p.errLines = append(p.errLines, line)
			p.mu.Unlock()
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// count learns how many packages the build graph has, for "N of M". It
// runs only once something compiles: a cached build never pays for it. On
// a cache warm with some of the packages, fewer than M get compiled.
func (p *buildProgress) count() {
	var args []string
	for ip := range p.mains {
		args = append(args, ip)
	}
	cmd := exec.CommandContext(p.ctx, "go", append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, args...)...)
	cmd.Dir = p.u.dir
	out, err := cmd.Output()
	if err != nil {
		return
	}
	p.mu.Lock()
	p.total = bytes.Count(out, []byte("\n"))
	p.mu.Unlock()
}

// status is the progress line, or "" before anything compiles.
func (p *buildProgress) status() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.compiled == 0 {
		return ""
	}
	elapsed := time.Since(p.start).Round(time.Second)
	of := ""
	if p.total > 0 {
		of = fmt.Sprintf(" of %d", p.total)
	}
	count := fmt.Sprintf("%d%s packages compiled", p.compiled, of)
	now := "compiling " + p.current
	if svcs := p.mains[p.current]; svcs != nil {
		now = fmt.Sprintf("building binary %d of %d, for %s", p.linked, p.bins, svcs[0].Name)
	}
	return fmt.Sprintf("building, %v: %s; %s", elapsed, count, now)
}

func (p *buildProgress) errors() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.errLines, "\n")
}

func (p *buildProgress) summary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.compiled == 0 {
		return " (all cached)"
	}
	return fmt.Sprintf(" (%d packages compiled)", p.compiled)
}

// stop ends the progress reports; it may be called more than once.
func (p *buildProgress) stop() {
	p.once.Do(func() {
		p.cancel()
		close(p.done)
		<-p.stopped
		if p.u.out.terminal {
			p.u.out.clearStatus()
		}
	})
}
