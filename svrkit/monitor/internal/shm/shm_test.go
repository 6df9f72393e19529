package shm

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteRead(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, "send", 16, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	a, _, err := w.Declare(Decl{ID: 7, Kind: Counter, Name: "im.sent", Unit: "count", Alert: "sum over 1m > 5"})
	if err != nil {
		t.Fatal(err)
	}
	g, _, err := w.Declare(Decl{Kind: Gauge, Name: `svrkit.process.up{service="send"}`, Unit: "count"})
	if err != nil {
		t.Fatal(err)
	}
	a.Value.Add(41)
	a.Value.Add(1)
	g.Value.Store(3)
	g.Flags.Or(FlagSet)

	paths, err := List(dir)
	if err != nil || len(paths) != 1 || paths[0] != w.Path() {
		t.Fatalf("List = %v, %v; want [%s]", paths, err, w.Path())
	}
	r, err := Open(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if h := r.Header(); h.Service != "send" || h.PID != uint32(os.Getpid()) || h.Instance == 0 {
		t.Errorf("header %+v", h)
	}
	decls, err := r.Refresh()
	if err != nil {
		t.Fatal(err)
	}
	if len(decls) != 2 || decls[0].Name != "im.sent" || decls[0].ID != 7 || decls[0].Alert != "sum over 1m > 5" || decls[1].Kind != Gauge {
		t.Fatalf("decls %+v", decls)
	}
	if v, _ := r.Value(0); v != 42 {
		t.Errorf("counter = %d, want 42", v)
	}
	if v, f := r.Value(1); v != 3 || f != FlagSet|FlagGauge {
		t.Errorf("gauge = %d flags %d", v, f)
	}
	if r.OwnerGone() {
		t.Error("OwnerGone while the writer holds the region")
	}
	// A declaration made after the reader opened appears on Refresh.
	if _, _, err := w.Declare(Decl{ID: 8, Kind: Counter, Name: "im.late"}); err != nil {
		t.Fatal(err)
	}
	if decls, err = r.Refresh(); err != nil || len(decls) != 3 {
		t.Fatalf("after a late declaration: %d decls, %v", len(decls), err)
	}
}

func TestFull(t *testing.T) {
	w, err := CreatePrivate("x", 2, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := 0; i < 2; i++ {
		if _, _, err := w.Declare(Decl{Kind: Counter, Name: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := w.Declare(Decl{Kind: Counter, Name: "b"}); !errors.Is(err, ErrFull) {
		t.Fatalf("third declaration in two slots: %v, want ErrFull", err)
	}
}

// TestCorrupt damages region files in the ways a disk, a bug or a stray
// writer would, and checks that Open or Refresh refuses each with a
// CorruptError that says what is wrong.
func TestCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(b []byte) []byte
		want   string
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)-100] }, "truncated"},
		{"tiny", func(b []byte) []byte { return b[:100] }, "not a region"},
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }, "bad magic"},
		{"header", func(b []byte) []byte { b[offCapacity] ^= 1; return b }, "header checksum"},
		{"record", func(b []byte) []byte { b[declOffset(8)+12] ^= 0xff; return b }, "checksum mismatch"},
		{"record length", func(b []byte) []byte { b[declOffset(8)] = 0xff; b[declOffset(8)+1] = 0xff; return b }, "out of bounds"},
		{"slot count", func(b []byte) []byte { b[offNSlots] = 200; return b }, "over its capacity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := Create(dir, "svc", 8, 4096)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := w.Declare(Decl{ID: 1, Kind: Counter, Name: "a.b"}); err != nil {
				t.Fatal(err)
			}
			path := w.Path()
			w.Close()
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.damage(b), 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := Open(path)
			if err == nil {
				defer r.Close()
				_, err = r.Refresh()
			}
			var ce *CorruptError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v, want a CorruptError naming %s and saying %q", err, path, tc.want)
			}
		})
	}
}

// TestOwnerGone runs a writer in a child process and checks that its
// region says so once the child has exited, with the child's last counts.
func TestOwnerGone(t *testing.T) {
	if os.Getenv("SHM_TEST_CHILD") != "" {
		w, err := Create(os.Getenv("SHM_TEST_CHILD"), "child", 8, 4096)
		if err != nil {
			os.Exit(3)
		}
		s, _, _ := w.Declare(Decl{ID: 1, Kind: Counter, Name: "child.count"})
		s.Value.Add(99)
		os.Exit(0) // no Close: as if it crashed
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOwnerGone$")
	cmd.Env = append(os.Environ(), "SHM_TEST_CHILD="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	paths, _ := List(dir)
	if len(paths) != 1 {
		t.Fatalf("regions %v", paths)
	}
	r, err := Open(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.OwnerGone() {
		t.Error("OwnerGone false after the child exited")
	}
	if _, err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	if v, _ := r.Value(0); v != 99 {
		t.Errorf("final count %d, want 99", v)
	}
}

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	live, err := Create(dir, "live", 8, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	dead, err := Create(dir, "dead", 8, 4096)
	if err != nil {
		t.Fatal(err)
	}
	dead.Close() // releases its lock, as an exit would
	old := time.Now().Add(-time.Hour)
	for _, p := range []string{live.Path(), dead.Path()} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if n := RemoveStale(dir, time.Minute, 100); n != 1 {
		t.Errorf("removed %d, want 1", n)
	}
	paths, _ := List(dir)
	if len(paths) != 1 || filepath.Base(paths[0]) != filepath.Base(live.Path()) {
		t.Errorf("left %v, want only the live region", paths)
	}
}

func FuzzRefresh(f *testing.F) {
	w, err := CreatePrivate("f", 4, 512)
	if err != nil {
		f.Fatal(err)
	}
	w.Declare(Decl{ID: 1, Kind: Counter, Name: "a.b", Unit: "count", Alert: "sum over 1m > 1"})
	f.Add(append([]byte(nil), w.mem...))
	w.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "r"+Suffix)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(path)
		if err != nil {
			return
		}
		defer r.Close()
		decls, _ := r.Refresh()
		for i := range decls {
			r.Value(uint32(i))
		}
	})
}
