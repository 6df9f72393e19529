package main

import (
	"bytes"
	"go/format"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// walkRepoGoFiles calls fn with the repository's root and every Go file
// under it, skipping testdata and directories whose names start with "." or
// "_", as the go tool does. The repository-wide checks share it so that they
// look at the same files.
func walkRepoGoFiles(t *testing.T, fn func(root, path string) error) {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (n == "testdata" || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if filepath.Ext(p) != ".go" {
			return nil
		}
		return fn(root, p)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRepoIsGofmted fails on any Go file of the repository that gofmt would
// change, so an unformatted commit turns CI red instead of slipping in.
func TestRepoIsGofmted(t *testing.T) {
	walkRepoGoFiles(t, func(root, p string) error {
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out, err := format.Source(src)
		if err != nil {
			t.Errorf("%s: %v", p, err)
		} else if !bytes.Equal(src, out) {
			rel, _ := filepath.Rel(root, p)
			t.Errorf("%s is not gofmt'ed: run gofmt -w %s", rel, rel)
		}
		return nil
	})
}
