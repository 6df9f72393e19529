// Command loginbench measures what an attack on Login costs legitimate
// users of a running IM backend: in one run, an attacker hammers Login
// with wrong passwords while legitimate users log in, and it reports how
// many legitimate logins succeeded within a second (issue #17's goal: at
// least 90%).
//
//	go run ./tools/svrkit up examples/im        # terminal 1
//	go run ./tools/loginbench -duration 20s
//
// Who does what (on Linux every 127.0.0.0/8 address is this machine, so
// each simulated client connects from its own address, as real clients
// would, and the backend's per-address throttling sees them apart):
//
//   - The attacker: -attackers connections from -attacker-addrs addresses
//     (127.0.0.200 and up), each sending Login after Login without pause.
//     Half of its guesses go to the accounts of the returning users below
//     (so those accounts are locked for anyone without a device cookie),
//     half to made-up names (a spray).
//   - Returning users (-users/2): each logs in from its own address every
//     -interval on a device that logged in before, with its device cookie.
//     Their accounts are under attack.
//   - New devices (the other -users/2): each logs in from its own address
//     every -interval as a device never seen before (no cookie). Their
//     accounts are not under attack; their addresses are not the
//     attacker's.
//
// A new device of an account under attack is refused until the attack
// stops: that is the price of per-account throttling (see the account
// Logicsvr's package doc), and no mix here measures it.
//
// Every legitimate login has -timeout; one answered successfully within a
// second counts as a success. The report gives, per kind of user, the
// logins, the share within 1s, failures by code and latency quantiles, and
// for the attacker its attempts per second and how they were answered:
// unauthenticated (a password was checked: a guess), resource_exhausted
// (refused by the throttle, no hash), other. With -attackers 0 it measures
// the same logins without an attack.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svrkit/svrkit/examples/im/imclient"
	"github.com/svrkit/svrkit/svrkit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Config is one run.
type Config struct {
	Attackers     int           // attacker connections
	AttackerAddrs int           // addresses they come from
	Users         int           // legitimate users, half returning, half new devices
	Interval      time.Duration // between one user's logins
	Timeout       time.Duration // of one legitimate login
	Duration      time.Duration // of the measurement, attack included
}

// Goal is the latency within which a legitimate login counts as a success.
const Goal = time.Second

// Kind is the report of one kind of legitimate user.
type Kind struct {
	Logins       int            `json:"logins"`
	WithinGoal   int            `json:"within_1s"`
	WithinGoalPc float64        `json:"within_1s_pct"`
	Failed       map[string]int `json:"failed,omitempty"`
	P50          float64        `json:"p50_ms"`
	P90          float64        `json:"p90_ms"`
	P99          float64        `json:"p99_ms"`
	Max          float64        `json:"max_ms"`
}

