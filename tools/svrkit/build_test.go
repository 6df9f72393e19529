package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBuildProgress feeds buildProgress what `go build -v` prints and
// checks what a person would see meanwhile.
func TestBuildProgress(t *testing.T) {
	var out bytes.Buffer
	u := &up{e: &env{ctx: context.Background()}, out: newPrefixWriter(&out)}
	account := &topoService{Name: "account"}
	pkgs := []*mainPkg{
		{importPath: "example.com/im/logicsvr/account", services: []*topoService{account}},
		{importPath: "example.com/im/logicsvr/sync", services: []*topoService{{Name: "sync"}}},
	}
	p := newBuildProgress(u, pkgs, time.Now().Add(-75*time.Second))
	defer p.stop()
	if got := p.status(); got != "" {
		t.Errorf("status before anything compiled = %q, want none", got)
	}
	p.follow(strings.NewReader("internal/goarch\ngithub.com/cockroachdb/pebble/v2/sstable\n" +
		"go: downloading example.com/dep v1.0.0\n"))
	if got, want := p.status(), "building, 1m15s: 2 packages compiled; compiling github.com/cockroachdb/pebble/v2/sstable"; !strings.HasPrefix(got, "building, 1m15s: 2 packages compiled") || !strings.HasSuffix(got, "; compiling github.com/cockroachdb/pebble/v2/sstable") {
		t.Errorf("status = %q, want %q", got, want)
	}
	p.follow(strings.NewReader("example.com/im/logicsvr/account\n# example.com/im/logicsvr/sync\nlogicsvr/sync/main.go:3:2: undefined: x\n"))
	if got := p.status(); !strings.HasSuffix(got, "; building binary 1 of 2, for account") {
		t.Errorf("status = %q, want it to name the binary being built", got)
	}
	if got, want := p.errors(), "# example.com/im/logicsvr/sync\nlogicsvr/sync/main.go:3:2: undefined: x"; got != want {
		t.Errorf("errors = %q, want %q", got, want)
	}
	if !strings.Contains(out.String(), "svrkit up | go: downloading example.com/dep v1.0.0") {
		t.Errorf("downloads are not shown as they happen:\n%s", out.String())
	}
}

// TestUpBuildsMainsOfTheSameName builds two main packages whose binaries
// have the same name (a/server, b/server), which one go build -o DIR
// cannot, and checks each service gets its own binary; a second build
// compiles nothing.
func TestUpBuildsMainsOfTheSameName(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "go.mod"), "module example.com/two\n\ngo 1.26\n")
	for _, p := range []string{"a", "b"} {
		writeFile(t, filepath.Join(dir, p, "server", "main.go"), "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Print(\""+p+"\") }\n")
	}
	topo := &topology{Services: []*topoService{
		{Name: "first", Package: "./a/server"},
		{Name: "second", Package: "example.com/two/b/server"},
		{Name: "again", Package: "./a/server"},
	}}
	var out bytes.Buffer
	u := &up{e: &env{ctx: context.Background(), dir: dir}, dir: dir, out: newPrefixWriter(&out)}
	bins := filepath.Join(t.TempDir(), "bin")
	if err := u.build(topo, bins); err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	for _, s := range topo.Services {
		got, err := exec.Command(s.bin).Output()
		want := map[string]string{"first": "a", "second": "b", "again": "a"}[s.Name]
		if err != nil || string(got) != want {
			t.Errorf("%s: %s printed %q, %v; want %q", s.Name, s.bin, got, err, want)
		}
	}
	if topo.Services[0].bin != topo.Services[2].bin {
		t.Errorf("one package built twice: %s and %s", topo.Services[0].bin, topo.Services[2].bin)
	}
	out.Reset()
	if err := u.build(topo, bins); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "(all cached)") {
		t.Errorf("second build:\n%s\nwant it to compile nothing", out.String())
	}

	// A package that is not a main is named with its service before
	// anything compiles.
	writeFile(t, filepath.Join(dir, "lib", "lib.go"), "package lib\n")
	topo.Services = append(topo.Services, &topoService{Name: "broken", Package: "./lib"})
	if err := u.build(topo, bins); err == nil || !strings.Contains(err.Error(), "service broken: package ./lib is package lib, not a main package") {
		t.Errorf("build of a library: %v", err)
	}
}
