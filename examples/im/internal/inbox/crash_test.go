package inbox

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im/internal/crashtest"
	"github.com/svrkit/svrkit/examples/im/internal/kv"
	"github.com/svrkit/svrkit/examples/im/internal/seq"
)

var crashOpts = Options{SyncKeySecret: []byte("crash")}

// TestCrashChild is the child of TestCrash: it delivers forever and reports
// each message after Deliver returned.
func TestCrashChild(t *testing.T) {
	dir, ok := crashtest.ChildDir()
	if !ok {
		t.Skip("runs only as the child process of TestCrash")
	}
	db, err := kv.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ib := New(db, seq.New(db, seq.Options{Step: 10}), crashOpts)
	for i := 0; ; i++ {
		v, _, err := ib.Deliver(context.Background(), 1, fmt.Appendf(nil, "m%d", i), fmt.Sprint("c", i))
		if err != nil {
			t.Fatal(err)
		}
		crashtest.Report("%d %d", i, v)
	}
}

// TestCrash SIGKILLs a delivering process: after reopening, every message
// it acknowledged is in the inbox at its version, in order; a retry of any of
// them is a duplicate; and new messages get higher versions.
func TestCrash(t *testing.T) {
	dir := t.TempDir()
	acked := map[int]uint64{}
	var maxV uint64
	crashtest.Run(t, "TestCrashChild", dir, 60*time.Second, func(line string) bool {
		var i int
		var v uint64
		if _, err := fmt.Sscanf(line, "%d %d", &i, &v); err != nil {
			t.Fatalf("bad report %q", line)
		}
		acked[i] = v
		maxV = max(maxV, v)
		return len(acked) == 300
	})

	ctx := context.Background()
	ib, _ := open(t, dir, crashOpts)
	d := newDevice("phone", 1)
	d.drain(t, ib, MaxSyncLimit)
	got := map[string]uint64{}
	for i, e := range d.got {
		if want := fmt.Sprint("m", i); string(e.Payload) != want {
			t.Fatalf("entry %d is %q, want %q: lost or reordered", i, e.Payload, want)
		}
		got[string(e.Payload)] = e.Version
	}
	for i, v := range acked {
		if got[fmt.Sprint("m", i)] != v {
			t.Fatalf("acknowledged message %d at version %d: found at %d", i, v, got[fmt.Sprint("m", i)])
		}
		if rv, dup, err := ib.Deliver(ctx, 1, nil, fmt.Sprint("c", i)); err != nil || !dup || rv != v {
			t.Fatalf("retry of %d = %d %v %v; want duplicate at %d", i, rv, dup, err, v)
		}
	}
	v, _, err := ib.Deliver(ctx, 1, []byte("after"), "after")
	if err != nil || v <= d.last[Messages] || v <= maxV {
		t.Fatalf("first version after the crash %d (%v); inbox reached %d", v, err, d.last[Messages])
	}
}
