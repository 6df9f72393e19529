// Command imload puts load on a running IM backend over HTTP, the way its
// clients do, and reports what a user would feel: messages per second end to
// end and the latency from the moment a message is sent to the moment the
// receiver's sync returns it.
//
//	go run ./tools/svrkit up examples/im        # terminal 1
//	go run ./tools/imload -users 16 -duration 30s
//
// It registers -users fresh users (names unique to the run), logs each in on
// two devices — a phone that sends, a tablet that syncs — and then, for
// -duration, every phone sends text messages to random other users one after
// the other (the next once the previous is acknowledged, after -think),
// while every tablet syncs in a loop. Each message carries its send time;
// the tablet that syncs it records send-to-synced latency. After the
// duration, sending stops and the tablets get a few seconds to sync what was
// acknowledged; anything still missing then is reported as missing, and
// anything synced twice as a duplicate: both must be zero.
//
// There is no push yet (the long-connection access layer comes later), so a
// tablet learns of a message by syncing: an idle tablet syncs again after
// -poll, and send-to-synced latency includes up to that interval.
//
// Latencies go into log-linear histograms (package tools/internal/latency,
// within 1.6% of the true value), so the progress line costs the same at the
// first second and the last.
//
// A progress line is printed every second; the report at the end is a table,
// or JSON with -json.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/imclient"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/tools/internal/cmdline"
	"github.com/svrkit/svrkit/tools/internal/latency"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Config is one load run.
type Config struct {
	Users    int
	Duration time.Duration
	Think    time.Duration // pause between one phone's sends
	Poll     time.Duration // an idle tablet's pause between syncs
	Drain    time.Duration // how long tablets may catch up after sending stops
}

// Report is a run's result.
type Report struct {
	Users        int            `json:"users"`
	Duration     float64        `json:"duration_s"`
	Sent         int64          `json:"sent"`
	Synced       int64          `json:"synced"`
	Missing      int64          `json:"missing"`
	Duplicates   int64          `json:"duplicates"`
	SentPerSec   float64        `json:"sent_per_s"`
	SyncedPerSec float64        `json:"synced_per_s"`
	SendP50      float64        `json:"send_p50_ms"`
	SendP99      float64        `json:"send_p99_ms"`
	DeliveredP50 float64        `json:"send_to_synced_p50_ms"`
	DeliveredP99 float64        `json:"send_to_synced_p99_ms"`
	DeliveredMax float64        `json:"send_to_synced_max_ms"`
	Errors       map[string]int `json:"errors,omitempty"`
	SyncRounds   int64          `json:"sync_rounds"`
}

var help = cmdline.Help{
	Name:  "imload",
	Usage: []string{"imload [flags]"},
	Text: `Puts load on a running IM backend ('go run ./tools/svrkit up examples/im')
over HTTP, as its clients do: -users users, each with a phone that sends text
messages to random others one after another and a tablet that syncs in a
loop. It prints a progress line every second on stderr and, at the end, a
report on stdout (a table, or JSON with -json): messages per second, send
latency, and send-to-synced latency, the time from a send to the receiving
tablet's sync returning the message.

Exit status: 0 when every acknowledged message was synced exactly once; 1
when the backend cannot be reached, the run fails, or any message is
missing or duplicated; 2 for bad usage.`,
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("imload", flag.ContinueOnError)
	state := fs.String("up", "examples/im/.data/up.json", "svrkit up's state file of the running backend")
	var cfg Config
	fs.IntVar(&cfg.Users, "users", 16, "simulated users, each with a sending and a syncing device")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long the phones send")
	fs.DurationVar(&cfg.Think, "think", 0, "pause between one user's sends")
	fs.DurationVar(&cfg.Poll, "poll", 10*time.Millisecond, "pause of an idle tablet between syncs")
	fs.DurationVar(&cfg.Drain, "drain", 10*time.Second, "how long tablets may catch up after sending stops")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := cmdline.Parse(fs, args, help, stdout, stderr); err != nil {
		return cmdline.ExitCode(err)
	}
	switch {
	case fs.NArg() > 0:
		return cmdline.ExitCode(help.Usagef(stderr, "unexpected argument %q: imload takes only flags", fs.Arg(0)))
	case cfg.Users < 2 || cfg.Duration <= 0:
		return cmdline.ExitCode(help.Usagef(stderr, "need -users >= 2 and a positive -duration"))
	}
	addrs, err := imclient.ReadStateFile(*state)
	if err != nil {
		fmt.Fprintf(stderr, "imload: %v\n", err)
		return cmdline.ExitFailure
	}
	rep, err := Run(ctx, addrs, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "imload: %v\n", err)
		return cmdline.ExitFailure
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		printReport(stdout, rep)
	}
	if rep.Missing > 0 || rep.Duplicates > 0 {
		return cmdline.ExitFailure
	}
	return cmdline.ExitOK
}

