// Command imload puts load on a running IM backend the way its clients do,
// and reports what a user would feel: messages per second end to end, the
// latency from the moment a message is sent to the moment the receiver's
// device has it, and what the backend's CPU spent per delivered message.
//
//	go run ./tools/svrkit up examples/im        # terminal 1
//	go run ./tools/imload -users 16 -duration 30s
//
// It registers -users fresh users (names unique to the run), logs each in on
// two devices — a phone that sends, a tablet that receives — and then, for
// -duration, every phone sends text messages to random other users one after
// the other (the next once the previous is acknowledged, after -think).
// Each message carries its send time; the tablet that syncs it records
// send-to-synced latency. After the duration, sending stops and the tablets
// get a few seconds to sync what was acknowledged; anything still missing
// then is reported as missing, and anything synced twice as a duplicate:
// both must be zero.
//
// How a tablet learns of a message is the point of the comparison:
//
//   - push (the default): each tablet holds a long link to the gateway and
//     syncs when the gateway pushes a sync notify (imclient.Watch), and
//     otherwise does nothing;
//   - -poll D: each tablet syncs over HTTP in a loop, pausing D when idle,
//     the way the backend was used before it had an access layer.
//
// Phones send over HTTP in both modes, so the modes differ only in
// delivery. -compare runs both modes (polling at -poll, default 10ms)
// alternately, -runs times each, for every user count in -users (a comma
// list), and reports the medians side by side: the peer in the same run,
// on the same machine.
//
// CPU per delivered message is the backend processes' user+system time
// (from /proc/PID/stat of every instance in svrkit up's state file) over
// the run, divided by the messages delivered: it includes what idle
// devices cost, which is what push saves.
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
	// Poll, when positive, makes tablets poll over HTTP, pausing Poll when
	// idle; zero makes them hold a long link and sync on push.
	Poll  time.Duration
	Drain time.Duration // how long tablets may catch up after sending stops
	// Processes are the backend's processes, whose CPU is measured (none:
	// no CPU figures).
	Processes processes
}

// Report is a run's result.
type Report struct {
	Mode         string         `json:"mode"` // "push" or "poll 10ms"
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
	Pushes       int64          `json:"pushes,omitempty"`
	// BackendCPU is the backend processes' CPU over the run (sending and
	// draining), in seconds, and CPUPerDelivered that over Synced, in
	// microseconds; CPUByProcess is the split, in seconds.
	BackendCPU      float64            `json:"backend_cpu_s,omitempty"`
	CPUPerDelivered float64            `json:"cpu_per_delivered_us,omitempty"`
	CPUByProcess    map[string]float64 `json:"cpu_by_process_s,omitempty"`
}

