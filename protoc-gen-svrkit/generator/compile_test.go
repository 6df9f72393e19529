package generator_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// goldenImports are the files the golden inputs import; their message code
// is needed to build the generated packages.
var goldenImports = []string{"in/in.proto", "othersvrkit/svrkit.proto", "types/common.proto"}

// TestGeneratedCodeServes builds the code generated from every golden input
// in a temporary module that uses this repository's runtime, and runs
// testdata/serve/serve_test.go there: generated servers registered on a
// real svrkit.Server and a cgi.Handler, called through generated clients
// over loopback TCP. It fails if generated code does not compile, does not
// vet, or does not serve.
func TestGeneratedCodeServes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module; skipped with -short")
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	names := append(append([]string{}, goldenInputs...), goldenImports...)
	for _, f := range generate(t, "module=example.com/golden", names...) {
		writeTestFile(t, filepath.Join(dir, filepath.FromSlash(f.Name)), f.Content)
	}
	serveTest, err := os.ReadFile(filepath.Join("testdata", "serve", "serve_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "serve", "serve_test.go"), serveTest)

	// The module requires what this repository requires, so that it builds
	// from the same module cache, plus the repository itself by replace.
	gomod, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mod := regexp.MustCompile(`(?m)^module .*$`).ReplaceAllString(string(gomod), "module example.com/golden")
	mod += "\nrequire github.com/svrkit/svrkit v0.0.0\n\nreplace github.com/svrkit/svrkit => " + repo + "\n"
	writeTestFile(t, filepath.Join(dir, "go.mod"), []byte(mod))
	gosum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "go.sum"), gosum)

	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod -buildvcs=false")
	for _, args := range [][]string{
		{"vet", "./..."},
		{"test", "-count=1", "./..."},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s in the generated module: %v\n%s", strings.Join(args, " "), err, out)
		}
		if args[0] == "test" && !strings.Contains(string(out), "ok  \texample.com/golden/serve") {
			t.Fatalf("go test did not run the serve tests:\n%s", out)
		}
	}
}

func writeTestFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
