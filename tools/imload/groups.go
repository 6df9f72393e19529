package main

// Group traffic (-groups): write diffusion under load.
//
// The users form groups of the sizes asked for (members drawn at random
// from the -users pool, so a user is in several groups when the groups
// hold more members than the pool has users); every sender's phone sends
// text to a random group of its own, one message after another, and the
// tablets of the first -syncers users sync in a loop, checking that each
// group message of their groups arrives exactly once.
//
// Two delays are reported. Send-to-synced is what a member's tablet
// sees: the push and the sync after it (or the polling, with -poll). The fan-out
// delay is the backend's: from a message's storing to the last of its
// members' inbox writes, measured by the fan-out worker, the one process
// that knows when the last write returned (it would take 500 polling
// clients to see it from outside, and they would be the load). imload
// reads it, and the fan-out queue's lag every second, from the worker's
// GetStats with the operator key `svrkit up` keeps beside its state file;
// without that key the run reports neither.

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/imclient"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/tools/svrkit/upstate"
)

// GroupSpec is count groups of size members each.
type GroupSpec struct{ Count, Size int }

// maxGroupSize is group.proto's MAX_MEMBERS.
const maxGroupSize = int(im.GroupLimit_GROUP_LIMIT_MAX_MEMBERS)

// ParseGroups parses -groups: "100x50" or "100x50,1x500".
func ParseGroups(s string) ([]GroupSpec, error) {
	var out []GroupSpec
	for _, part := range strings.Split(s, ",") {
		c, z, ok := strings.Cut(strings.TrimSpace(part), "x")
		count, err1 := strconv.Atoi(c)
		size, err2 := strconv.Atoi(z)
		if !ok || err1 != nil || err2 != nil || count < 1 || size < 2 || size > maxGroupSize {
			return nil, fmt.Errorf("-groups %q: want COUNTxSIZE[,COUNTxSIZE...] with sizes 2 to %d, e.g. 100x50,1x500", s, maxGroupSize)
		}
		out = append(out, GroupSpec{count, size})
	}
	return out, nil
}

// GroupReport is a group run's result.
type GroupReport struct {
	Groups          string  `json:"groups"`
	Users           int     `json:"users"`
	Senders         int     `json:"senders"`
	Syncers         int     `json:"syncers"`
	Duration        float64 `json:"duration_s"`
	Sent            int64   `json:"sent"`
	SentPerSec      float64 `json:"sent_per_s"`
	InboxWrites     int64   `json:"inbox_writes"`
	InboxWritesPerS float64 `json:"inbox_writes_per_s"`
	SendP50         float64 `json:"send_p50_ms"`
	SendP99         float64 `json:"send_p99_ms"`
	// Expected, Synced, Missing, Duplicates: group messages the syncing
	// tablets should have got (their groups' messages by others), got,
	// did not get, got twice.
	Expected     int64   `json:"expected"`
	Synced       int64   `json:"synced"`
	Missing      int64   `json:"missing"`
	Duplicates   int64   `json:"duplicates"`
	DeliveredP50 float64 `json:"send_to_synced_p50_ms"`
	DeliveredP99 float64 `json:"send_to_synced_p99_ms"`
	// The fan-out worker's figures (absent without the operator key).
	FanoutCount uint64  `json:"fanout_delay_count,omitempty"`
	FanoutP50   float64 `json:"fanout_delay_p50_ms,omitempty"`
	FanoutP99   float64 `json:"fanout_delay_p99_ms,omitempty"`
	FanoutMax   float64 `json:"fanout_delay_max_ms,omitempty"`
	// CreationFanoutMs: from the last creation's answer until the queue
	// held nothing (the creations written into every member's inbox),
	// before the clock started.
	CreationFanoutMs float64 `json:"creation_fanout_ms,omitempty"`
	// FanoutWritesPerS: the worker's inbox writes per second from the
	// start to the end of the drain (when the syncing tablets had every
	// message, or -drain ran out).
	FanoutWritesPerS float64        `json:"fanout_writes_per_s,omitempty"`
	LagMaxMs         int64          `json:"queue_lag_max_ms"`
	BacklogMax       uint64         `json:"queue_backlog_max"`
	Lag              []LagSample    `json:"queue_lag,omitempty"`
	Errors           map[string]int `json:"errors,omitempty"`
}

