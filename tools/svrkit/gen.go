package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/svrkit/svrkit/protoc-gen-svrkit/compiler"
	"github.com/svrkit/svrkit/protoc-gen-svrkit/generator"
	"github.com/svrkit/svrkit/tools/internal/cmdline"
)

func init() {
	register(&command{
		name:    "gen",
		summary: "compile .proto IDL into Go message and svrkit code (no protoc needed)",
		help:    genHelp,
		run:     runGen,
	})
}

var genHelp = cmdline.Help{
	Name:  "svrkit gen",
	Usage: []string{"svrkit gen [flags] PATH..."},
	Text: `Compiles .proto files into Go: <name>.pb.go, the same bytes protoc-gen-go
writes, and <name>.svrkit.go, the same bytes protoc-gen-svrkit writes.

A PATH is a .proto file, a directory (its .proto files) or DIR/... (every
.proto file below DIR, skipping testdata and directories starting with '.' or
'_'). Every file must lie under an import path (-I); its name in the IDL is
its path relative to the first import path that holds it. svrkit/options.proto
and google/protobuf/*.proto are always importable.

Files are generated in memory and written only if every file compiles and
validates; a file is rewritten only when its content changes, so a second run
changes nothing. With -check nothing is written: svrkit gen lists the files
whose committed content differs from what it would write and exits 1.

With -mains it also writes one main package per Logicsvr named in the IDL:
the Logicsvr N declared (first, in file name order) in a .proto whose Go
package is P gets P/logicsvr/N/main.go, which imports N's handlers from
P/logicsvr/N/handlers (one func NewS(*logicsvr.Host) (SServer, error) per
service S) and nothing of any other Logicsvr, so each builds into its own
binary.

Keep the command beside the IDL as a go:generate directive; 'go generate ./...'
then regenerates everything, and a test can run each directive with -check.

Exit status: 0 on success (with -check: the files are fresh); 1 when a .proto
has errors (file:line:column: message) or, with -check, files are stale; 2
for bad usage.`,
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runGen(e *env, args []string) error {
	fset := flag.NewFlagSet("gen", flag.ContinueOnError)
	var importPaths stringList
	fset.Var(&importPaths, "I", "import `dir` (repeatable; default .)")
	out := fset.String("out", ".", "output root `dir`")
	paths := fset.String("paths", "", "where files go: source_relative (beside the .proto; the default) or import (by Go import path under -out; the default with -module)")
	module := fset.String("module", "", "with paths=import, strip this Go module `prefix` from output paths")
	check := fset.Bool("check", false, "write nothing; list stale generated files and exit 1 if any")
	mains := fset.Bool("mains", false, "also write one main package per Logicsvr: <go package of its .proto>/logicsvr/<name>/main.go, importing its handlers from .../logicsvr/<name>/handlers (see package logicsvr)")
	if err := e.parse(fset, args, genHelp); err != nil {
		return err
	}
	if fset.NArg() == 0 {
		return e.usagef(genHelp, "no .proto files given")
	}

	g := &generation{e: e}
	if len(importPaths) == 0 {
		importPaths = stringList{"."}
	}
	for _, p := range importPaths {
		g.importPaths = append(g.importPaths, e.abs(p))
	}
	names, err := g.protoNames(fset.Args())
	if err != nil {
		return err
	}

	var params []string
	switch {
	case *paths == "" && *module != "":
		params = append(params, "paths=import")
	case *paths == "":
		params = append(params, "paths=source_relative")
	case *paths == "import" || *paths == "source_relative":
		params = append(params, "paths="+*paths)
	default:
		return fmt.Errorf("-paths must be import or source_relative, not %q", *paths)
	}
	if *module != "" {
		params = append(params, "module="+*module)
	}
	if *mains {
		params = append(params, generator.MainsParam+"=true")
	}

	set, err := compiler.Parse(g.importPaths, names...)
	if err != nil {
		return g.relocate(err)
	}
	files, err := compiler.Generate(set, names, strings.Join(params, ","))
	if err != nil {
		return g.relocate(err)
	}

	outDir := e.abs(*out)
	if *check {
		return g.check(outDir, files)
	}
	for _, f := range files {
		target := filepath.Join(outDir, filepath.FromSlash(f.Name))
		changed, err := writeIfChanged(target, f.Content)
		if err != nil {
			return err
		}
		if changed {
			fmt.Fprintln(e.stderr, "wrote", e.rel(target))
		}
	}
	return nil
}

// check compares files with what is on disk under outDir. It tells a stale
// file (the .proto or the generator changed: regenerate) from one these
// flags name or place differently than the command that wrote it (another
// -I renames the .proto, which the generated code records; another -out or
// -paths puts it elsewhere): regenerating would not help there, running
// the check with that command's flags would.
func (g *generation) check(outDir string, files []compiler.File) error {
	var stale, elsewhere []string
	var protoDir string
	for _, f := range files {
		if src := generatedFrom(f.Content); src != "" && protoDir == "" {
			protoDir = filepath.Dir(g.e.abs(g.diskPath(src)))
		}
		target := filepath.Join(outDir, filepath.FromSlash(f.Name))
		old, err := os.ReadFile(target)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			src := generatedFrom(f.Content)
			beside := filepath.Join(filepath.Dir(g.e.abs(g.diskPath(src))), filepath.Base(target))
			if _, err := os.Stat(beside); err == nil && beside != target && src != "" {
				elsewhere = append(elsewhere, fmt.Sprintf("%s is missing, but %s exists: these -out/-paths/-module flags put the file elsewhere than the command that generated it",
					g.e.rel(target), g.e.rel(beside)))
				continue
			}
			stale = append(stale, g.e.rel(target)+" (missing)")
		case err != nil:
			return err
		case !bytes.Equal(old, f.Content):
			was, now := generatedFrom(old), generatedFrom(f.Content)
			if was != "" && now != "" && was != now {
				elsewhere = append(elsewhere, fmt.Sprintf("%s was generated from the .proto named %q; these -I flags name it %q",
					g.e.rel(target), was, now))
				continue
			}
			stale = append(stale, g.e.rel(target)+" (differs)")
		}
	}
	var msg []string
	if len(elsewhere) > 0 {
		how := "Run -check with the flags (-I, -out, -paths, -module) of that command, from its directory"
		if file, args := findGenDirective(protoDir); file != "" {
			how += fmt.Sprintf(": %s has\n  //go:generate ... svrkit gen %s", g.e.rel(file), args)
		}
		msg = append(msg, "svrkit gen: -check runs with other flags than the command that generated these files:\n  "+
			strings.Join(elsewhere, "\n  ")+"\n"+how)
	}
	if len(stale) > 0 {
		msg = append(msg, "svrkit gen: stale generated files; regenerate them with 'go generate ./...':\n  "+
			strings.Join(stale, "\n  "))
	}
	if len(msg) > 0 {
		return &exitError{code: 1, msg: strings.Join(msg, "\n")}
	}
	return nil
}

