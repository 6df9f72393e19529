package svrkit

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// admission is a server's overload control, after DAGOR (WeChat's, SoCC
// 2018).
//
// Detection is by queuing time, not CPU: the time an admitted request waits
// between the event loop handing it over and a worker starting it. It
// grows when the server cannot keep up, whatever the bottleneck (CPU, a
// lock, a slow dependency holding workers), and stays near zero otherwise
// even at high CPU. Each window — a second, or DefaultAdmissionWindowReqs
// requests, whichever ends first — the average wait is compared with the
// threshold (WithOverloadControl).
//
// Admission is by priority (see priority.go): a request is admitted when
// its key (business<<7 | user) is at least the level, and refused at once
// with Overloaded otherwise, before it is decoded. Every window the level
// moves from a histogram of the window's arrivals by key: while overloaded,
// up so that about 5% fewer requests would have been admitted; otherwise
// down so that about 1% more would be. Shedding always starts with the
// lowest business priority and, within it, the lowest user priorities. The
// level never rises above the highest key seen, so the most important
// requests are never all refused.
//
// While overloaded, the level also cuts at once to the window's service
// rate: no more admitted than the workers ran, not counting calls dropped
// unrun because their deadline passed in the queue (they cost nothing and
// serve no one; counting them kept a server admitting a flood that
// expired). Calm windows relax the level by the histogram's 1%, but by no
// more than a step — two keys, doubling with every calm window in a row,
// counted only over business priorities that have had arrivals — and by
// the full step when nothing arrived below the level. The histogram cannot
// be trusted below the level: once clients know it they refuse those
// requests themselves, so the server sees either nothing there (and
// relaxing two keys a window left a level raised by a start-up or a burst
// refusing a third of what the server could serve for half a minute) or a
// few stragglers from clients that had not heard yet (and the 1% rule
// then dropped the level to the lowest of them at once: a flood, overload
// again, a sawtooth). Cut fast on measured service, relax geometrically on
// no data: an over-relaxed level costs one overloaded window before the
// service-rate cut, an over-shed one cost many. One overloaded window
// after a long quiet is a blip, and the calm window after it drops the
// level to 0 at once (blipWindows).
//
// The workers take queued calls highest business priority first (see
// workers.go), so in the windows before the level catches up with a surge,
// or while the server rides the edge of its capacity with a standing
// queue, an important call overtakes the backlog instead of waiting the
// whole queue behind it, and what waits longest is what the level sheds
// next.
//
// The level travels back to clients on every response (see wire), and
// clients refuse locally, without sending, requests below it
// (collaborative shedding): an overloaded server does not spend even a
// refusal on them. The level also climbs the chain: a server refuses, per
// method, what the services that method calls would refuse, and says so
// on the method's responses (see downstream.go), so a request the basic
// tier would shed is refused by the first client instead of costing every
// tier above its work.
//
// The wait measured is honest only if calls wait in the pool's queue. On a
// CPU-bound server an unbounded pool let them wait instead as runnable
// goroutines sharing the CPUs (processor sharing: every admitted call's
// wall time stretched with the number running, the event loops waited for
// a CPU behind them, and the queue the level acts on looked short); so
// while the CPUs are saturated the pool stops waking workers (see
// workers.go) and the backlog stays in the measured, ordered queue. What
// this still does not see: the time a request spends in socket buffers
// before an event loop reads it, and other processes on the same CPUs.
// Each server judges its own queue: tiers that share CPUs see each
// other's load as their own queuing and shed independently.
//
// Counting is sharded by connection (a shard per event loop, roughly), so
// that loops do not contend on one cache line, and the histogram records
// which business priorities it holds so a window's roll reads only those
// rows.
type admission struct {
	threshold int64 // nanoseconds of average queuing time that mean overload
	window    int64 // nanoseconds
	pool      *workerPool

	level  atomic.Uint32 // requests with a key below it are refused
	shards []*admissionShard
	next   atomic.Uint32 // round robin of shards over connections

	rolling     sync.Mutex
	windowStart atomic.Int64 // unix nanos

	mu    sync.Mutex // guards the fields below
	hist  []uint32   // scratch: one window's arrivals by key
	known [4]uint64  // bit b: business priority b has had arrivals
	calm  uint       // windows in a row that relaxed the level
	// quiet counts the windows in a row that ended calm at level 0; blip
	// is set by an overloaded window that followed blipWindows of them.
	quiet uint
	blip  bool
	// expiredMark is expired as of the last roll.
	expiredMark uint64
	lastWait    time.Duration
	overload    bool
	admitted    [256]uint64 // per business priority, since start
	shed        [256]uint64
	expired     atomic.Uint64
}

