package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/imclient"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/tools/internal/latency"
)

// traffic is one run's devices and what they record, whatever they send
// (one-to-one or group messages): phones send one message after another
// and tablets receive them — by push (poll 0: a long link to the gateway,
// syncing on each sync notify, imclient.Watch) or by syncing in a loop —
// each message carrying its send time in its text ("L|<unix ns>") so that
// the tablet that syncs it measures send-to-synced. Its methods are safe
// for concurrent use.
type traffic struct {
	start time.Time
	think time.Duration // a phone's pause between sends
	poll  time.Duration // an idle tablet's pause between syncs; 0: push

	sent, synced, dups, rounds atomic.Int64

	mu                sync.Mutex
	sendLat, delivLat latency.Histogram
	errs              map[string]int

	// Phones send on sendCtx, which ends after the run's duration;
	// tablets sync and progress is printed on syncCtx, which stop ends.
	sendCtx, syncCtx         context.Context
	stopSending, stopSyncing context.CancelFunc
	phones, tablets          sync.WaitGroup
	progressDone             chan struct{}
}

// newTraffic starts the clock of a run of cfg.Duration; progress and
// then stop must be called.
func newTraffic(ctx context.Context, cfg Config) *traffic {
	tr := &traffic{start: time.Now(), think: cfg.Think, poll: cfg.Poll, errs: map[string]int{}, progressDone: make(chan struct{})}
	tr.sendCtx, tr.stopSending = context.WithTimeout(ctx, cfg.Duration)
	tr.syncCtx, tr.stopSyncing = context.WithCancel(ctx)
	return tr
}

func (tr *traffic) fail(what string, err error) {
	tr.mu.Lock()
	tr.errs[what+" "+svrkit.CodeOf(err).String()]++
	tr.mu.Unlock()
}

// clientMsgID is the id of phone i's n-th message, unique to the run.
func (tr *traffic) clientMsgID(i, n int) string {
	return fmt.Sprintf("%d-%d-%d", tr.start.UnixNano(), i, n)
}

// phone starts a phone: send(ctx, n, text) its n-th message, until the
// run's duration ends, pausing think after each one answered. A send in
// flight then still finishes (on ctx): it counts only once answered.
func (tr *traffic) phone(ctx context.Context, send func(ctx context.Context, n int, text string) error) {
	sendCtx := tr.sendCtx
	tr.phones.Add(1)
	go func() {
		defer tr.phones.Done()
		for n := 0; sendCtx.Err() == nil; n++ {
			t0 := time.Now()
			if err := send(ctx, n, "L|"+strconv.FormatInt(t0.UnixNano(), 10)); err != nil {
				if ctx.Err() != nil {
					return
				}
				tr.fail("send", err)
				continue
			}
			d := time.Since(t0)
			tr.sent.Add(1)
			tr.mu.Lock()
			tr.sendLat.Record(d)
			tr.mu.Unlock()
			if tr.think > 0 {
				select {
				case <-sendCtx.Done():
				case <-time.After(tr.think):
				}
			}
		}
	}()
}

// connect opens the long link of every user's tablet (users without one
// are skipped) when the run is driven by push (cfg.Poll 0), before the
// clock starts, and returns what closes them.
func connect(ctx context.Context, cfg Config, users []*user) (func(), error) {
	if cfg.Poll > 0 {
		return func() {}, nil
	}
	var open []*imclient.Client
	closeAll := func() {
		for _, c := range open {
			_ = c.Close()
		}
	}
	for _, u := range users {
		c := u.tablet
		if c == nil {
			continue
		}
		if err := patiently(ctx, func() error { return c.Connect(ctx) }); err != nil {
			closeAll()
			if svrkit.CodeOf(err) == svrkit.FailedPrecondition {
				return nil, fmt.Errorf("%w (this backend has no gateway: use -poll 10ms)", err)
			}
			return nil, fmt.Errorf("long link: %w", err)
		}
		open = append(open, c)
	}
	return closeAll, nil
}

