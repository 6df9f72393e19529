package storagetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/crashtest"
)

const crashSenders, crashUser = 4, 77

// TestCrashChild is the child of TestCrashDuringDeliver: it runs the storage
// layer and delivers from several senders at once through messagedata,
// reporting each message after Deliver answered.
func TestCrashChild(t *testing.T) {
	dir, ok := crashtest.ChildDir()
	if !ok {
		t.Skip("runs only as the child process of TestCrashDuringDeliver")
	}
	c := Start(t, dir, nil)
	md := c.MessageData(t)
	var wg sync.WaitGroup
	for s := range crashSenders {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("%d:%d", s, i)
				r, err := md.Deliver(context.Background(), &im.DeliverRequest{UserId: crashUser, Item: textItem(uint64(s), crashUser, id, id), DedupId: id})
				if err != nil {
					panic(err)
				}
				crashtest.Report("%d %d %d", s, i, r.GetVersion())
			}
		})
	}
	wg.Wait()
}

// TestCrashDuringDeliver SIGKILLs a process running the storage layer while
// four senders deliver through the RPC stack. On the same directory,
// afterwards: every acknowledged message is synced, once, at its
// acknowledged version, each sender's in order; retries are duplicates; new
// versions are higher.
func TestCrashDuringDeliver(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	dir := t.TempDir()
	type ack struct{ sender, seq int }
	acked := map[ack]uint64{}
	var maxV uint64
	crashtest.Run(t, "TestCrashChild", dir, 60*time.Second, func(line string) bool {
		var a ack
		var v uint64
		if _, err := fmt.Sscanf(line, "%d %d %d", &a.sender, &a.seq, &v); err != nil {
			t.Fatalf("bad report %q", line)
		}
		acked[a], maxV = v, max(maxV, v)
		return len(acked) == 400
	})

	c := Start(t, dir, nil)
	ctx, md := ctxT(t), c.MessageData(t)
	items, _ := syncAll(t, ctx, md, crashUser, "phone", nil, 1000)
	next := make([]int, crashSenders)
	seen := map[string]bool{}
	for _, it := range items {
		m := it.GetMessage()
		if seen[m.GetClientMsgId()] {
			t.Fatalf("message %s synced twice", m.GetClientMsgId())
		}
		seen[m.GetClientMsgId()] = true
		var a ack
		fmt.Sscanf(m.GetClientMsgId(), "%d:%d", &a.sender, &a.seq)
		if a.seq != next[a.sender] {
			t.Fatalf("sender %d: message %d after %d", a.sender, a.seq, next[a.sender]-1)
		}
		next[a.sender]++
		if v, ok := acked[a]; ok && v != it.GetVersion() {
			t.Fatalf("message %v acknowledged at version %d, synced at %d", a, v, it.GetVersion())
		}
	}
	for a, v := range acked {
		id := fmt.Sprintf("%d:%d", a.sender, a.seq)
		if !seen[id] {
			t.Fatalf("acknowledged message %s (version %d) lost", id, v)
		}
	}
	for s := range crashSenders {
		id := fmt.Sprintf("%d:%d", s, 0)
		r := must(md.Deliver(ctx, &im.DeliverRequest{UserId: crashUser, Item: textItem(uint64(s), crashUser, id, id), DedupId: id}))
		if !r.GetDuplicate() {
			t.Fatalf("retry of %s after the crash stored again", id)
		}
	}
	r := must(md.Deliver(ctx, &im.DeliverRequest{UserId: crashUser, Item: textItem(9, crashUser, "after", "after"), DedupId: "after"}))
	if r.GetVersion() <= maxV || r.GetVersion() <= items[len(items)-1].GetVersion() {
		t.Fatalf("version %d after the crash; before: acked %d, stored %d", r.GetVersion(), maxV, items[len(items)-1].GetVersion())
	}
	t.Logf("%d acknowledged, %d stored (in flight at the kill: %d)", len(acked), len(items), len(items)-len(acked))
}