var help = cmdline.Help{
	Name:  "imload",
	Usage: []string{"imload [flags]"},
	Text: `Puts load on a running IM backend ('go run ./tools/svrkit up examples/im')
as its clients do: -users users, each with a phone that sends text messages
over HTTP to random others one after another and a tablet that receives
them — by push over the gateway's long link (the default), or by polling
Sync over HTTP with -poll D. It prints a progress line every second on
stderr and, at the end, a report on stdout (a table, or JSON with -json):
messages per second, send latency, send-to-synced latency (from a send to
the receiving tablet having the message) and the backend's CPU per
delivered message (from /proc of the processes in the state file).

-compare runs push and polling (-poll, default 10ms) alternately, -runs
times each, for each user count in -users (e.g. -users 16,64), and reports
the medians side by side.

Exit status: 0 when every acknowledged message was synced exactly once; 1
when the backend cannot be reached, the run fails, or any message is
missing or duplicated; 2 for bad usage.`,
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("imload", flag.ContinueOnError)
	state := fs.String("up", "examples/im/.data/up.json", "svrkit up's state file of the running backend")
	var cfg Config
	usersList := fs.String("users", "16", "simulated users, each with a sending and a receiving device (with -compare, a comma list)")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long the phones send")
	fs.DurationVar(&cfg.Think, "think", 0, "pause between one user's sends")
	fs.DurationVar(&cfg.Poll, "poll", 0, "poll Sync over HTTP, pausing this long when idle, instead of push (e.g. 10ms)")
	fs.DurationVar(&cfg.Drain, "drain", 10*time.Second, "how long tablets may catch up after sending stops")
	compare := fs.Bool("compare", false, "run push and polling (-poll, default 10ms) alternately and report medians")
	runs := fs.Int("runs", 3, "with -compare, runs of each mode per user count")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := cmdline.Parse(fs, args, help, stdout, stderr); err != nil {
		return cmdline.ExitCode(err)
	}
	var counts []int
	for _, f := range strings.Split(*usersList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			return cmdline.ExitCode(help.Usagef(stderr, "-users: want numbers >= 2, got %q", f))
		}
		counts = append(counts, n)
	}
	switch {
	case fs.NArg() > 0:
		return cmdline.ExitCode(help.Usagef(stderr, "unexpected argument %q: imload takes only flags", fs.Arg(0)))
	case cfg.Duration <= 0 || cfg.Poll < 0 || *runs < 1:
		return cmdline.ExitCode(help.Usagef(stderr, "need a positive -duration and -runs, and -poll >= 0"))
	case len(counts) > 1 && !*compare:
		return cmdline.ExitCode(help.Usagef(stderr, "several -users counts need -compare"))
	}
	addrs, err := imclient.ReadStateFile(*state)
	if err != nil {
		fmt.Fprintf(stderr, "imload: %v\n", err)
		return cmdline.ExitFailure
	}
	if cfg.Processes, err = backendProcesses(*state); err != nil {
		fmt.Fprintf(stderr, "imload: %v\n", err)
		return cmdline.ExitFailure
	}
	var reps []*Report
	if *compare {
		if cfg.Poll == 0 {
			cfg.Poll = 10 * time.Millisecond
		}
		reps, err = Compare(ctx, addrs, cfg, counts, *runs, stderr)
	} else {
		cfg.Users = counts[0]
		var rep *Report
		rep, err = Run(ctx, addrs, cfg, stderr)
		reps = append(reps, rep)
	}
	if err != nil {
		fmt.Fprintf(stderr, "imload: %v\n", err)
		return cmdline.ExitFailure
	}
	switch {
	case *asJSON && *compare:
		writeJSON(stdout, reps)
	case *asJSON:
		writeJSON(stdout, reps[0])
	case *compare:
		printComparison(stdout, reps)
	default:
		printReport(stdout, reps[0])
	}
	for _, r := range reps {
		if r.Missing > 0 || r.Duplicates > 0 {
			return cmdline.ExitFailure
		}
	}
	return cmdline.ExitOK
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// user is one simulated user.
type user struct {
	id            uint64
	phone, tablet *imclient.Client
}

// Run runs the load against the backend at addrs with fresh users,
// printing a progress line to progress every second.
func Run(ctx context.Context, addrs imclient.Addrs, cfg Config, progress io.Writer) (*Report, error) {
	users, err := setup(ctx, addrs, cfg.Users)
	if err != nil {
		return nil, err
	}
	return load(ctx, users, cfg, progress)
}

// Compare runs push and polling alternately, runs times each, for each
// user count (users set up once per count), and returns one report per
// mode and count with the medians of its runs.
func Compare(ctx context.Context, addrs imclient.Addrs, cfg Config, counts []int, runs int, progress io.Writer) ([]*Report, error) {
	var out []*Report
	for _, n := range counts {
		users, err := setup(ctx, addrs, n)
		if err != nil {
			return nil, err
		}
		var push, poll []*Report
		for r := range runs {
			for _, p := range []time.Duration{0, cfg.Poll} {
				c := cfg
				c.Users, c.Poll = n, p
				fmt.Fprintf(progress, "imload: %d users, %s, run %d of %d\n", n, mode(p), r+1, runs)
				rep, err := load(ctx, users, c, progress)
				if err != nil {
					return nil, err
				}
				if p == 0 {
					push = append(push, rep)
				} else {
					poll = append(poll, rep)
				}
			}
		}
		out = append(out, median(push), median(poll))
	}
	return out, nil
}

func mode(poll time.Duration) string {
	if poll > 0 {
		return "poll " + poll.String()
	}
	return "push"
}

