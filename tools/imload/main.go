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
	"sync"
	"time"

	"github.com/svrkit/svrkit/examples/im"
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
	Poll     time.Duration // an idle tablet's pause between syncs
	Drain    time.Duration // how long tablets may catch up after sending stops

	// Group traffic (groups.go): the groups to form; how many users send
	// (0: all) and how many sync (-1: all).
	Groups  []GroupSpec
	Senders int
	Syncers int
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
	fs.IntVar(&cfg.Users, "users", 16, "simulated users, each with a sending and a syncing device")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long the phones send")
	fs.DurationVar(&cfg.Think, "think", 0, "pause between one user's sends")
	fs.DurationVar(&cfg.Poll, "poll", 10*time.Millisecond, "pause of an idle tablet between syncs")
	fs.DurationVar(&cfg.Drain, "drain", 10*time.Second, "how long tablets may catch up after sending stops")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	groupsFlag := fs.String("groups", "", "group traffic: COUNTxSIZE[,COUNTxSIZE...], e.g. 100x50,1x500")
	fs.IntVar(&cfg.Senders, "senders", 0, "with -groups: users whose phones send (0: all)")
	fs.IntVar(&cfg.Syncers, "syncers", -1, "with -groups: users whose tablets sync (-1: all)")
	if err := cmdline.Parse(fs, args, help, stdout, stderr); err != nil {
		return cmdline.ExitCode(err)
	}
	switch {
	case fs.NArg() > 0:
		return cmdline.ExitCode(help.Usagef(stderr, "unexpected argument %q: imload takes only flags", fs.Arg(0)))
	case cfg.Users < 2 || cfg.Duration <= 0:
		return cmdline.ExitCode(help.Usagef(stderr, "need -users >= 2 and a positive -duration"))
	}
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
	if cfg.Groups != nil {
		rep, err := RunGroups(ctx, addrs, cfg, fanoutStats(*state), stderr)
		if err != nil {
			fmt.Fprintf(stderr, "imload: %v\n", err)
			return cmdline.ExitFailure
		}
		return finish(stdout, *asJSON, rep, func() { printGroupReport(stdout, rep) }, rep.Missing+rep.Duplicates)
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

// Run runs the load against the backend at addrs, printing a progress line
// to progress every second.
func Run(ctx context.Context, addrs imclient.Addrs, cfg Config, progress io.Writer) (*Report, error) {
	users, err := setup(ctx, addrs, cfg.Users, cfg.Users, cfg.Users)
	if err != nil {
		return nil, err
	}
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

	send, synced := tr.latencies()
	rep := &Report{
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
	rep.Missing = max(0, rep.Sent-rep.Synced)
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

// patiently calls f until it succeeds, fails for good (imclient.Retryable
// says which), or five attempts failed.
func patiently(ctx context.Context, f func() error) error {
	var err error
	for attempt := range 5 {
		if err = f(); err == nil || !imclient.Retryable(err) {
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
	printErrors(w, r.Errors)
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