// Report is a run's result.
type Report struct {
	Date          string  `json:"date"`
	Duration      float64 `json:"duration_s"`
	Attackers     int     `json:"attackers"`
	AttackerAddrs int     `json:"attacker_addrs"`
	Users         int     `json:"users"`
	Interval      string  `json:"interval"`
	// All is every legitimate login; Returning and NewDevice split them.
	All       Kind `json:"all"`
	Returning Kind `json:"returning_devices"`
	NewDevice Kind `json:"new_devices"`
	// The attacker's attempts and how they were answered.
	AttackPerSec  float64 `json:"attack_per_s"`
	Guesses       int64   `json:"guesses_checked"`
	GuessesPerSec float64 `json:"guesses_checked_per_s"`
	Throttled     int64   `json:"throttled"`
	// AttackOther counts the attacker's other answers by code.
	AttackOther map[string]int64 `json:"attack_other,omitempty"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loginbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	state := fs.String("up", "examples/im/.data/up.json", "svrkit up's state file of the running backend")
	var cfg Config
	fs.IntVar(&cfg.Attackers, "attackers", 48, "attacker connections, each sending logins without pause (0: no attack)")
	fs.IntVar(&cfg.AttackerAddrs, "attacker-addrs", 1, "addresses the attacker's connections come from")
	fs.IntVar(&cfg.Users, "users", 8, "legitimate users, each from its own address: half returning devices, half new ones")
	fs.DurationVar(&cfg.Interval, "interval", 500*time.Millisecond, "pause between one legitimate user's logins")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "deadline of one legitimate login")
	fs.DurationVar(&cfg.Duration, "duration", 20*time.Second, "how long to measure")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if cfg.Users < 2 || cfg.Users > 50 || cfg.Attackers < 0 || cfg.AttackerAddrs < 1 || cfg.AttackerAddrs > 50 || cfg.Duration <= 0 {
		fmt.Fprintln(stderr, "loginbench: need 2 <= -users <= 50, -attackers >= 0, 1 <= -attacker-addrs <= 50 and a positive -duration")
		return 2
	}
	addrs, err := imclient.ReadStateFile(*state)
	if err != nil {
		fmt.Fprintf(stderr, "loginbench: %v\nis the backend running? start it with: go run ./tools/svrkit up examples/im\n", err)
		return 1
	}
	rep, err := Run(ctx, addrs, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "loginbench: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		printReport(stdout, rep)
	}
	return 0
}

// from returns an HTTP client whose connections come from ip.
func from(ip string, conns int) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
}

type legitUser struct {
	name, password string
	returning      bool
	hc             *http.Client
	device         *imclient.Client // a returning user's device, with its cookie
}

// login is one legitimate login's outcome.
type login struct {
	returning bool
	latency   time.Duration
	code      svrkit.Code // OK on success
}

// Run runs the benchmark against the backend at addrs, printing progress
// to progress.
func Run(ctx context.Context, addrs imclient.Addrs, cfg Config, progress io.Writer) (*Report, error) {
	prefix := "lb" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	users := make([]*legitUser, cfg.Users)
	for i := range users {
		u := &legitUser{
			name:      fmt.Sprintf("%s_%d", prefix, i),
			password:  "legit-password-" + strconv.Itoa(i),
			returning: i < cfg.Users/2,
			hc:        from("127.0.0."+strconv.Itoa(100+i), 4),
		}
		c := imclient.New(addrs, imclient.WithHTTPClient(u.hc))
		if _, err := c.Register(ctx, u.name, u.password, ""); err != nil {
			return nil, fmt.Errorf("register %s: %w", u.name, err)
		}
		if u.returning {
			// The device logs in once before the attack: it has a cookie.
			if _, err := c.Login(ctx, u.name, u.password, "phone"); err != nil {
				return nil, fmt.Errorf("first login of %s: %w", u.name, err)
			}
			u.device = c
		}
		users[i] = u
	}
	fmt.Fprintf(progress, "loginbench: %d users registered; %d attacker connections from %d addresses, %v\n",
		len(users), cfg.Attackers, cfg.AttackerAddrs, cfg.Duration)

	runCtx, stop := context.WithTimeout(ctx, cfg.Duration)
	defer stop()
	// over reports whether the run is over: its context's timer may fire
	// late on a loaded machine, while calls already fail on its deadline.
	end, _ := runCtx.Deadline()
	over := func() bool { return runCtx.Err() != nil || !time.Now().Before(end) }
	var attempts, guesses, throttled atomic.Int64
	var otherMu sync.Mutex
	other := map[string]int64{}
	var wg sync.WaitGroup
	var targets []string
	for _, u := range users {
		if u.returning {
			targets = append(targets, u.name)
		}
	}
	attackClients := make([]*imclient.Client, cfg.AttackerAddrs)
	for i := range attackClients {
		conns := (cfg.Attackers + cfg.AttackerAddrs - 1) / cfg.AttackerAddrs
		attackClients[i] = imclient.New(addrs, imclient.WithHTTPClient(from("127.0.0."+strconv.Itoa(200+i), conns)))
	}
	for i := range cfg.Attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := attackClients[i%len(attackClients)]
			for n := 0; !over(); n++ {
				name := fmt.Sprintf("%s_spray_%d_%d", prefix, i, n)
				if n%2 == 0 && len(targets) > 0 {
					name = targets[(i+n/2)%len(targets)]
				}
				_, err := c.Login(runCtx, name, "guess-"+strconv.Itoa(rand.IntN(1e9)), "")
				if over() {
					return
				}
				attempts.Add(1)
				switch svrkit.CodeOf(err) {
				case svrkit.Unauthenticated:
					guesses.Add(1)
				case svrkit.ResourceExhausted:
					throttled.Add(1)
				default:
					otherMu.Lock()
					other[svrkit.CodeOf(err).String()]++
					otherMu.Unlock()
				}
			}
		}()
	}

	var mu sync.Mutex
	var logins []login
	start := time.Now()
	for _, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(cfg.Interval)
			defer t.Stop()
			for round := 0; ; round++ {
				c := u.device
				device := "phone"
				if !u.returning {
					c = imclient.New(addrs, imclient.WithHTTPClient(u.hc)) // no cookie
					device = "new-" + strconv.Itoa(round)
				}
				lctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
				t0 := time.Now()
				_, err := c.Login(lctx, u.name, u.password, device)
				cancel()
				l := login{returning: u.returning, latency: time.Since(t0), code: svrkit.CodeOf(err)}
				if err == nil {
					l.code = svrkit.OK
				}
				mu.Lock()
				logins = append(logins, l)
				mu.Unlock()
				select {
				case <-runCtx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-ticker.C:
			mu.Lock()
			n, ok := len(logins), 0
			for _, l := range logins {
				if l.code == svrkit.OK && l.latency <= Goal {
					ok++
				}
			}
			mu.Unlock()
			fmt.Fprintf(progress, "loginbench: %4.0fs  legitimate logins %d, within 1s %d; attacker %d attempts, %d guesses checked, %d throttled\n",
				time.Since(start).Seconds(), n, ok, attempts.Load(), guesses.Load(), throttled.Load())
		case <-done:
			elapsed := time.Since(start)
			rep := &Report{
				Date:          time.Now().UTC().Format(time.DateOnly),
				Duration:      elapsed.Seconds(),
				Attackers:     cfg.Attackers,
				AttackerAddrs: cfg.AttackerAddrs,
				Users:         cfg.Users,
				Interval:      cfg.Interval.String(),
				AttackPerSec:  float64(attempts.Load()) / elapsed.Seconds(),
				Guesses:       guesses.Load(),
				GuessesPerSec: float64(guesses.Load()) / elapsed.Seconds(),
				Throttled:     throttled.Load(),
			}
			otherMu.Lock()
			if len(other) > 0 {
				rep.AttackOther = maps.Clone(other)
			}
			otherMu.Unlock()
			rep.All = summarize(logins, func(login) bool { return true })
			rep.Returning = summarize(logins, func(l login) bool { return l.returning })
			rep.NewDevice = summarize(logins, func(l login) bool { return !l.returning })
			return rep, nil
		}
	}
}

func summarize(all []login, keep func(login) bool) Kind {
	k := Kind{Failed: map[string]int{}}
	if len(all) == 0 {
		return k
	}
	var lat []time.Duration
	for _, l := range all {
		if !keep(l) {
			continue
		}
		k.Logins++
		lat = append(lat, l.latency)
		switch {
		case l.code != svrkit.OK:
			k.Failed[l.code.String()]++
		case l.latency <= Goal:
			k.WithinGoal++
		}
	}
	if k.Logins == 0 {
		return k
	}
	k.WithinGoalPc = 100 * float64(k.WithinGoal) / float64(k.Logins)
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	k.P50, k.P90, k.P99, k.Max = q(0.50), q(0.90), q(0.99), q(1)
	return k
}

func printReport(w io.Writer, r *Report) {
	fmt.Fprintf(w, "\n%s, %.1fs: %d attacker connections from %d address(es), %d legitimate users logging in every %s\n\n",
		r.Date, r.Duration, r.Attackers, r.AttackerAddrs, r.Users, r.Interval)
	fmt.Fprintf(w, "| legitimate logins | logins | within 1s | failed | p50 | p90 | p99 | max |\n")
	fmt.Fprintf(w, "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n")
	for _, row := range []struct {
		name string
		k    Kind
	}{{"all", r.All}, {"returning devices (account under attack)", r.Returning}, {"new devices", r.NewDevice}} {
		failed := "none"
		if len(row.k.Failed) > 0 {
			failed = fmt.Sprint(row.k.Failed)
		}
		fmt.Fprintf(w, "| %s | %d | %.1f%% | %s | %.0f ms | %.0f ms | %.0f ms | %.0f ms |\n",
			row.name, row.k.Logins, row.k.WithinGoalPc, failed, row.k.P50, row.k.P90, row.k.P99, row.k.Max)
	}
	other := "no other answers"
	if len(r.AttackOther) > 0 {
		other = fmt.Sprintf("other answers %v", r.AttackOther)
	}
	fmt.Fprintf(w, "\nattacker: %.0f logins/s; %d passwords checked (%.1f/s), %d throttled, %s\n",
		r.AttackPerSec, r.Guesses, r.GuessesPerSec, r.Throttled, other)
}
