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
// With -ceiling, each run is followed by the in-process ceiling (package
// examples/im/ceiling): the same store work per message, in this process,
// with no RPC or HTTP; the report gives the backend as a fraction of it.
//
// With -groups (groups.go) the traffic is group chat: the users form groups
// of the sizes given (e.g. -groups 100x50,1x500) and the phones send to
// their groups; the report adds the fan-out delay to the last member's
// inbox and the fan-out queue's lag over the run.
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
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/ceiling"
	"github.com/svrkit/svrkit/examples/im/imclient"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/tools/internal/cmdline"
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
	// Admins are the backend's admin addresses, whose served calls are
	// counted (none: no RPC figure).
	Admins admins

	// Group traffic (groups.go): the groups to form; how many users send
	// (0: all) and how many sync (-1: all).
	Groups  []GroupSpec
	Senders int
	Syncers int

	// Ceiling runs the in-process ceiling (package examples/im/ceiling)
	// after each load run, with the same users, duration and think time.
	Ceiling bool
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
	SyncRetries  int64          `json:"sync_retries,omitempty"`
	// BackendCPU is the backend processes' CPU over the run (sending and
	// draining), in seconds, and CPUPerDelivered that over Synced, in
	// microseconds; CPUByProcess is the split, in seconds.
	BackendCPU      float64 `json:"backend_cpu_s,omitempty"`
	CPUPerDelivered float64 `json:"cpu_per_delivered_us,omitempty"`
	// RPCsPerDelivered: every call the Logicsvrs served during the run
	// (both transports; see rpcs.go) over delivered messages.
	RPCsPerDelivered float64            `json:"rpcs_per_delivered,omitempty"`
	CPUByProcess     map[string]float64 `json:"cpu_by_process_s,omitempty"`
	// CPUPerDeliveredBy is CPUByProcess over Synced, in microseconds.
	CPUPerDeliveredBy map[string]float64 `json:"cpu_per_delivered_by_process_us,omitempty"`
	// With -ceiling: the in-process ceiling's delivered messages per
	// second and CPU per delivered message (µs), run right after, and the
	// backend's SyncedPerSec as a fraction of the ceiling's.
	CeilingPerSec     float64 `json:"ceiling_per_s,omitempty"`
	CeilingCPUPerMsg  float64 `json:"ceiling_cpu_per_delivered_us,omitempty"`
	FractionOfCeiling float64 `json:"fraction_of_ceiling,omitempty"`
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

-ceiling adds the in-process ceiling (package examples/im/ceiling): the
same inbox and store code with the same durability and the same work per
message (the receiver's and the sender's copy, then the devices' syncs),
driven by the same users, duration and think time in this process, with
no RPC and no HTTP, on a fresh store in a temporary directory, right after
each load run; the report gives the backend's delivered messages per
second as a fraction of it, and both CPU costs per message.

-idle D puts no load on the backend and reports what it costs at rest:
each process's CPU and context switches per second over D.

-compare runs push and polling (-poll, default 10ms) alternately, -runs
times each, for each user count in -users (e.g. -users 16,64), and reports
the medians side by side.

With -groups (e.g. 100x50,1x500) the traffic is group chat instead: the
-users pool (raised to the largest group) forms groups of those sizes, the
phones of -senders users send to random groups of theirs, the tablets of
-syncers users sync and check every group message arrives once, and the
report adds the fan-out delay (from a message's storing to the last of its
members' inbox writes, measured by the fan-out worker) and the fan-out
queue's lag every second, read with the operator key svrkit up keeps
beside its state file.

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
	groupsFlag := fs.String("groups", "", "group traffic: COUNTxSIZE[,COUNTxSIZE...], e.g. 100x50,1x500")
	fs.IntVar(&cfg.Senders, "senders", 0, "with -groups: users whose phones send (0: all)")
	fs.IntVar(&cfg.Syncers, "syncers", -1, "with -groups: users whose tablets sync (-1: all)")
	fs.BoolVar(&cfg.Ceiling, "ceiling", false, "after each run, run the in-process ceiling with the same load shape and report the backend as a fraction of it")
	idle := fs.Duration("idle", 0, "put no load on the backend: report its processes' CPU and context switches per second over this window")
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
	case *compare && *groupsFlag != "":
		return cmdline.ExitCode(help.Usagef(stderr, "-compare runs one-to-one traffic; it does not take -groups"))
	case cfg.Ceiling && *groupsFlag != "":
		return cmdline.ExitCode(help.Usagef(stderr, "-ceiling measures one-to-one traffic; it does not take -groups"))
	case *idle < 0 || (*idle > 0 && (*compare || cfg.Ceiling || *groupsFlag != "")):
		return cmdline.ExitCode(help.Usagef(stderr, "-idle takes a positive window and puts no load: not with -compare, -ceiling or -groups"))
	}
	cfg.Users = counts[0]
	if *groupsFlag != "" {
		var err error
		if cfg.Groups, err = ParseGroups(*groupsFlag); err != nil {
			return cmdline.ExitCode(help.Usagef(stderr, "%v", err))
		}
	}
	addrs, err := imclient.ReadStateFile(*state)
	if err != nil {
		fmt.Fprintf(stderr, "imload: %v\n", err)
		return cmdline.ExitFailure
	}
	if cfg.Processes, cfg.Admins, err = backend(*state); err != nil {
		fmt.Fprintf(stderr, "imload: %v\n", err)
		return cmdline.ExitFailure
	}
	if *idle > 0 {
		rep, err := RunIdle(ctx, cfg.Processes, *idle)
		if err != nil {
			fmt.Fprintf(stderr, "imload: %v\n", err)
			return cmdline.ExitFailure
		}
		return finish(stdout, *asJSON, rep, func() { printIdleReport(stdout, rep) }, 0)
	}
	if cfg.Groups != nil {
		rep, err := RunGroups(ctx, addrs, cfg, fanoutStats(*state), stderr)
		if err != nil {
			fmt.Fprintf(stderr, "imload: %v\n", err)
			return cmdline.ExitFailure
		}
		return finish(stdout, *asJSON, rep, func() { printGroupReport(stdout, rep) }, rep.Missing+rep.Duplicates)
	}
	if *compare {
		if cfg.Poll == 0 {
			cfg.Poll = 10 * time.Millisecond
		}
		reps, err := Compare(ctx, addrs, cfg, counts, *runs, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "imload: %v\n", err)
			return cmdline.ExitFailure
		}
		var wrong int64
		for _, r := range reps {
			wrong += r.Missing + r.Duplicates
		}
		return finish(stdout, *asJSON, reps, func() { printComparison(stdout, reps) }, wrong)
	}
	rep, err := Run(ctx, addrs, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "imload: %v\n", err)
		return cmdline.ExitFailure
	}
	return finish(stdout, *asJSON, rep, func() { printReport(stdout, rep) }, rep.Missing+rep.Duplicates)
}