// load runs one load with users: their phones send for cfg.Duration and
// their tablets receive in cfg's mode until they have everything or
// cfg.Drain passes.
func load(ctx context.Context, users []*user, cfg Config, progress io.Writer) (*Report, error) {
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
	// runID marks this run's messages: a tablet may still get a message of
	// an earlier run with the same users, which is not this run's to count.
	runID := strconv.FormatInt(start.UnixNano(), 36) + "-"
	if cfg.Poll == 0 {
		// Push: every tablet holds a long link (its first sync waits for
		// the link, not for a poll).
		for _, u := range users {
			if _, err := again(ctx, func() (struct{}, error) { return struct{}{}, u.tablet.Connect(ctx) }); err != nil {
				if svrkit.CodeOf(err) == svrkit.FailedPrecondition {
					return nil, fmt.Errorf("%w (this backend has no gateway: use -poll 10ms)", err)
				}
				return nil, fmt.Errorf("long link: %w", err)
			}
		}
		defer func() {
			for _, u := range users {
				_ = u.tablet.Close()
			}
		}()
	}
	cpuBefore := cfg.Processes.cpuTimes()
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
				_, err := u.phone.SendText(ctx, to, fmt.Sprintf("%s%d-%d", runID, i, n),
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
		// receive counts one sync answer's messages of this run.
		receive := func(rep *im.SyncReply) {
			rounds.Add(1)
			now := time.Now()
			for _, it := range rep.GetItems() {
				m := it.GetMessage()
				if it.GetType() != im.SyncType_SYNC_TYPE_MESSAGES || m.GetFromUserId() == u.id || !strings.HasPrefix(m.GetClientMsgId(), runID) {
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
		}
		tablets.Add(1)
		go func() {
			defer tablets.Done()
			if cfg.Poll == 0 {
				err := u.tablet.Watch(syncCtx, func(rep *im.SyncReply) error { receive(rep); return nil })
				if err != nil && syncCtx.Err() == nil {
					countErr("watch", err)
				}
				return
			}
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
				receive(rep)
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
	cpuBy, cpu := cpuSpent(cpuBefore, cfg.Processes.cpuTimes())
	stopSyncing()
	tablets.Wait()
	<-progressDone
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	mu.Lock()
	defer mu.Unlock()
	rep := &Report{
		Mode:         mode(cfg.Poll),
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
	for _, u := range users {
		rep.Pushes += u.tablet.LinkStats().Pushes
	}
	rep.Missing = max(0, rep.Sent-rep.Synced)
	if len(cpuBy) > 0 {
		rep.BackendCPU = cpu.Seconds()
		rep.CPUByProcess = map[string]float64{}
		for name, d := range cpuBy {
			rep.CPUByProcess[name] = d.Seconds()
		}
		if rep.Synced > 0 {
			rep.CPUPerDelivered = float64(cpu.Microseconds()) / float64(rep.Synced)
		}
	}
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
			// On a busy machine the slow password hash may miss its
			// deadline: retry what may be retried (a register that did
			// happen answers already_exists the second time).
			_, err := again(ctx, func() (uint64, error) { return u.phone.Register(ctx, name, password, "") })
			if err != nil && svrkit.CodeOf(err) != svrkit.AlreadyExists {
				errc <- fmt.Errorf("register %s: %w", name, err)
				return
			}
			for _, d := range []struct {
				c      *imclient.Client
				device string
			}{{u.phone, "phone"}, {u.tablet, "tablet"}} {
				s, err := again(ctx, func() (imclient.Session, error) { return d.c.Login(ctx, name, password, d.device) })
				if err != nil {
					errc <- fmt.Errorf("login %s: %w", name, err)
					return
				}
				u.id = s.UserID
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

// again calls f until it succeeds, fails for good, or has failed 5 times
// with a code that may pass (unavailable, deadline_exceeded,
// resource_exhausted, overloaded), waiting a doubling pause in between.
func again[T any](ctx context.Context, f func() (T, error)) (T, error) {
	wait := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		v, err := f()
		if err == nil || attempt == 5 || ctx.Err() != nil ||
			(!imclient.Retryable(err) && svrkit.CodeOf(err) != svrkit.Overloaded) {
			return v, err
		}
		time.Sleep(wait)
		wait *= 2
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func printReport(w io.Writer, r *Report) {
	fmt.Fprintf(w, "\nusers %d, %s, %.1fs of sending\n\n", r.Users, r.Mode, r.Duration)
	fmt.Fprintf(w, "| metric | value |\n| --- | ---: |\n")
	fmt.Fprintf(w, "| messages sent (acknowledged) | %d |\n", r.Sent)
	fmt.Fprintf(w, "| messages synced by receivers | %d |\n", r.Synced)
	fmt.Fprintf(w, "| missing / duplicates | %d / %d |\n", r.Missing, r.Duplicates)
	fmt.Fprintf(w, "| sent per second | %.0f |\n", r.SentPerSec)
	fmt.Fprintf(w, "| synced per second (end to end) | %.0f |\n", r.SyncedPerSec)
	fmt.Fprintf(w, "| send latency p50 / p99 | %.1f / %.1f ms |\n", r.SendP50, r.SendP99)
	fmt.Fprintf(w, "| send-to-synced p50 / p99 / max | %.1f / %.1f / %.1f ms |\n", r.DeliveredP50, r.DeliveredP99, r.DeliveredMax)
	fmt.Fprintf(w, "| sync answers handled (push: those with items) | %d |\n", r.SyncRounds)
	if r.Pushes > 0 {
		fmt.Fprintf(w, "| sync notifies pushed | %d |\n", r.Pushes)
	}
	if r.BackendCPU > 0 {
		fmt.Fprintf(w, "| backend CPU | %.2f s |\n", r.BackendCPU)
		fmt.Fprintf(w, "| backend CPU per delivered message | %.0f µs |\n", r.CPUPerDelivered)
	}
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

// median folds runs of one mode into one report: the median of each
// rate, latency and CPU figure, and the sums of messages, losses and
// duplicates (which must stay zero in every run).
func median(runs []*Report) *Report {
	out := *runs[0]
	out.Errors = map[string]int{}
	out.CPUByProcess = nil
	out.Sent, out.Synced, out.Missing, out.Duplicates, out.SyncRounds, out.Pushes = 0, 0, 0, 0, 0, 0
	for _, r := range runs {
		out.Sent += r.Sent
		out.Synced += r.Synced
		out.Missing += r.Missing
		out.Duplicates += r.Duplicates
		out.SyncRounds += r.SyncRounds
		out.Pushes += r.Pushes
		for k, n := range r.Errors {
			out.Errors[k] += n
		}
	}
	med := func(f func(*Report) float64) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	out.Duration = med(func(r *Report) float64 { return r.Duration })
	out.SentPerSec = med(func(r *Report) float64 { return r.SentPerSec })
	out.SyncedPerSec = med(func(r *Report) float64 { return r.SyncedPerSec })
	out.SendP50 = med(func(r *Report) float64 { return r.SendP50 })
	out.SendP99 = med(func(r *Report) float64 { return r.SendP99 })
	out.DeliveredP50 = med(func(r *Report) float64 { return r.DeliveredP50 })
	out.DeliveredP99 = med(func(r *Report) float64 { return r.DeliveredP99 })
	out.DeliveredMax = med(func(r *Report) float64 { return r.DeliveredMax })
	out.BackendCPU = med(func(r *Report) float64 { return r.BackendCPU })
	out.CPUPerDelivered = med(func(r *Report) float64 { return r.CPUPerDelivered })
	return &out
}

// printComparison prints -compare's medians, push beside polling for
// each user count.
func printComparison(w io.Writer, reps []*Report) {
	fmt.Fprintf(w, "\nmedians of each mode's runs, %s, load average %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), loadAverage())
	fmt.Fprintf(w, "| users | mode | sent/s | send-to-synced p50 | p99 | backend CPU per delivered message | missing / duplicates |\n")
	fmt.Fprintf(w, "| ---: | --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range reps {
		fmt.Fprintf(w, "| %d | %s | %.0f | %.1f ms | %.1f ms | %.0f µs | %d / %d |\n",
			r.Users, r.Mode, r.SentPerSec, r.DeliveredP50, r.DeliveredP99, r.CPUPerDelivered, r.Missing, r.Duplicates)
	}
}

// loadAverage is /proc/loadavg's first three fields: how busy the machine
// was, which the figures depend on.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