// blipWindows is how many quiet windows (calm, level 0) before a single
// overloaded window make it a blip, after which the next calm window drops
// the level back to 0 instead of relaxing it step by step.
//
// Why: on a machine whose CPUs other processes share, a tier's queue
// passes the threshold for a window now and then because the tier did not
// get a CPU for a few tens of milliseconds, not because it has more work
// than it can do. The level rose by a step (about 5% of the window's
// requests refused), and relaxing from it without data took four or five
// windows: in the IM backend, storage refused the syncs of the same fifth
// of the users (a user priority is one verdict per user) for five seconds,
// and their messages reached them that much late. A real rise in load
// that one step happened to absorb costs one more overloaded window after
// the drop, and then the level moves as usual: a spike that does not
// follow a long quiet never drops it at once.
const blipWindows = 10

const (
	admissionKeys = 1 << 15
	// DefaultOverloadThreshold is the average queuing time over which a
	// server counts as overloaded unless WithOverloadControl says otherwise
	// (DAGOR's production value).
	DefaultOverloadThreshold = 20 * time.Millisecond
	// DefaultAdmissionWindowReqs bounds an admission window in requests.
	DefaultAdmissionWindowReqs = 2000
	admissionWindow            = time.Second
	shedStep                   = 0.05 // fraction more refused per overloaded window
	relaxStep                  = 0.01 // fraction more admitted per calm window
)

// admissionShard is written by one event loop (roughly) for every request;
// the queuing times, which workers record, are counted in the worker pool.
type admissionShard struct {
	hist     [admissionKeys]atomic.Uint32
	touched  [4]atomic.Uint64 // bit b: business priority b has arrivals
	arrivals atomic.Uint32
}

func newAdmission(threshold time.Duration, shards int, pool *workerPool) *admission {
	a := &admission{threshold: int64(threshold), window: int64(admissionWindow), pool: pool, hist: make([]uint32, admissionKeys)}
	for range max(shards, 1) {
		a.shards = append(a.shards, new(admissionShard))
	}
	a.windowStart.Store(time.Now().UnixNano())
	return a
}

// shard returns the shard index for a new connection.
func (a *admission) shard() uint32 { return a.next.Add(1) % uint32(len(a.shards)) }

// admit counts an arrival with key on shard i and reports whether it is
// admitted. It runs on the event loop for every request.
func (a *admission) admit(i uint32, key uint16) bool {
	sh := a.shards[i]
	sh.hist[key].Add(1)
	b := key >> 7
	if bit := uint64(1) << (b & 63); sh.touched[b>>6].Load()&bit == 0 {
		sh.touched[b>>6].Or(bit)
	}
	if sh.arrivals.Add(1)%256 == 0 {
		a.maybeRoll()
	}
	return uint32(key) >= a.level.Load()
}

// maybeRoll ends the window early once it holds enough requests.
func (a *admission) maybeRoll() {
	var n uint32
	for _, sh := range a.shards {
		n += sh.arrivals.Load()
	}
	if n >= DefaultAdmissionWindowReqs {
		a.roll(time.Now().UnixNano())
	}
}

// tick ends the window when its time is up; the server's ticker calls it.
func (a *admission) tick(now int64) {
	if now-a.windowStart.Load() >= a.window {
		a.roll(now)
	}
}