// finish prints rep, as JSON or with table, and fails the run when any
// message was missing or duplicated.
func finish(stdout io.Writer, asJSON bool, rep any, table func(), wrong int64) int {
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		table()
	}
	if wrong > 0 {
		return cmdline.ExitFailure
	}
	return cmdline.ExitOK
}

// user is one simulated user.
type user struct {
	id            uint64
	name          string
	phone, tablet *imclient.Client
}

// loadPassword is every load user's password.
const loadPassword = "load-test-password"

// login logs c in as u on device, retrying a timed-out attempt.
func (u *user) login(ctx context.Context, c *imclient.Client, device string) error {
	return patiently(ctx, func() error {
		s, err := c.Login(ctx, u.name, loadPassword, device)
		u.id = s.UserID
		return err
	})
}

// Run runs the load against the backend at addrs with fresh users,
// printing a progress line to progress every second.
func Run(ctx context.Context, addrs imclient.Addrs, cfg Config, progress io.Writer) (*Report, error) {
	users, err := setup(ctx, addrs, cfg.Users, cfg.Users, cfg.Users)
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
		users, err := setup(ctx, addrs, n, n, n)
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
	closeLinks, err := connect(ctx, cfg, users)
	if err != nil {
		return nil, err
	}
	defer closeLinks()
	cpuBefore := cfg.Processes.cpuTimes()
	rpcsBefore := cfg.Admins.served(ctx)
	tr := newTraffic(ctx, cfg)
	for i, u := range users {
		rng := rand.New(rand.NewPCG(uint64(i), uint64(tr.start.UnixNano())))
		tr.phone(ctx, func(ctx context.Context, n int, text string) error {
			to := users[(i+1+rng.IntN(len(users)-1))%len(users)].id
			_, err := u.phone.SendText(ctx, to, tr.clientMsgID(i, n), text)
			return err
		})
		tr.tablet(u.tablet, func(m *im.Message) bool { return m.GetFromUserId() != u.id })
	}
	tr.progress(progress, func() string { return "" })
	elapsed := tr.sending()
	syncedInWindow := tr.synced.Load()
	// Let the tablets catch up with what was acknowledged.
	if err := tr.stop(ctx, cfg.Drain, tr.sent.Load()); err != nil {
		return nil, err
	}
	cpuBy, cpu := cpuSpent(cpuBefore, cfg.Processes.cpuTimes())
	rpcs, rpcsOK := servedBetween(rpcsBefore, cfg.Admins.served(ctx))

	send, synced := tr.latencies()
	rep := &Report{
		Mode:         mode(cfg.Poll),
		Users:        len(users),
		Duration:     elapsed.Seconds(),
		Sent:         tr.sent.Load(),
		Synced:       tr.synced.Load(),
		Duplicates:   tr.dups.Load(),
		SentPerSec:   float64(tr.sent.Load()) / elapsed.Seconds(),
		SyncedPerSec: float64(syncedInWindow) / elapsed.Seconds(),
		SendP50:      send[0],
		SendP99:      send[1],
		DeliveredP50: synced[0],
		DeliveredP99: synced[1],
		DeliveredMax: synced[2],
		Errors:       tr.errs,
		SyncRounds:   tr.rounds.Load(),
	}
	for _, u := range users {
		rep.Pushes += u.tablet.LinkStats().Pushes
		rep.SyncRetries += u.tablet.SyncRetries()
	}
	rep.Missing = max(0, rep.Sent-rep.Synced)
	if rpcsOK && rep.Synced > 0 {
		rep.RPCsPerDelivered = rpcs / float64(rep.Synced)
	}
	if len(cpuBy) > 0 {
		rep.BackendCPU = cpu.Seconds()
		rep.CPUByProcess = map[string]float64{}
		for name, d := range cpuBy {
			rep.CPUByProcess[name] = d.Seconds()
		}
		if rep.Synced > 0 {
			rep.CPUPerDelivered = float64(cpu.Microseconds()) / float64(rep.Synced)
			rep.CPUPerDeliveredBy = map[string]float64{}
			for name, d := range cpuBy {
				rep.CPUPerDeliveredBy[name] = float64(d.Microseconds()) / float64(rep.Synced)
			}
		}
	}
	if cfg.Ceiling {
		fmt.Fprintf(progress, "imload: in-process ceiling, %d users, %s\n", len(users), cfg.Duration)
		c, err := ceiling.Run(ctx, ceiling.Config{Users: len(users), Duration: cfg.Duration, Think: cfg.Think})
		if err != nil {
			return nil, err
		}
		rep.CeilingPerSec = c.PerSec()
		rep.CeilingCPUPerMsg = float64(c.CPUPerMessage().Nanoseconds()) / 1000
		if rep.CeilingPerSec > 0 {
			rep.FractionOfCeiling = rep.SyncedPerSec / rep.CeilingPerSec
		}
	}
	return rep, nil
}

