package upstate

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", FileName)
	if _, err := Read(path); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Read of a missing file: %v, want ErrNotRunning", err)
	}
	want := &State{Instances: []Instance{
		{Name: "account", Service: "account", State: Ready, PID: 10, HTTP: "127.0.0.1:1", RPC: "127.0.0.1:2", Admin: "127.0.0.1:3", Serves: []string{"im.Account"}},
		{Name: "send-1", Service: "send", State: Crashed, Restarts: 2, HTTP: "127.0.0.1:4"},
	}}
	if err := Write(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Instances) != 2 || got.Instances[0].Serves[0] != "im.Account" || got.Instances[1].Restarts != 2 {
		t.Fatalf("read back %+v", got)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err == nil {
		t.Error("Read accepted a broken file")
	}
}

// TestReadsOlderAndNewerFiles reads a file as up wrote it before Serves
// existed, and one with a field added later: readers must keep working.
func TestReadsOlderAndNewerFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, []byte(`{"instances": [{"name": "send", "service": "send", "state": "ready",
	  "pid": 4242, "restarts": 0, "http": "127.0.0.1:39001", "rpc": "127.0.0.1:39002", "admin": "127.0.0.1:39003",
	  "future": true}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if in, ok := st.Instance("send"); !ok || in.PID != 4242 || in.RPC != "127.0.0.1:39002" {
		t.Errorf("Instance(send) = %+v, %v", in, ok)
	}
}

func TestFind(t *testing.T) {
	st := &State{Instances: []Instance{
		{Name: "send-1", Service: "send", State: Crashed, HTTP: "a"},
		{Name: "send-2", Service: "send", State: Ready, HTTP: "b"},
		{Name: "sync", Service: "sync", State: Starting, HTTP: "c", Serves: []string{"im.Sync"}},
	}}
	for _, tc := range []struct{ name, http string }{
		{"send-1", "a"},  // an instance by name, whatever its state
		{"send", "b"},    // a service: its ready instance
		{"sync", "c"},    // a service with none ready: its first
		{"im.Sync", "c"}, // a protobuf service
	} {
		if in, ok := st.Find(tc.name); !ok || in.HTTP != tc.http {
			t.Errorf("Find(%q) = %+v, %v; want http %s", tc.name, in, ok, tc.http)
		}
	}
	if _, ok := st.Find("nosuch"); ok {
		t.Error("Find(nosuch) found something")
	}
	st.Instances[0].RPC, st.Instances[1].RPC = "r1", "r2"
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"send", []string{"r1", "r2"}}, // every replica
		{"send-1", nil},                // an instance is itself
		{"nosuch", nil},
	} {
		if got := st.RPCs(tc.name); !slices.Equal(got, tc.want) {
			t.Errorf("RPCs(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
	if st.AllReady() {
		t.Error("AllReady with a crashed instance")
	}
	if (&State{}).AllReady() {
		t.Error("AllReady with no instances")
	}
}
