// Package jsonfile writes small JSON state files so that a reader never
// sees half of one: svrkit up's up.json and imcli's per-user files.
package jsonfile

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// Write replaces the file at path with v as indented JSON: it writes
// path.tmp with mode perm, creating the directory (mode 0755, or 0700 when
// perm grants no one else anything), and renames it over path.
func Write(path string, v any, perm os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	dirPerm := os.FileMode(0o755)
	if perm&0o077 == 0 {
		dirPerm = 0o700
	}
	if err := os.MkdirAll(filepath.Dir(path), dirPerm); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), perm); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
