package handlers

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/svrkit"
)

// gatedPush records Push.Notify calls; each waits for the gate.
type gatedPush struct {
	gate chan struct{}
	mu   sync.Mutex
	got  []*im.PushNotifyRequest
}

func (p *gatedPush) Invoke(ctx context.Context, _ *svrkit.MethodDesc, req, _ proto.Message, _ ...svrkit.CallOption) error {
	select {
	case <-p.gate:
	case <-ctx.Done():
		return svrkit.AsError(ctx.Err())
	}
	p.mu.Lock()
	p.got = append(p.got, proto.Clone(req).(*im.PushNotifyRequest))
	p.mu.Unlock()
	return nil
}

// TestPushQueueFolds: notifies for a user that wait behind a busy push
// service are folded into one per type, with the newest version, and
// Notify never blocks the delivery that calls it.
func TestPushQueueFolds(t *testing.T) {
	p := &gatedPush{gate: make(chan struct{})}
	q := NewPushQueue(im.NewPushClient(p), slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer q.Close()
	msg := func(v uint64) *im.SyncItem { return &im.SyncItem{Type: im.SyncType_SYNC_TYPE_MESSAGES, Version: v} }
	// One call per worker blocks in the gate, so every worker is busy...
	for u := range uint64(PushWorkers) {
		q.Notify(context.Background(), 100+u, msg(1))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		q.mu.Lock()
		n := len(q.waiting)
		q.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the workers did not take the first notifies")
		}
		time.Sleep(time.Millisecond)
	}
	// ...and user 1's notifies wait, folding.
	start := time.Now()
	for v := uint64(1); v <= 50; v++ {
		q.Notify(context.Background(), 1, msg(v))
	}
	q.Notify(context.Background(), 1, &im.SyncItem{Type: im.SyncType_SYNC_TYPE_CONTACTS, Version: 7})
	if d := time.Since(start); d > time.Second {
		t.Errorf("51 notifies behind a stuck push service took %v", d)
	}
	close(p.gate)
	deadline = time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		n := len(p.got)
		p.mu.Unlock()
		if n == PushWorkers+2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d notifies sent, want %d", n, PushWorkers+2)
		}
		time.Sleep(time.Millisecond)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var forUser1 []string
	for _, r := range p.got {
		if r.GetUserId() == 1 {
			forUser1 = append(forUser1, r.GetNotify().GetType().String()+"@"+string(rune('0'+r.GetNotify().GetVersion()%10)))
			if r.GetNotify().GetType() == im.SyncType_SYNC_TYPE_MESSAGES && r.GetNotify().GetVersion() != 50 {
				t.Errorf("user 1's messages notify has version %d, want the newest, 50", r.GetNotify().GetVersion())
			}
		}
	}
	if len(forUser1) != 2 {
		t.Errorf("user 1 got %v: want one notify per type", forUser1)
	}
}

// refusingPush refuses the first refuse Notify calls with code, then
// takes them, recording what it took.
type refusingPush struct {
	code   svrkit.Code
	refuse int
	mu     sync.Mutex
	calls  int
	got    []*im.PushNotifyRequest
}

func (p *refusingPush) Invoke(_ context.Context, _ *svrkit.MethodDesc, req, _ proto.Message, _ ...svrkit.CallOption) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.calls <= p.refuse {
		return svrkit.NewError(p.code, "refused")
	}
	p.got = append(p.got, proto.Clone(req).(*im.PushNotifyRequest))
	return nil
}

func (p *refusingPush) counts() (calls, taken int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls, len(p.got)
}

// TestPushQueueRetriesPassingRefusals: a notify the push service sheds
// (overloaded) is pushed again after a pause, so the device still hears of
// its message; a refusal that will not pass (permission denied) is not
// repeated, and a notify that keeps being shed stops after pushAttempts.
func TestPushQueueRetriesPassingRefusals(t *testing.T) {
	msg := &im.SyncItem{Type: im.SyncType_SYNC_TYPE_MESSAGES, Version: 9}
	run := func(code svrkit.Code, refuse int) *refusingPush {
		p := &refusingPush{code: code, refuse: refuse}
		q := NewPushQueue(im.NewPushClient(p), slog.New(slog.NewTextHandler(io.Discard, nil)))
		defer q.Close()
		q.Notify(context.Background(), 1, msg)
		// The pauses add up to 20+40+80 ms; wait until the queue is idle
		// for longer than the longest.
		deadline := time.Now().Add(10 * time.Second)
		last, since := -1, time.Now()
		for time.Since(since) < time.Second {
			if time.Now().After(deadline) {
				t.Fatalf("%v: the queue kept pushing", code)
			}
			if c, _ := p.counts(); c != last {
				last, since = c, time.Now()
			}
			time.Sleep(5 * time.Millisecond)
		}
		return p
	}
	if calls, taken := run(svrkit.Overloaded, 2).counts(); calls != 3 || taken != 1 {
		t.Errorf("shed twice: %d calls, %d taken; want 3 calls, the last taken", calls, taken)
	} else if p := run(svrkit.Overloaded, 2); p.got[0].GetNotify().GetVersion() != 9 {
		t.Errorf("the retried notify has version %d, want 9", p.got[0].GetNotify().GetVersion())
	}
	if calls, taken := run(svrkit.Overloaded, 100).counts(); calls != pushAttempts || taken != 0 {
		t.Errorf("always shed: %d calls, %d taken; want %d calls", calls, taken, pushAttempts)
	}
	if calls, taken := run(svrkit.PermissionDenied, 100).counts(); calls != 1 || taken != 0 {
		t.Errorf("permission denied: %d calls, %d taken; want 1 call", calls, taken)
	}
}
