package kv

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im/internal/crashtest"
)

// TestCrashChild is the child of TestCrashDurability: it writes forever and
// reports each write after Apply returns.
func TestCrashChild(t *testing.T) {
	dir, ok := crashtest.ChildDir()
	if !ok {
		t.Skip("runs only as the child process of TestCrashDurability")
	}
	ctx := context.Background()
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	row := []byte("crash/row")
	for i := 1; ; i++ {
		key := fmt.Appendf(nil, "crash/%d", i%5)
		var b Batch
		b.Put(key, strconv.AppendInt(nil, int64(i), 10), AnyVersion)
		b.Append(row, strconv.AppendInt(nil, int64(i), 10))
		res, err := db.Apply(ctx, &b)
		if err != nil {
			t.Fatal(err)
		}
		crashtest.Report("%s %d %d %d", key, i, res[0], res[1])
	}
}

// TestCrashDurability SIGKILLs a writer and checks that every write it
// reported as acknowledged survived, and that versions are not reused.
func TestCrashDurability(t *testing.T) {
	dir := t.TempDir()
	type write struct {
		i        int
		version  uint64
		entryVer uint64
	}
	last := map[string]write{}
	var maxVersion uint64
	reports := 0
	crashtest.Run(t, "TestCrashChild", dir, 60*time.Second, func(line string) bool {
		var key string
		var w write
		if _, err := fmt.Sscanf(line, "%s %d %d %d", &key, &w.i, &w.version, &w.entryVer); err != nil {
			t.Fatalf("bad report %q: %v", line, err)
		}
		last[key] = w
		maxVersion = max(maxVersion, w.version)
		reports++
		return reports == 300
	})

	ctx := context.Background()
	db := openTest(t, dir)
	var maxI int
	for key, w := range last {
		val, ver, err := db.Get(ctx, []byte(key))
		if err != nil {
			t.Fatalf("%s: acknowledged write %d lost: %v", key, w.i, err)
		}
		got, _ := strconv.Atoi(string(val))
		// The child may have written more after its last report, never less.
		if ver < w.version || got < w.i {
			t.Fatalf("%s = %d@%d, but write %d@%d was acknowledged", key, got, ver, w.i, w.version)
		}
		maxI = max(maxI, w.i)
	}
	res, err := db.Scan(ctx, []byte("crash/row"), 0, MaxScanLimit)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) < maxI {
		t.Fatalf("row has %d entries; %d were acknowledged", len(res.Entries), maxI)
	}
	for i, e := range res.Entries {
		if e.Version != uint64(i+1) || string(e.Value) != strconv.Itoa(i+1) {
			t.Fatalf("entry %d = %d:%q", i, e.Version, e.Value)
		}
	}
	v, err := db.Put(ctx, []byte("crash/new"), nil, 0)
	if err != nil || v <= maxVersion {
		t.Fatalf("first version after the crash %d (%v); the child had reached %d", v, err, maxVersion)
	}
}
