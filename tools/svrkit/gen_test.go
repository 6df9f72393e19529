package main

import (
	"bufio"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runCmd runs the svrkit command in process in dir and returns its exit
// status and output.
func runCmd(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &env{ctx: context.Background(), dir: dir, stdin: strings.NewReader(""), stdout: &out, stderr: &errOut}
	code = run(e, args)
	return code, out.String(), errOut.String()
}

// genDirective matches a go:generate line that runs `svrkit gen`, by import
// path or by relative path, and captures its arguments.
var genDirective = regexp.MustCompile(`^//go:generate go run (?:github\.com/svrkit/svrkit/|(?:\.\./)+)tools/svrkit gen (.*)$`)

// TestRepoGeneratedCodeIsFresh runs every `svrkit gen` go:generate directive
// in the repository with -check, so that `go test ./...` fails when someone
// edits a .proto (or the generator) and forgets `go generate ./...`. Any
// other directive fails it too: `go generate ./...` must work on a machine
// with nothing but Go (no protoc).
func TestRepoGeneratedCodeIsFresh(t *testing.T) {
	found := map[string]bool{}
	walkRepoGoFiles(t, func(root, p string) error {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			m := genDirective.FindStringSubmatch(line)
			if m == nil {
				if strings.HasPrefix(line, "//go:generate ") {
					rel, _ := filepath.Rel(root, p)
					t.Errorf("%s: %s\ngo generate ./... must run with the go command alone (no protoc): generate with svrkit gen, or commit the output with a test that checks it", rel, line)
				}
				continue
			}
			args := m[1]
			dir := filepath.Dir(p)
			rel, _ := filepath.Rel(root, dir)
			found[filepath.ToSlash(rel)] = true
			argv := append([]string{"gen", "-check"}, strings.Fields(args)...)
			if code, _, stderr := runCmd(t, dir, argv...); code != 0 {
				t.Errorf("%s: svrkit %s exited %d:\n%s", rel, strings.Join(argv, " "), code, stderr)
			}
		}
		return sc.Err()
	})
	// These directives must exist: without them the check above would pass
	// over stale code.
	for _, dir := range []string{"idl/svrkit", "examples/hello"} {
		if !found[dir] {
			t.Errorf("no go:generate directive running svrkit gen in %s", dir)
		}
	}
}

const sampleProto = `syntax = "proto3";
package sample;
import "svrkit/options.proto";
option go_package = "example.com/sample;sample";

message Req { uint64 uid = 1; }
message Resp {}

service Store {
  option (svrkit.service) = {logicsvr: "store", routing_key: "uid"};
  rpc Get(Req) returns (Resp) { option (svrkit.method).cmdid = 1; }
}
`

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGenIdempotentAndCheck generates into a fresh tree (svrkit/options.proto
// comes from the built-in copy), then checks that a second run changes
// nothing and that -check names stale and missing files.
func TestGenIdempotentAndCheck(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "idl", "sample", "sample.proto"), sampleProto)
	args := []string{"gen", "-I", "idl", "-out", "gen", "./idl/..."}

	code, _, stderr := runCmd(t, dir, args...)
	if code != 0 {
		t.Fatalf("gen exited %d: %s", code, stderr)
	}
	pb := filepath.Join(dir, "gen", "sample", "sample.pb.go")
	sk := filepath.Join(dir, "gen", "sample", "sample.svrkit.go")
	for _, p := range []string{pb, sk} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("gen did not write %s: %v (stderr: %s)", p, err, stderr)
		}
		if !strings.Contains(stderr, "wrote "+filepath.Join("gen", "sample", filepath.Base(p))) {
			t.Errorf("stderr does not report writing %s: %q", p, stderr)
		}
	}
	// Backdate the files so that a rewrite would show in the mtime.
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, p := range []string{pb, sk} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}

	code, _, stderr = runCmd(t, dir, args...)
	if code != 0 || stderr != "" {
		t.Fatalf("second gen: exit %d, stderr %q; want 0 and silence", code, stderr)
	}
	for _, p := range []string{pb, sk} {
		if info, err := os.Stat(p); err != nil || !info.ModTime().Equal(old) {
			t.Errorf("second gen touched %s", p)
		}
	}

	check := append([]string{"gen", "-check"}, args[1:]...)
	if code, _, stderr := runCmd(t, dir, check...); code != 0 {
		t.Fatalf("-check on fresh code exited %d: %s", code, stderr)
	}

	if err := os.WriteFile(sk, []byte("package sample\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(pb); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCmd(t, dir, check...)
	if code != 1 {
		t.Fatalf("-check on stale code exited %d, want 1: %s", code, stderr)
	}
	for _, want := range []string{
		filepath.Join("gen", "sample", "sample.svrkit.go") + " (differs)",
		filepath.Join("gen", "sample", "sample.pb.go") + " (missing)",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("-check output lacks %q:\n%s", want, stderr)
		}
	}
	if b, _ := os.ReadFile(sk); string(b) != "package sample\n" {
		t.Error("-check rewrote a file")
	}
}