// genDirectiveLine is a go:generate line that runs svrkit gen.
var genDirectiveLine = regexp.MustCompile(`^//go:generate .*\bsvrkit gen (.*)$`)

// findGenDirective looks for a go:generate directive running svrkit gen
// among the Go files of dir, and returns its file and arguments.
func findGenDirective(dir string) (file, args string) {
	if dir == "" {
		return "", ""
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if m := genDirectiveLine.FindStringSubmatch(line); m != nil {
				return name, m[1]
			}
		}
	}
	return "", ""
}

// generatedFrom returns the .proto name that generated code records in its
// "// source: NAME" header line, or "".
func generatedFrom(code []byte) string {
	for i, line := range bytes.SplitN(code, []byte("\n"), 20) {
		if i == 19 {
			break
		}
		if name, ok := bytes.CutPrefix(line, []byte("// source: ")); ok {
			return string(bytes.TrimSpace(name))
		}
	}
	return ""
}

// generation is the state of one gen run.
type generation struct {
	e           *env
	importPaths []string // absolute
}

// protoNames expands PATH arguments to .proto files and names each by its
// path under the first import path holding it.
func (g *generation) protoNames(args []string) ([]string, error) {
	var files []string
	for _, arg := range args {
		recursive := false
		if rest, ok := strings.CutSuffix(arg, "/..."); ok {
			arg, recursive = rest, true
			if arg == "" || arg == "." {
				arg = "."
			}
		}
		p := g.e.abs(arg)
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			if recursive || filepath.Ext(p) != ".proto" {
				return nil, fmt.Errorf("%s: not a .proto file", arg)
			}
			files = append(files, p)
			continue
		}
		found, err := findProtos(p, recursive)
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no .proto files", arg)
		}
		files = append(files, found...)
	}
	seen := map[string]bool{}
	var names []string
	for _, f := range files {
		name := ""
		for _, ip := range g.importPaths {
			if rel, err := filepath.Rel(ip, f); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				name = filepath.ToSlash(rel)
				break
			}
		}
		if name == "" {
			return nil, fmt.Errorf("%s is not under any import path (-I %s)", g.e.rel(f), strings.Join(g.relAll(g.importPaths), " -I "))
		}
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// findProtos lists the .proto files in dir, or below it if recursive,
// skipping what the go tool skips: testdata and names starting with . or _.
func findProtos(dir string, recursive bool) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == dir {
				return nil
			}
			n := d.Name()
			if !recursive || n == "testdata" || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") {
				return filepath.SkipDir
			}
			return nil
		}
		if filepath.Ext(p) == ".proto" {
			files = append(files, p)
		}
		return nil
	})
	return files, err
}

// relocate rewrites the file names of positioned errors from IDL names
// ("hello/hello.proto") to paths relative to the working directory, so that
// editors and terminals can jump to them.
func (g *generation) relocate(err error) error {
	var perrs compiler.PosErrors
	var gerrs generator.Errors
	switch {
	case errors.As(err, &perrs):
		lines := make([]string, len(perrs))
		for i, pe := range perrs {
			c := *pe
			c.File = g.diskPath(c.File)
			lines[i] = c.Error()
		}
		return &exitError{code: 1, msg: strings.Join(lines, "\n")}
	case errors.As(err, &gerrs):
		lines := make([]string, len(gerrs))
		for i, ge := range gerrs {
			c := *ge
			c.File = g.diskPath(c.File)
			lines[i] = c.Error()
		}
		return &exitError{code: 1, msg: strings.Join(lines, "\n")}
	}
	return err
}

// diskPath finds the file an IDL name was read from.
func (g *generation) diskPath(name string) string {
	for _, ip := range g.importPaths {
		p := filepath.Join(ip, filepath.FromSlash(name))
		if _, err := os.Stat(p); err == nil {
			return g.e.rel(p)
		}
	}
	return name
}

func (g *generation) relAll(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = g.e.rel(p)
	}
	return out
}

// writeIfChanged replaces path's content with b through a temporary file
// and a rename, so a reader never sees half a file. It leaves the file alone
// (and its mtime) when the content is already b.
func writeIfChanged(path string, b []byte) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	return true, os.Rename(tmp.Name(), path)
}

// abs resolves p against the command's working directory.
func (e *env) abs(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(e.dir, p)
}

// rel shows p relative to the working directory when it is below it.
func (e *env) rel(p string) string {
	if r, err := filepath.Rel(e.dir, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}