// user is one simulated user.
type user struct {
	id            uint64
	phone, tablet *imclient.Client
}

// Run runs the load against the backend at addrs, printing a progress line
// to progress every second.
func Run(ctx context.Context, addrs imclient.Addrs, cfg Config, progress io.Writer) (*Report, error) {
	if cfg.Poll <= 0 {
		cfg.Poll = 10 * time.Millisecond
	}
	users, err := setup(ctx, addrs, cfg.Users)
	if err != nil {
		return nil, err
	}
	var (
		sent, synced, dups, rounds atomic.Int64
		mu                         sync.Mutex
		sendLat, delivLat          latency.Histogram
		errs                       = map[string]int{}
		seen                       = make([]map[string]bool, len(users))
	)
	countErr := func(what string, err error) {
		mu.Lock()
		errs[what+" "+svrkit.CodeOf(err).String()]++
		mu.Unlock()
	}
	start := time.Now()
	sendCtx, stopSending := context.WithTimeout(ctx, cfg.Duration)
	defer stopSending()
	syncCtx, stopSyncing := context.WithCancel(ctx)
	defer stopSyncing()

	var phones, tablets sync.WaitGroup
	for i, u := range users {
		seen[i] = map[string]bool{}
		phones.Add(1)
		go func() {
			defer phones.Done()
			rng := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
			for n := 0; sendCtx.Err() == nil; n++ {
				to := users[(i+1+rng.IntN(len(users)-1))%len(users)].id
				t0 := time.Now()
				// A send in flight when the duration ends still finishes
				// (on ctx, not sendCtx): it counts only once answered.
				_, err := u.phone.SendText(ctx, to, fmt.Sprintf("%d-%d-%d", start.UnixNano(), i, n),
					"L|"+strconv.FormatInt(t0.UnixNano(), 10))
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					countErr("send", err)
					continue
				}
				d := time.Since(t0)
				sent.Add(1)
				mu.Lock()
				sendLat.Record(d)
				mu.Unlock()
				if cfg.Think > 0 {
					select {
					case <-sendCtx.Done():
					case <-time.After(cfg.Think):
					}
				}
			}
		}()
		tablets.Add(1)
		go func() {
			defer tablets.Done()
			for syncCtx.Err() == nil {
				rep, err := u.tablet.Sync(syncCtx, 500)
				if err != nil {
					if syncCtx.Err() != nil {
						return
					}
					countErr("sync", err)
					time.Sleep(cfg.Poll)
					continue
				}
				rounds.Add(1)
				now := time.Now()
				for _, it := range rep.GetItems() {
					m := it.GetMessage()
					if it.GetType() != im.SyncType_SYNC_TYPE_MESSAGES || m.GetFromUserId() == u.id {
						continue
					}
					ns, ok := strings.CutPrefix(m.GetText(), "L|")
					t0, err := strconv.ParseInt(ns, 10, 64)
					if !ok || err != nil {
						continue // not ours
					}
					if seen[i][m.GetClientMsgId()] {
						dups.Add(1)
						continue
					}
					seen[i][m.GetClientMsgId()] = true
					synced.Add(1)
					mu.Lock()
					delivLat.Record(now.Sub(time.Unix(0, t0)))
					mu.Unlock()
				}
				if !rep.GetContinueFlag() {
					time.Sleep(cfg.Poll)
				}
			}
		}()
	}

	// Progress, every second, until the tablets stop.
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var lastSent, lastSynced int64
		for {
			select {
			case <-syncCtx.Done():
				return
			case <-tick.C:
			}
			s, y := sent.Load(), synced.Load()
			mu.Lock()
			p50, p99 := delivLat.Quantile(0.50), delivLat.Quantile(0.99)
			nerr := 0
			for _, n := range errs {
				nerr += n
			}
			mu.Unlock()
			fmt.Fprintf(progress, "imload: %5.1fs  sent %7d (%6d/s)  synced %7d (%6d/s)  send-to-synced p50 %6.1fms p99 %6.1fms  errors %d\n",
				time.Since(start).Seconds(), s, s-lastSent, y, y-lastSynced, ms(p50), ms(p99), nerr)
			lastSent, lastSynced = s, y
		}
	}()

	phones.Wait()
	elapsed := time.Since(start)
	syncedInWindow := synced.Load()
	// Let the tablets catch up with what was acknowledged.
	deadline := time.Now().Add(cfg.Drain)
	for synced.Load()+dups.Load() < sent.Load() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	stopSyncing()
	tablets.Wait()
	<-progressDone
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	mu.Lock()
	defer mu.Unlock()
	rep := &Report{
		Users:        len(users),
		Duration:     elapsed.Seconds(),
		Sent:         sent.Load(),
		Synced:       synced.Load(),
		Duplicates:   dups.Load(),
		SentPerSec:   float64(sent.Load()) / elapsed.Seconds(),
		SyncedPerSec: float64(syncedInWindow) / elapsed.Seconds(),
		SendP50:      ms(sendLat.Quantile(0.50)),
		SendP99:      ms(sendLat.Quantile(0.99)),
		DeliveredP50: ms(delivLat.Quantile(0.50)),
		DeliveredP99: ms(delivLat.Quantile(0.99)),
		DeliveredMax: ms(delivLat.Quantile(1)),
		Errors:       errs,
		SyncRounds:   rounds.Load(),
	}
	rep.Missing = max(0, rep.Sent-rep.Synced)
	return rep, nil
}