// TestGenSourceRelative checks the default layout: output beside the
// .proto under -out.
func TestGenSourceRelative(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "sample", "sample.proto"), sampleProto)
	if code, _, stderr := runCmd(t, dir, "gen", "sample/sample.proto"); code != 0 {
		t.Fatalf("gen exited %d: %s", code, stderr)
	}
	for _, n := range []string{"sample.pb.go", "sample.svrkit.go"} {
		if _, err := os.Stat(filepath.Join(dir, "sample", n)); err != nil {
			t.Error(err)
		}
	}
}

// TestGenErrors checks that mistakes are reported at the file's path on
// disk, and that nothing is written when any file is invalid.
func TestGenErrors(t *testing.T) {
	for _, tc := range []struct {
		name, proto, want string
	}{
		{
			name:  "svrkit option",
			proto: strings.Replace(sampleProto, "option (svrkit.method).cmdid = 1;", "", 1),
			want:  filepath.Join("idl", "sample", "sample.proto") + ":11:3: method sample.Store.Get has no cmdid: set option (svrkit.method).cmdid\n",
		},
		{
			name:  "syntax",
			proto: strings.Replace(sampleProto, "uid = 1;", "uid = 1", 1),
			want:  filepath.Join("idl", "sample", "sample.proto") + ":6:30: syntax error: expecting ';'\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "idl", "sample", "sample.proto"), tc.proto)
			writeFile(t, filepath.Join(dir, "idl", "other", "other.proto"), `syntax = "proto3"; package other; option go_package = "example.com/other"; message M {}`)
			code, _, stderr := runCmd(t, dir, "gen", "-I", "idl", "./idl/...")
			if code != 1 || stderr != tc.want {
				t.Errorf("gen: exit %d, stderr:\n%s\nwant exit 1, stderr:\n%s", code, stderr, tc.want)
			}
			var written []string
			filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err == nil && strings.HasSuffix(p, ".go") {
					written = append(written, p)
				}
				return nil
			})
			if len(written) > 0 {
				t.Errorf("gen wrote %v despite errors", written)
			}
		})
	}
}

func TestGenUsage(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "elsewhere", "x.proto"), sampleProto)
	for _, tc := range []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"gen"}, 2, "no .proto files given"},
		{[]string{"gen", "-I", "idl", "elsewhere/x.proto"}, 1, "elsewhere/x.proto is not under any import path (-I idl)"},
		{[]string{"gen", "-paths", "flat", "elsewhere/x.proto"}, 1, "-paths must be import or source_relative"},
		{[]string{"nosuch"}, 2, `unknown command "nosuch"`},
	} {
		code, _, stderr := runCmd(t, dir, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.contains) {
			t.Errorf("svrkit %v: exit %d, stderr %q; want exit %d containing %q", tc.args, code, stderr, tc.code, tc.contains)
		}
	}
}

// TestGenCheckNamesOtherFlags runs -check with other flags than the
// generating command: regenerating would not help, so it must not say
// "stale", but name what differs and the go:generate directive to follow.
func TestGenCheckNamesOtherFlags(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "sample", "sample.proto"), sampleProto)
	writeFile(t, filepath.Join(dir, "sample", "gen.go"), "package sample\n\n//go:generate go run github.com/svrkit/svrkit/tools/svrkit gen -I .. -out .. sample.proto\n")
	sub := filepath.Join(dir, "sample")
	if code, _, stderr := runCmd(t, sub, "gen", "-I", "..", "-out", "..", "sample.proto"); code != 0 {
		t.Fatalf("gen: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runCmd(t, sub, "gen", "-check", "-I", "..", "-out", "..", "sample.proto"); code != 0 {
		t.Fatalf("-check with the same flags: exit %d: %s", code, stderr)
	}
	for _, tc := range []struct {
		name string
		dir  string
		args []string
		want []string
	}{
		{"another -I", sub, []string{"sample.proto"}, []string{
			`sample.pb.go was generated from the .proto named "sample/sample.proto"; these -I flags name it "sample.proto"`,
			"gen.go has\n  //go:generate ... svrkit gen -I .. -out .. sample.proto",
		}},
		{"another -out", dir, []string{"-I", ".", "-out", "elsewhere", "sample/sample.proto"}, []string{
			filepath.Join("elsewhere", "sample", "sample.pb.go") + " is missing, but " + filepath.Join("sample", "sample.pb.go") + " exists",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, tc.dir, append([]string{"gen", "-check"}, tc.args...)...)
			if code != 1 || strings.Contains(stderr, "go generate") || !strings.Contains(stderr, "-check runs with other flags than the command that generated these files") {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 1 naming the flags, not staleness", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}