// LagSample is the fan-out queue's lag at one second of the run.
type LagSample struct {
	AtS       float64 `json:"at_s"`
	Backlog   uint64  `json:"backlog"`
	OldestAge int64   `json:"oldest_age_ms"`
}

// fanoutStats returns the fan-out worker's client, with the operator key
// svrkit up keeps beside its state file, or nil when either is missing.
func fanoutStats(state string) im.FanoutWorkerClient {
	st, err := upstate.Read(state)
	if err != nil {
		return nil
	}
	in, ok := st.Find("fanout")
	if !ok || in.RPC == "" {
		return nil
	}
	key, err := svrkit.ReadKey(svrkit.KeyPath(filepath.Join(filepath.Dir(state), "keys"), "operator"))
	if err != nil {
		return nil
	}
	c, err := svrkit.NewClient(in.RPC, svrkit.WithIdentity("operator", key))
	if err != nil {
		return nil
	}
	return im.NewFanoutWorkerClient(c)
}

// RunGroups runs group traffic (see the top of this file); stats may be
// nil.
func RunGroups(ctx context.Context, addrs imclient.Addrs, cfg Config, stats im.FanoutWorkerClient, progress io.Writer) (*GroupReport, error) {
	for _, g := range cfg.Groups {
		cfg.Users = max(cfg.Users, g.Size)
	}
	if cfg.Senders <= 0 || cfg.Senders > cfg.Users {
		cfg.Senders = cfg.Users
	}
	if cfg.Syncers < 0 || cfg.Syncers > cfg.Users {
		cfg.Syncers = cfg.Users
	}
	fmt.Fprintf(progress, "imload: registering %d users\n", cfg.Users)
	users, err := setup(ctx, addrs, cfg.Users, cfg.Senders, cfg.Syncers)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	var (
		groupIDs []uint64
		sizes    []int64
		mine     = make([][]int, len(users)) // group indexes per user
	)
	var specs []string
	for _, spec := range cfg.Groups {
		specs = append(specs, fmt.Sprintf("%dx%d", spec.Count, spec.Size))
		for range spec.Count {
			members := rng.Perm(len(users))[:spec.Size]
			// The creator is a sender (logged in) if one is a member.
			if j := slices.IndexFunc(members, func(m int) bool { return m < cfg.Senders }); j > 0 {
				members[0], members[j] = members[j], members[0]
			}
			creator := users[members[0]]
			if creator.phone.Session().Token == "" {
				if err := creator.login(ctx, creator.phone, "phone"); err != nil {
					return nil, fmt.Errorf("login %s: %w", creator.name, err)
				}
			}
			ids := make([]uint64, 0, spec.Size-1)
			for _, m := range members[1:] {
				ids = append(ids, users[m].id)
			}
			// One client group id for every attempt, so a retry after an
			// answer that was lost creates no second group.
			cgid := imclient.NewClientMsgID()
			var r *im.GroupReply
			err := patiently(ctx, func() (err error) {
				r, err = creator.phone.CreateGroup(ctx, fmt.Sprintf("load %d", len(groupIDs)), ids, cgid)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("creating a group of %d: %w", spec.Size, err)
			}
			for _, m := range members {
				mine[m] = append(mine[m], len(groupIDs))
			}
			groupIDs = append(groupIDs, r.GetGroup().GetGroupId())
			sizes = append(sizes, int64(spec.Size))
		}
	}
	fmt.Fprintf(progress, "imload: %d groups created\n", len(groupIDs))
	groupIndex := make(map[uint64]int, len(groupIDs))
	for i, g := range groupIDs {
		groupIndex[g] = i
	}
	// The creations' own fan-out (each CREATED entry, with the member
	// list, into every member's inbox) finishes before the clock starts:
	// the figures are of messages to groups that exist, and a first
	// message sent into a creation's fan-out waits for it (reported on its
	// own as creation fan-out). Then the tablets take the creations in.
	var created time.Duration
	if stats != nil {
		start := time.Now()
		done := waitQueueEmpty(ctx, stats, cfg.Drain)
		created = time.Since(start)
		if done {
			fmt.Fprintf(progress, "imload: creations fanned out %v after the last one was answered\n", created.Round(time.Millisecond))
		} else {
			fmt.Fprintf(progress, "imload: the creations' fan-out still runs after %v (-drain); starting anyway\n", created.Round(time.Millisecond))
		}
	}
	for _, u := range users[:cfg.Syncers] {
		if _, _, err := u.tablet.SyncAll(ctx); err != nil {
			return nil, fmt.Errorf("sync after the creations: %w", err)
		}
	}

	var (
		perGroup = make([]atomic.Int64, len(groupIDs))
		own      = make([][]int64, len(users)) // own[u][g]: u's sends to g, written by u's phone only
		lagMu    sync.Mutex
		lag      []LagSample
	)
	var before *im.FanoutStats
	if stats != nil {
		before, _ = stats.GetStats(ctx, &im.FanoutStatsRequest{})
	}
	closeLinks, err := connect(ctx, cfg, users)
	if err != nil {
		return nil, err
	}
	defer closeLinks()
	tr := newTraffic(ctx, cfg)
	for i, u := range users {
		own[i] = make([]int64, len(groupIDs))
		if i < cfg.Senders && len(mine[i]) > 0 {
			rng := rand.New(rand.NewPCG(uint64(i), uint64(tr.start.UnixNano())))
			tr.phone(ctx, func(ctx context.Context, n int, text string) error {
				g := mine[i][rng.IntN(len(mine[i]))]
				if _, err := u.phone.SendGroupText(ctx, groupIDs[g], tr.clientMsgID(i, n), text); err != nil {
					return err
				}
				perGroup[g].Add(1)
				own[i][g]++
				return nil
			})
		}
		if u.tablet != nil {
			tr.tablet(u.tablet, func(m *im.Message) bool {
				_, ours := groupIndex[m.GetGroupId()]
				return ours && m.GetFromUserId() != u.id
			})
		}
	}
	// The queue's lag goes with each progress line.
	tr.progress(progress, func() string {
		if stats == nil {
			return ""
		}
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := stats.GetStats(sctx, &im.FanoutStatsRequest{})
		cancel()
		if err != nil {
			return "  queue lag unknown"
		}
		lagMu.Lock()
		lag = append(lag, LagSample{AtS: time.Since(tr.start).Seconds(), Backlog: st.GetBacklog(), OldestAge: st.GetOldestAgeMs()})
		lagMu.Unlock()
		return fmt.Sprintf("  queue backlog %d, oldest %dms", st.GetBacklog(), st.GetOldestAgeMs())
	})

	elapsed := tr.sending()
	var expected int64
	for u := range users[:cfg.Syncers] {
		for _, g := range mine[u] {
			expected += perGroup[g].Load() - own[u][g]
		}
	}
	if err := tr.stop(ctx, cfg.Drain, expected); err != nil {
		return nil, err
	}
	// The fan-out figures want every message fanned out: wait for the
	// queue to empty too (the tablets need not be syncing every group).
	if stats != nil {
		waitQueueEmpty(ctx, stats, cfg.Drain)
	}
	drained := time.Since(tr.start)

	send, synced := tr.latencies()
	rep := &GroupReport{
		Groups:       strings.Join(specs, ","),
		Users:        len(users),
		Senders:      cfg.Senders,
		Syncers:      cfg.Syncers,
		Duration:     elapsed.Seconds(),
		Sent:         tr.sent.Load(),
		SentPerSec:   float64(tr.sent.Load()) / elapsed.Seconds(),
		SendP50:      send[0],
		SendP99:      send[1],
		Expected:     expected,
		Synced:       tr.synced.Load(),
		Duplicates:   tr.dups.Load(),
		DeliveredP50: synced[0],
		DeliveredP99: synced[1],
		Errors:       tr.errs,
		Lag:          lag,
	}
	rep.CreationFanoutMs = float64(created.Microseconds()) / 1000
	for g := range perGroup {
		rep.InboxWrites += perGroup[g].Load() * sizes[g]
	}
	rep.InboxWritesPerS = float64(rep.InboxWrites) / elapsed.Seconds()
	rep.Missing = max(0, rep.Expected-rep.Synced)
	for _, l := range lag {
		rep.LagMaxMs, rep.BacklogMax = max(rep.LagMaxMs, l.OldestAge), max(rep.BacklogMax, l.Backlog)
	}
	if stats != nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := stats.GetStats(sctx, &im.FanoutStatsRequest{SinceUnixMs: tr.start.UnixMilli()})
		cancel()
		if err == nil {
			rep.FanoutCount, rep.FanoutP50, rep.FanoutP99, rep.FanoutMax = st.GetDelayCount(), st.GetDelayP50Ms(), st.GetDelayP99Ms(), st.GetDelayMaxMs()
			if before != nil && st.GetDeliveries() >= before.GetDeliveries() { // else the worker restarted
				rep.FanoutWritesPerS = float64(st.GetDeliveries()-before.GetDeliveries()) / drained.Seconds()
			}
		}
	}
	return rep, nil
}