// setup registers n users and logs in the phones of the first phones of
// them and the tablets of the first tablets, a few at a time
// (registration and login run a deliberately slow password hash, so the
// users who neither send nor sync are only registered).
func setup(ctx context.Context, addrs imclient.Addrs, n, phones, tablets int) ([]*user, error) {
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
			u := &user{name: fmt.Sprintf("%s_%d", prefix, i), phone: imclient.New(addrs)}
			// Register and Login are not retried by imclient (their
			// answer may be lost after the account or the session was
			// made); on a loaded machine they time out now and then, so
			// retry here: a repeated registration finds the name taken,
			// and the login then says whose it is.
			retried := false
			err := patiently(ctx, func() error {
				id, err := u.phone.Register(ctx, u.name, loadPassword, "")
				if retried && svrkit.CodeOf(err) == svrkit.AlreadyExists {
					return nil
				}
				retried = true
				u.id = id
				return err
			})
			if err != nil {
				errc <- fmt.Errorf("register %s: %w", u.name, err)
				return
			}
			if i < phones || u.id == 0 {
				if err := u.login(ctx, u.phone, "phone"); err != nil {
					errc <- fmt.Errorf("login %s: %w", u.name, err)
					return
				}
			}
			users[i] = u
			if i >= tablets {
				return
			}
			u.tablet = imclient.New(addrs)
			if err := u.login(ctx, u.tablet, "tablet"); err != nil {
				errc <- fmt.Errorf("login %s: %w", u.name, err)
				return
			}
			// Start the tablet from now: a fresh user has nothing to sync
			// but its own profile.
			if _, _, err := u.tablet.SyncAll(ctx); err != nil {
				errc <- fmt.Errorf("first sync of %s: %w", u.name, err)
				return
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	return users, nil
}

// patiently calls f until it succeeds, fails for good (imclient.Transient
// says which), or five attempts failed.
func patiently(ctx context.Context, f func() error) error {
	var err error
	for attempt := range 5 {
		if err = f(); err == nil || !imclient.Transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	return err
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
		fmt.Fprintf(w, "| syncs retried (refused by overload control, or failed) | %d |\n", r.SyncRetries)
	}
	if r.BackendCPU > 0 {
		fmt.Fprintf(w, "| backend CPU | %.2f s |\n", r.BackendCPU)
		fmt.Fprintf(w, "| backend CPU per delivered message | %.0f µs |\n", r.CPUPerDelivered)
		for _, name := range byCost(r.CPUPerDeliveredBy) {
			fmt.Fprintf(w, "| … of which %s | %.0f µs |\n", name, r.CPUPerDeliveredBy[name])
		}
	}
	if r.RPCsPerDelivered > 0 {
		fmt.Fprintf(w, "| calls the Logicsvrs served per delivered message | %.2f |\n", r.RPCsPerDelivered)
	}
	if r.CeilingPerSec > 0 {
		fmt.Fprintf(w, "| in-process ceiling: delivered per second | %.0f |\n", r.CeilingPerSec)
		fmt.Fprintf(w, "| in-process ceiling: CPU per delivered message | %.0f µs |\n", r.CeilingCPUPerMsg)
		fmt.Fprintf(w, "| backend / ceiling, messages per second | %.1f%% |\n", 100*r.FractionOfCeiling)
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

func printErrors(w io.Writer, errs map[string]int) {
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "| errors: %s | %d |\n", k, errs[k])
	}
}

// median folds runs of one mode into one report: the median of each
// rate, latency and CPU figure, and the sums of messages, losses and
// duplicates (which must stay zero in every run).
func median(runs []*Report) *Report {
	out := *runs[0]
	out.Errors = map[string]int{}
	out.CPUByProcess = nil
	out.Sent, out.Synced, out.Missing, out.Duplicates, out.SyncRounds, out.Pushes, out.SyncRetries = 0, 0, 0, 0, 0, 0, 0
	for _, r := range runs {
		out.Sent += r.Sent
		out.Synced += r.Synced
		out.Missing += r.Missing
		out.Duplicates += r.Duplicates
		out.SyncRounds += r.SyncRounds
		out.Pushes += r.Pushes
		out.SyncRetries += r.SyncRetries
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
	out.RPCsPerDelivered = med(func(r *Report) float64 { return r.RPCsPerDelivered })
	out.CeilingPerSec = med(func(r *Report) float64 { return r.CeilingPerSec })
	out.CeilingCPUPerMsg = med(func(r *Report) float64 { return r.CeilingCPUPerMsg })
	out.FractionOfCeiling = med(func(r *Report) float64 { return r.FractionOfCeiling })
	out.CPUPerDeliveredBy = map[string]float64{}
	for name := range runs[0].CPUPerDeliveredBy {
		out.CPUPerDeliveredBy[name] = med(func(r *Report) float64 { return r.CPUPerDeliveredBy[name] })
	}
	return &out
}

// printComparison prints -compare's medians, push beside polling for
// each user count; with -ceiling, the ceiling beside each, and then each
// busy service's CPU per delivered message.
func printComparison(w io.Writer, reps []*Report) {
	withCeiling := slices.ContainsFunc(reps, func(r *Report) bool { return r.CeilingPerSec > 0 })
	fmt.Fprintf(w, "\nmedians of each mode's runs, %s, load average %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), loadAverage())
	fmt.Fprintf(w, "| users | mode | sent/s | send-to-synced p50 | p99 | backend CPU per delivered message | missing / duplicates |")
	if withCeiling {
		fmt.Fprintf(w, " ceiling delivered/s | ceiling CPU per message | backend / ceiling |")
	}
	fmt.Fprintf(w, "\n| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
	if withCeiling {
		fmt.Fprintf(w, " ---: | ---: | ---: |")
	}
	fmt.Fprintln(w)
	for _, r := range reps {
		fmt.Fprintf(w, "| %d | %s | %.0f | %.1f ms | %.1f ms | %.0f µs | %d / %d |",
			r.Users, r.Mode, r.SentPerSec, r.DeliveredP50, r.DeliveredP99, r.CPUPerDelivered, r.Missing, r.Duplicates)
		if withCeiling {
			fmt.Fprintf(w, " %.0f | %.0f µs | %.1f%% |", r.CeilingPerSec, r.CeilingCPUPerMsg, 100*r.FractionOfCeiling)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\nbackend CPU per delivered message by service (µs, medians)\n\n")
	for _, r := range reps {
		fmt.Fprintf(w, "%d users, %s:", r.Users, r.Mode)
		for _, name := range byCost(r.CPUPerDeliveredBy) {
			fmt.Fprintf(w, " %s %.0f", name, r.CPUPerDeliveredBy[name])
		}
		fmt.Fprintln(w)
	}
}

// byCost returns the names in by, the costliest first, leaving out those
// below 1% of the total (idle services).
func byCost(by map[string]float64) []string {
	var total float64
	names := make([]string, 0, len(by))
	for name, v := range by {
		total += v
		names = append(names, name)
	}
	names = slices.DeleteFunc(names, func(n string) bool { return by[n] < total/100 })
	slices.SortFunc(names, func(a, b string) int {
		if by[a] != by[b] {
			if by[a] > by[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	return names
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
