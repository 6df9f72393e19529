package jsonfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		perm, dirPerm os.FileMode
	}{{0o644, 0o755}, {0o600, 0o700}} {
		path := filepath.Join(t.TempDir(), "sub", "state.json")
		if err := Write(path, map[string]int{"a": 1}, tc.perm); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != "{\n  \"a\": 1\n}\n" {
			t.Errorf("wrote %q, %v", b, err)
		}
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != tc.perm {
			t.Errorf("file mode %v, %v; want %v", st.Mode().Perm(), err, tc.perm)
		}
		if st, err := os.Stat(filepath.Dir(path)); err != nil || st.Mode().Perm() != tc.dirPerm {
			t.Errorf("directory mode %v, %v; want %v", st.Mode().Perm(), err, tc.dirPerm)
		}
		if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
			t.Errorf("temporary file left: %v", err)
		}
	}
	if err := Write(filepath.Join(t.TempDir(), "x.json"), func() {}, 0o644); err == nil {
		t.Error("Write of a func succeeded")
	}
}