func printGroupReport(w io.Writer, r *GroupReport) {
	fmt.Fprintf(w, "\ngroups %s over %d users (%d sending, %d syncing), %.1fs of sending\n\n", r.Groups, r.Users, r.Senders, r.Syncers, r.Duration)
	fmt.Fprintf(w, "| metric | value |\n| --- | ---: |\n")
	fmt.Fprintf(w, "| group messages sent (acknowledged) | %d |\n", r.Sent)
	fmt.Fprintf(w, "| group messages per second | %.0f |\n", r.SentPerSec)
	fmt.Fprintf(w, "| inbox writes per second (fan-out) | %.0f |\n", r.InboxWritesPerS)
	fmt.Fprintf(w, "| send latency p50 / p99 | %.1f / %.1f ms |\n", r.SendP50, r.SendP99)
	if r.FanoutCount > 0 {
		fmt.Fprintf(w, "| creations fanned out (before the clock started) | %.1f ms |\n", r.CreationFanoutMs)
		fmt.Fprintf(w, "| stored to last member's inbox p50 / p99 / max | %.1f / %.1f / %.1f ms (%d messages) |\n", r.FanoutP50, r.FanoutP99, r.FanoutMax, r.FanoutCount)
		fmt.Fprintf(w, "| inbox writes per second done by the worker (with the drain) | %.0f |\n", r.FanoutWritesPerS)
		fmt.Fprintf(w, "| queue lag max / backlog max | %d ms / %d items |\n", r.LagMaxMs, r.BacklogMax)
	}
	fmt.Fprintf(w, "| synced by members' tablets (expected) | %d (%d) |\n", r.Synced, r.Expected)
	fmt.Fprintf(w, "| missing / duplicates | %d / %d |\n", r.Missing, r.Duplicates)
	fmt.Fprintf(w, "| send-to-synced p50 / p99 | %.1f / %.1f ms |\n", r.DeliveredP50, r.DeliveredP99)
	printErrors(w, r.Errors)
}

// waitQueueEmpty waits until the fan-out queue holds nothing, for at most
// d, and reports whether it did.
func waitQueueEmpty(ctx context.Context, stats im.FanoutWorkerClient, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline) && ctx.Err() == nil; {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := stats.GetStats(sctx, &im.FanoutStatsRequest{})
		cancel()
		if err == nil && st.GetBacklog() == 0 {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