// setup registers the users and logs in their two devices, a few at a time
// (registration runs a deliberately slow password hash).
func setup(ctx context.Context, addrs imclient.Addrs, n int) ([]*user, error) {
	prefix := "load" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	users := make([]*user, n)
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			name := fmt.Sprintf("%s_%d", prefix, i)
			const password = "load-test-password"
			u := &user{phone: imclient.New(addrs), tablet: imclient.New(addrs)}
			id, err := u.phone.Register(ctx, name, password, "")
			if err != nil {
				errc <- fmt.Errorf("register %s: %w", name, err)
				return
			}
			u.id = id
			if _, err := u.phone.Login(ctx, name, password, "phone"); err != nil {
				errc <- fmt.Errorf("login %s: %w", name, err)
				return
			}
			if _, err := u.tablet.Login(ctx, name, password, "tablet"); err != nil {
				errc <- fmt.Errorf("login %s: %w", name, err)
				return
			}
			// Start the tablet from now: a fresh user has nothing to sync
			// but its own profile.
			if _, _, err := u.tablet.SyncAll(ctx); err != nil {
				errc <- fmt.Errorf("first sync of %s: %w", name, err)
				return
			}
			users[i] = u
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	return users, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func printReport(w io.Writer, r *Report) {
	fmt.Fprintf(w, "\nusers %d, %.1fs of sending\n\n", r.Users, r.Duration)
	fmt.Fprintf(w, "| metric | value |\n| --- | ---: |\n")
	fmt.Fprintf(w, "| messages sent (acknowledged) | %d |\n", r.Sent)
	fmt.Fprintf(w, "| messages synced by receivers | %d |\n", r.Synced)
	fmt.Fprintf(w, "| missing / duplicates | %d / %d |\n", r.Missing, r.Duplicates)
	fmt.Fprintf(w, "| sent per second | %.0f |\n", r.SentPerSec)
	fmt.Fprintf(w, "| synced per second (end to end) | %.0f |\n", r.SyncedPerSec)
	fmt.Fprintf(w, "| send latency p50 / p99 | %.1f / %.1f ms |\n", r.SendP50, r.SendP99)
	fmt.Fprintf(w, "| send-to-synced p50 / p99 / max | %.1f / %.1f / %.1f ms |\n", r.DeliveredP50, r.DeliveredP99, r.DeliveredMax)
	fmt.Fprintf(w, "| sync rounds | %d |\n", r.SyncRounds)
	if len(r.Errors) > 0 {
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "| errors: %s | %d |\n", k, r.Errors[k])
		}
	}
}