// roll closes the window: it collects the arrivals and waits, decides
// whether the server is overloaded, and moves the level.
func (a *admission) roll(now int64) {
	if !a.rolling.TryLock() {
		return // another goroutine is rolling this window
	}
	defer a.rolling.Unlock()
	a.windowStart.Store(now)
	a.mu.Lock()
	defer a.mu.Unlock()

	hist := a.hist
	var touched [4]uint64
	waitSum, waitN := a.pool.takeWaits()
	for _, sh := range a.shards {
		sh.arrivals.Store(0)
		for w := range sh.touched {
			set := sh.touched[w].Swap(0)
			touched[w] |= set
			for ; set != 0; set &= set - 1 {
				b := w*64 + bits.TrailingZeros64(set)
				for k := b << 7; k < (b+1)<<7; k++ {
					hist[k] += sh.hist[k].Swap(0)
				}
			}
		}
	}

	level := a.level.Load()
	var admitted uint64
	topKey := -1
	for w := len(touched) - 1; w >= 0; w-- {
		for set := touched[w]; set != 0; set &= set - 1 {
			b := w*64 + bits.TrailingZeros64(set)
			for k := b << 7; k < (b+1)<<7; k++ {
				n := uint64(hist[k])
				if n == 0 {
					continue
				}
				topKey = max(topKey, k)
				if uint32(k) >= level {
					admitted += n
					a.admitted[b] += n
				} else {
					a.shed[b] += n
				}
			}
		}
	}

	a.lastWait = 0
	if waitN > 0 {
		a.lastWait = time.Duration(waitSum / waitN)
	}
	// A queue whose head has waited past the threshold is overloaded even
	// if nothing started this window (every worker stuck).
	oldest := a.pool.oldestWait(now)
	a.overload = int64(a.lastWait) > a.threshold || oldest > a.threshold

	// While overloaded, admit no more than the workers ran: the window's
	// service rate. Against a sudden flood this cuts at once to what the
	// server can do, where the 5% step alone would take dozens of windows
	// while every queued request expires. Calls dropped unrun because
	// their deadline passed in the queue cost next to nothing and are not
	// service: counting them would keep admitting a flood that expires.
	expired := a.expired.Load()
	ran := uint64(waitN) - min(uint64(waitN), expired-a.expiredMark)
	a.expiredMark = expired
	if a.overload {
		admitted = min(admitted, ran)
	}
	for w := range touched {
		a.known[w] |= touched[w]
	}
	next := nextLevel(hist, level, admitted, topKey, a.overload)
	if !a.overload && next < level {
		// Calm: relax by at most a step that doubles with every calm
		// window in a row, counted in keys of business priorities that
		// have had arrivals. The window's arrivals under the level are no
		// measure of the demand there: clients refuse those requests
		// themselves once they know the level, and what still arrives are
		// stragglers, so the histogram alone would either crawl (nothing
		// below: two keys a window, which left a level raised by a
		// start-up or a burst refusing a third of what the server could
		// serve for half a minute) or drop the level to the lowest
		// straggler at once (a flood, overload again, and a sawtooth).
		a.calm++
		step := relaxBlind(level, 2<<min(a.calm-1, 9), &a.known)
		if arrivedBelow(hist, level, topKey) {
			next = max(next, step)
		} else {
			next = step
		}
	} else if a.overload || next == 0 {
		a.calm = 0
	}
	switch {
	case a.overload:
		// quiet is 0 in the second overloaded window of a spike.
		a.blip = a.quiet >= blipWindows
		a.quiet = 0
	case a.blip:
		// One overloaded window after a long quiet, and calm again at
		// once: shed nothing more (see blipWindows).
		next, a.calm, a.blip = 0, 0, false
	}
	if !a.overload && next == 0 {
		a.quiet++
	}
	a.level.Store(next)

	for w, set := range touched {
		for ; set != 0; set &= set - 1 {
			b := w*64 + bits.TrailingZeros64(set)
			clear(hist[b<<7 : (b+1)<<7])
		}
	}
}

