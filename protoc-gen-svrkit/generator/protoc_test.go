package generator_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/svrkit/svrkit/protoc-gen-svrkit/compiler"
)

// needProtoc returns the path of protoc. Without one the test is skipped on
// a developer's machine but fails in CI, which installs it (.ci/run).
func needProtoc(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("protoc")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("protoc not found in CI: %v", err)
		}
		t.Skip("protoc not installed (apt-get install protobuf-compiler); CI runs this test")
	}
	return p
}

// buildPlugins builds protoc-gen-svrkit and protoc-gen-go (at the version in
// go.mod) into a temporary directory.
func buildPlugins(t *testing.T) (svrkitPlugin, goPlugin string) {
	t.Helper()
	dir := t.TempDir()
	svrkitPlugin = filepath.Join(dir, "protoc-gen-svrkit")
	goPlugin = filepath.Join(dir, "protoc-gen-go")
	for pkg, out := range map[string]string{
		"github.com/svrkit/svrkit/protoc-gen-svrkit":   svrkitPlugin,
		"google.golang.org/protobuf/cmd/protoc-gen-go": goPlugin,
	} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	return svrkitPlugin, goPlugin
}

// protocVersionLine is the one line of protoc-gen-go's output that names
// the compiler; `svrkit gen` has no protoc version to name.
var protocVersionLine = regexp.MustCompile(`(?m)^// \tprotoc +.*$`)

// TestProtocMatchesInProcess runs real protoc with the built plugins and
// checks that it writes byte for byte what `svrkit gen`'s in-process
// pipeline writes: the same .svrkit.go and the same .pb.go but for the
// protoc version comment. protoc reads svrkit/options.proto from idl/; the
// in-process side uses its built-in copy, so both routes are covered.
func TestProtocMatchesInProcess(t *testing.T) {
	protoc := needProtoc(t)
	svrkitPlugin, goPlugin := buildPlugins(t)
	for _, param := range []string{"paths=source_relative", "module=example.com/golden"} {
		t.Run(param, func(t *testing.T) {
			out := t.TempDir()
			args := []string{
				"-I", "testdata", "-I", filepath.Join("..", "..", "idl"),
				"--plugin=protoc-gen-svrkit=" + svrkitPlugin,
				"--plugin=protoc-gen-go=" + goPlugin,
				"--svrkit_out=" + param + ":" + out,
				"--go_out=" + param + ":" + out,
			}
			args = append(args, goldenInputs...)
			cmd := exec.Command(protoc, args...)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("protoc %s: %v\n%s", strings.Join(args, " "), err, b)
			}

			want := generate(t, param, goldenInputs...)
			if len(want) != 2*len(goldenInputs)-1 {
				t.Fatalf("in-process run wrote %d files, want a .pb.go per input and a .svrkit.go per input with services", len(want))
			}
			seen := map[string]bool{}
			for _, f := range want {
				seen[f.Name] = true
				got, err := os.ReadFile(filepath.Join(out, f.Name))
				if err != nil {
					t.Errorf("protoc did not write %s: %v", f.Name, err)
					continue
				}
				wantContent := f.Content
				if strings.HasSuffix(f.Name, ".pb.go") {
					got = protocVersionLine.ReplaceAll(got, nil)
					wantContent = protocVersionLine.ReplaceAll(wantContent, nil)
				}
				if !bytes.Equal(got, wantContent) {
					t.Errorf("%s: protoc's output differs from svrkit gen's:\n%s", f.Name, firstDiff(string(wantContent), string(got)))
				}
			}
			err := filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(out, p)
				if !seen[filepath.ToSlash(rel)] {
					t.Errorf("protoc wrote %s, which svrkit gen does not", rel)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestProtocReportsInvalidIDL checks that the plugin fails protoc with the
// same positioned errors as the in-process run.
func TestProtocReportsInvalidIDL(t *testing.T) {
	protoc := needProtoc(t)
	svrkitPlugin, _ := buildPlugins(t)
	files := []string{"invalid/cgi_a.proto", "invalid/cgi_b.proto"}
	args := append([]string{
		"-I", "testdata", "-I", filepath.Join("..", "..", "idl"),
		"--plugin=protoc-gen-svrkit=" + svrkitPlugin,
		"--svrkit_out=" + t.TempDir(),
	}, files...)
	b, err := exec.Command(protoc, args...).CombinedOutput()
	if err == nil {
		t.Fatalf("protoc accepted invalid IDL:\n%s", b)
	}
	set, err := compiler.Parse([]string{"testdata"}, files...)
	if err != nil {
		t.Fatal(err)
	}
	_, genErr := compiler.Generate(set, files, "")
	if genErr == nil {
		t.Fatal("in-process generation accepted invalid IDL")
	}
	for _, line := range strings.Split(genErr.Error(), "\n") {
		if !strings.Contains(string(b), line) {
			t.Errorf("protoc output lacks %q:\n%s", line, b)
		}
	}
}