// tablet starts a tablet receiving on c until stop; it counts the
// messages counted(m) says are the run's (once each: a second copy is a
// duplicate).
func (tr *traffic) tablet(c *imclient.Client, counted func(*im.Message) bool) {
	syncCtx := tr.syncCtx
	seen := map[string]bool{}
	receive := func(rep *im.SyncReply) {
		tr.rounds.Add(1)
		now := time.Now()
		for _, it := range rep.GetItems() {
			m := it.GetMessage()
			if it.GetType() != im.SyncType_SYNC_TYPE_MESSAGES || !counted(m) {
				continue
			}
			ns, ok := strings.CutPrefix(m.GetText(), "L|")
			t0, err := strconv.ParseInt(ns, 10, 64)
			if !ok || err != nil {
				continue // not ours
			}
			if seen[m.GetClientMsgId()] {
				tr.dups.Add(1)
				continue
			}
			seen[m.GetClientMsgId()] = true
			tr.synced.Add(1)
			tr.mu.Lock()
			tr.delivLat.Record(now.Sub(time.Unix(0, t0)))
			tr.mu.Unlock()
		}
	}
	tr.tablets.Add(1)
	go func() {
		defer tr.tablets.Done()
		if tr.poll == 0 {
			err := c.Watch(syncCtx, func(rep *im.SyncReply) error { receive(rep); return nil })
			if err != nil && syncCtx.Err() == nil {
				tr.fail("watch", err)
			}
			return
		}
		for syncCtx.Err() == nil {
			rep, err := c.Sync(syncCtx, 500)
			if err != nil {
				if syncCtx.Err() != nil {
					return
				}
				tr.fail("sync", err)
				time.Sleep(tr.poll)
				continue
			}
			receive(rep)
			if !rep.GetContinueFlag() {
				time.Sleep(tr.poll)
			}
		}
	}()
}

// progress prints a line every second until stop, with extra()'s text at
// its end.
func (tr *traffic) progress(w io.Writer, extra func() string) {
	go func() {
		defer close(tr.progressDone)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var lastSent, lastSynced int64
		for {
			select {
			case <-tr.syncCtx.Done():
				return
			case <-tick.C:
			}
			more := extra()
			s, y := tr.sent.Load(), tr.synced.Load()
			tr.mu.Lock()
			p50, p99 := tr.delivLat.Quantile(0.50), tr.delivLat.Quantile(0.99)
			nerr := 0
			for _, n := range tr.errs {
				nerr += n
			}
			tr.mu.Unlock()
			fmt.Fprintf(w, "imload: %5.1fs  sent %7d (%6d/s)  synced %7d (%6d/s)  send-to-synced p50 %6.1fms p99 %6.1fms  errors %d%s\n",
				time.Since(tr.start).Seconds(), s, s-lastSent, y, y-lastSynced, ms(p50), ms(p99), nerr, more)
			lastSent, lastSynced = s, y
		}
	}()
}

// sending waits for the phones to stop and returns how long they sent.
func (tr *traffic) sending() time.Duration {
	tr.phones.Wait()
	return time.Since(tr.start)
}

// stop lets the tablets sync until they have want messages (duplicates
// included), for at most drain, then stops them and the progress lines.
// Its error is ctx's.
func (tr *traffic) stop(ctx context.Context, drain time.Duration, want int64) error {
	deadline := time.Now().Add(drain)
	for tr.synced.Load()+tr.dups.Load() < want && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	tr.stopSending()
	tr.stopSyncing()
	tr.tablets.Wait()
	<-tr.progressDone
	return ctx.Err()
}

// latencies returns the send and send-to-synced quantiles, in ms: p50,
// p99, max.
func (tr *traffic) latencies() (send, synced [3]float64) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i, q := range []float64{0.50, 0.99, 1} {
		send[i], synced[i] = ms(tr.sendLat.Quantile(q)), ms(tr.delivLat.Quantile(q))
	}
	return send, synced
}