// nextLevel moves the admission level after a window whose arrivals by key
// are hist, of which admitted were at or above level, and whose highest
// key was topKey (-1: no arrivals).
//
// Overloaded: the lowest key such that the arrivals at or above it fit 95%
// of admitted, and at least one more non-empty key refused than before,
// but never above topKey. Calm: the same with 101%, at least one more
// non-empty key admitted; when nothing arrived below the level (clients
// refused it locally, having learnt the level), two user priorities lower,
// so that relaxing without data is slow and shedding can resume before a
// flood.
func nextLevel(hist []uint32, level uint32, admitted uint64, topKey int, overloaded bool) uint32 {
	if topKey < 0 {
		if overloaded {
			return level
		}
		return level - min(level, 2)
	}
	target := float64(admitted) * (1 + relaxStep)
	if overloaded {
		target = float64(admitted) * (1 - shedStep)
	}
	next := uint32(0)
	var cum float64
	for k := topKey; k >= 0; k-- {
		n := float64(hist[k])
		if n == 0 {
			continue
		}
		if cum+n > target {
			next = uint32(k + 1)
			break
		}
		cum += n
	}
	if overloaded {
		if next <= level {
			// Refuse at least the lowest non-empty key still admitted.
			for k := int(level); k <= topKey; k++ {
				if hist[k] != 0 {
					next = uint32(k + 1)
					break
				}
			}
		}
		return min(max(next, level), uint32(topKey))
	}
	below := -1 // the highest non-empty key below the level
	for k := min(int(level), topKey+1) - 1; k >= 0; k-- {
		if hist[k] != 0 {
			below = k
			break
		}
	}
	switch {
	case below < 0:
		return level - min(level, 2)
	case next < level:
		return next
	default:
		return uint32(below) // admit at least one more key
	}
}

// arrivedBelow reports whether hist has arrivals below level.
func arrivedBelow(hist []uint32, level uint32, topKey int) bool {
	for k := min(int(level), topKey+1) - 1; k >= 0; k-- {
		if hist[k] != 0 {
			return true
		}
	}
	return false
}

// relaxBlind lowers level by step keys, counting only keys of business
// priorities in known and skipping the others.
func relaxBlind(level, step uint32, known *[4]uint64) uint32 {
	for k := level; k > 0; {
		b := (k - 1) >> 7
		if known[b>>6]&(1<<(b&63)) == 0 {
			k = b << 7 // no arrivals ever at business b: skip it whole
			continue
		}
		k--
		if step--; step == 0 {
			return k
		}
	}
	return 0
}

// AdmissionStats is a snapshot of a server's overload control.
type AdmissionStats struct {
	// Enabled is false when the server runs without overload control.
	Enabled bool
	// Overloaded says whether the last window's queuing time passed the
	// threshold.
	Overloaded bool
	// QueueWait is the average time requests waited for a worker in the
	// last window.
	QueueWait time.Duration
	// LevelBusiness and LevelUser are the admission level: requests below
	// (LevelBusiness, LevelUser), business first, are refused. Both are 0
	// when everything is admitted.
	LevelBusiness, LevelUser uint8
	// Admitted and Shed count requests by business priority since the
	// server started, as of the last window (a request without one counts
	// under DefaultPriority).
	Admitted, Shed [256]uint64
	// Expired counts admitted requests dropped unrun because their
	// deadline had passed when a worker reached them.
	Expired uint64
}

// AdmissionStats returns a snapshot of the server's overload control.
func (s *Server) AdmissionStats() AdmissionStats {
	a := s.adm
	if a == nil {
		return AdmissionStats{}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	lvl := a.level.Load()
	return AdmissionStats{
		Enabled:       true,
		Overloaded:    a.overload,
		QueueWait:     a.lastWait,
		LevelBusiness: uint8(lvl >> 7),
		LevelUser:     uint8(lvl & 0x7f),
		Admitted:      a.admitted,
		Shed:          a.shed,
		Expired:       a.expired.Load(),
	}
}
