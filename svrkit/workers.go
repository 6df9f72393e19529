package svrkit

import (
	"math/bits"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// workerPool runs calls on reusable goroutines. A `go` statement per call
// costs an allocation (the closure carrying its arguments) and a fresh
// stack; a parked worker costs neither.
//
// Calls wait in a queue with a FIFO lane per business priority, and
// workers take from the highest non-empty lane (when the server runs
// overload control; otherwise every call shares one lane). Admission keeps
// the queue short; ordering it is what keeps the important calls fast in
// the window or two before the admission level catches up with a surge, or
// while the server rides the edge of its capacity with a standing queue:
// a high-priority call then overtakes the backlog instead of waiting behind
// it, and the calls left at the back are the lowest, which the level sheds
// next and whose deadlines, if they pass first, get them dropped unrun. A
// call without a deadline may wait as long as higher-priority work keeps
// every worker busy; an overloaded server refuses its priority at the door
// meanwhile. A worker that finishes a call takes the next
// queued one without parking, so under load most calls start without any
// goroutine wake-up. A parked worker is woken only when nobody is already
// on the way to the queue (searching): a woken worker counts as searching
// until it takes a call, and one that takes a call while more are queued
// and nobody else is searching wakes the next. So every queued call has a
// worker coming for it even when all the others are blocked in handlers,
// and a burst of calls wakes workers one after another, as fast as they
// get to run, rather than all at once. (The scheduler's own spinning
// threads work the same way.)
//
// Parked workers are kept on a LIFO stack so the most recently used (warm
// cache, grown stack) runs next, and ones idle for idleTime exit. Idle time
// is measured on the server's coarse clock (a second's resolution is
// plenty for a ten-second limit, and cheaper than time.Now per call). The
// pool itself is unbounded: the server's concurrent-call limit is what
// bounds it.
//
// Except when the CPUs are the bottleneck (with overload control on). A
// worker blocked in I/O frees its CPU, so another worker for a queued call
// adds throughput; a worker burning CPU does not, and on a CPU-bound server
// the rule above kept waking workers while calls queued: a hundred handlers
// sharing two CPUs, each call's wall time stretched a hundredfold, the
// event loops waiting for a CPU behind them, and the real queue moved out
// of the pool — where overload control measures it — into the Go
// scheduler's run queue, unordered by priority. So while calls already
// wait, at least GOMAXPROCS workers are in calls and at least GOMAXPROCS
// goroutines are runnable (every CPU has one waiting: the scheduler's run
// queue, not a shortage of workers, is what holds calls back), the pool
// wakes no more: the calls wait in the queue, in priority order, measured,
// until a busy worker comes back for them. Runnable goroutines are this
// process's own (runtime/metrics), so a neighbour's load on the machine
// does not throttle the pool, and blocked workers are not runnable, so an
// I/O-bound server keeps waking workers as before.
//
// Workers whose handler waits on an outgoing svrkit call are not counted
// as in calls (once per worker, however many calls its handler has out).
// The runnable count alone could not tell that they hold no CPU: a front
// tier like the IM's sync, whose handlers mostly wait on the data tier,
// had GOMAXPROCS such workers "in calls" and as many goroutines runnable
// (the workers just woken by their answers) at almost every check, so a
// burst of calls (a group message's push waking every member's device at
// once) was served GOMAXPROCS at a time. Overload control read that
// queue as overload and the tier shed the next bursts, though its CPUs
// were idle. The check runs only
// when a call arrives to a non-empty queue or a worker leaves one behind,
// and reads the runnable count at most once per schedReuse; when it keeps
// a worker from waking, the queue is looked at again recheckAfter later,
// in case every busy worker blocked after the check.
type workerPool struct {
	run      func(*callCtx)
	idleTime time.Duration
	clock    *atomic.Int64 // unix nanos, advanced by the server's tick
	// byPriority orders the queue by business priority (the server runs
	// overload control); otherwise every call waits in one lane, FIFO.
	byPriority bool

	mu        sync.Mutex
	lanes     [256]fifo // calls not yet taken, by business priority
	ready     [4]uint64 // bit b: lanes[b] is not empty
	queued    int       // calls in all lanes
	idle      []*worker
	searching int // workers woken or started that have not yet looked at the queue
	busy      int // workers in a call
	quit      bool
	count     int
	procs     int               // GOMAXPROCS at creation
	sched     [1]metrics.Sample // runnable goroutines; used under mu
	schedAt   int64             // when sched was read (unix nanos)
	schedBusy bool              // what cpusBusyLocked concluded from it
	// recheck looks at the queue again recheckAfter after cpusBusyLocked
	// kept a worker from waking (armed: it is pending).
	recheck *time.Timer
	armed   bool
	// waitSum and waitN add up, with overload control on, how long the
	// calls taken since the last takeWaits had waited in the queue
	// (nanoseconds). They are counted here, under the lock the worker holds
	// anyway to take its call, and not in the admission's shards: those
	// are written by the event loop for every request, and workers adding
	// to the same cache lines from the other CPUs bounced them between
	// cores on every call.
	waitSum, waitN int64
	// waiting counts busy workers whose handler waits on an outgoing
	// svrkit call (callCtx.callOut): they hold no CPU, so cpusBusyLocked
	// does not count them as in calls.
	waiting atomic.Int64
}

// fifo is one lane of the queue; buf[head:] are the live calls.
type fifo struct {
	buf  []*callCtx
	head int
}

type worker struct {
	ch       chan bool // true: look at the queue; false: exit
	lastUsed int64     // the pool's clock when it last finished a call
}

func newWorkerPool(run func(*callCtx), idleTime time.Duration, clock *atomic.Int64) *workerPool {
	return &workerPool{run: run, idleTime: idleTime, clock: clock, procs: runtime.GOMAXPROCS(0)}
}

func (p *workerPool) submit(cc *callCtx) {
	p.mu.Lock()
	backlog := p.queued > 0
	p.pushLocked(cc)
	if p.searching > 0 {
		p.mu.Unlock()
		return
	}
	p.wakeOrArmLocked(backlog, cc.queuedAt)
}

// wakeOrArmLocked sends a worker to the queue, unless check is set and the
// CPU check (at now, unix nanos) says it would only wait for a CPU: then it
// arms the recheck instead. Called with p.mu held, it releases it.
func (p *workerPool) wakeOrArmLocked(check bool, now int64) {
	if check && p.cpusBusyLocked(now) {
		p.armLocked()
		p.mu.Unlock()
		return
	}
	p.wakeLocked()
}

// armLocked makes sure the queue is looked at again soon after the CPU
// check kept a worker from waking. The check cannot tell a worker on a CPU
// from one blocked in its handler (a sleep, a disk, a lock), so the busy
// workers it counted on may all be blocked: then nobody would come for the
// queued calls until one of them returned or the next call arrived, which
// on a quiet closed loop is never, and the wait grew past overload
// control's threshold on a server with idle CPUs. Called with p.mu held.
func (p *workerPool) armLocked() {
	if p.armed || p.quit {
		return
	}
	p.armed = true
	if p.recheck == nil {
		p.recheck = time.AfterFunc(recheckAfter, p.recheckQueue)
		return
	}
	p.recheck.Reset(recheckAfter)
}

// recheckQueue is the timer armLocked sets.
func (p *workerPool) recheckQueue() {
	p.mu.Lock()
	p.armed = false
	if p.queued == 0 || p.searching > 0 || p.quit {
		p.mu.Unlock()
		return
	}
	p.wakeOrArmLocked(true, time.Now().UnixNano())
}

// recheckAfter bounds how long a queued call can wait for a worker the CPU
// check did not wake: well under the queuing time overload control acts on,
// and rare enough to cost nothing on a saturated server.
const recheckAfter = time.Millisecond

// cpusBusyLocked reports whether another worker would only wait for a CPU
// (see workerPool): overload control is on, at least GOMAXPROCS workers are
// in calls and not waiting on a call of their own, and at least GOMAXPROCS
// goroutines are runnable. now (unix nanos) is the caller's recent reading
// of the clock. Called with p.mu held.
//
// The runnable count is read at most once per schedReuse: reading it takes
// the scheduler's lock and walks every P, and at a few hundred thousand
// calls a second a read per submit and per take was a few percent of the
// process's CPU, and contended with the threads looking for work. The
// bound is in time, not in checks: a reading reused for a number of checks
// (or for its backlog) could say "busy" for milliseconds on a server whose
// calls had since blocked, holding calls in the queue long enough for
// overload control to shed.
func (p *workerPool) cpusBusyLocked(now int64) bool {
	if !p.byPriority || p.busy-int(p.waiting.Load()) < p.procs {
		return false
	}
	if age := now - p.schedAt; age >= 0 && age < int64(schedReuse) {
		return p.schedBusy
	}
	if p.sched[0].Name == "" {
		p.sched[0].Name = "/sched/goroutines/runnable:goroutines"
	}
	metrics.Read(p.sched[:])
	p.schedAt = now
	p.schedBusy = p.sched[0].Value.Kind() == metrics.KindUint64 && p.sched[0].Value.Uint64() >= uint64(p.procs)
	return p.schedBusy
}

// schedReuse is how long a reading of the runnable count stands for: a
// small fraction of the queuing time overload control reacts to.
const schedReuse = 50 * time.Microsecond

// wakeLocked sends one more worker to the queue, waking a parked one or
// starting a new one; called with p.mu held, it releases it.
func (p *workerPool) wakeLocked() {
	p.searching++
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.ch <- true
		return
	}
	p.count++
	p.mu.Unlock()
	go p.loop(&worker{ch: make(chan bool, 1), lastUsed: p.clock.Load()})
}

// pushLocked queues cc; called with p.mu held.
func (p *workerPool) pushLocked(cc *callCtx) {
	b := 0
	if p.byPriority {
		b = int(cc.prio.business)
		if b == 0 {
			b = DefaultPriority
		}
	}
	p.lanes[b].push(cc)
	p.ready[b>>6] |= 1 << (b & 63)
	p.queued++
}

// takeLocked pops the next call, the oldest of the highest business
// priority, or returns nil if the queue is empty; called with p.mu held.
func (p *workerPool) takeLocked() *callCtx {
	if p.queued == 0 {
		return nil
	}
	w := len(p.ready) - 1
	for p.ready[w] == 0 {
		w--
	}
	b := w<<6 | (63 - bits.LeadingZeros64(p.ready[w]))
	l := &p.lanes[b]
	cc := l.take()
	if l.head == len(l.buf) {
		p.ready[w] &^= 1 << (b & 63)
	}
	p.queued--
	return cc
}

// push appends cc. Before the lane's array would grow it moves the live
// calls to its front, so a lane that never quite empties (take resets only
// an empty one) stays as large as the most calls it held at once rather
// than as all the calls it ever held.
func (l *fifo) push(cc *callCtx) {
	if len(l.buf) == cap(l.buf) && l.head > 0 {
		n := copy(l.buf, l.buf[l.head:])
		clear(l.buf[n:])
		l.buf, l.head = l.buf[:n], 0
	}
	l.buf = append(l.buf, cc)
}

// take pops the lane's oldest call; the lane must not be empty.
func (l *fifo) take() *callCtx {
	cc := l.buf[l.head]
	l.buf[l.head] = nil
	l.head++
	if l.head == len(l.buf) {
		l.buf, l.head = l.buf[:0], 0
	}
	return cc
}

func (p *workerPool) loop(w *worker) {
	searching := true // started or woken by wakeLocked
	inCall := false
	for {
		p.mu.Lock()
		if searching {
			p.searching--
			searching = false
		}
		if inCall {
			p.busy--
			inCall = false
		}
		cc := p.takeLocked()
		if cc == nil && p.quit {
			p.count--
			p.mu.Unlock()
			return
		}
		if cc == nil {
			p.idle = append(p.idle, w)
			p.mu.Unlock()
			if !<-w.ch {
				p.mu.Lock()
				p.count--
				p.mu.Unlock()
				return
			}
			searching = true
			continue
		}
		p.busy++
		inCall = true
		if p.byPriority {
			// Overload control measures the wait; the call's deadline is
			// checked against the same reading (see serverConn.serve).
			cc.startedAt = time.Now().UnixNano()
			p.waitedLocked(cc.startedAt - cc.queuedAt)
		}
		if p.queued == 0 || p.searching > 0 {
			p.mu.Unlock()
		} else {
			p.wakeOrArmLocked(true, cc.startedAt) // more calls wait
		}
		p.run(cc)
		w.lastUsed = p.clock.Load()
	}
}

// waitedLocked records that a call waited d nanoseconds in the queue;
// called with p.mu held.
func (p *workerPool) waitedLocked(d int64) {
	p.waitSum += d
	p.waitN++
}

// takeWaits returns the sum and count of the queuing times recorded since
// its last call, and starts over.
func (p *workerPool) takeWaits() (sum, n int64) {
	p.mu.Lock()
	sum, n = p.waitSum, p.waitN
	p.waitSum, p.waitN = 0, 0
	p.mu.Unlock()
	return sum, n
}

// oldestWait returns how long the longest-waiting queued call has waited,
// in nanoseconds at now, or 0 when the queue is empty.
func (p *workerPool) oldestWait(now int64) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var oldest int64
	for w, set := range p.ready {
		for ; set != 0; set &= set - 1 {
			l := &p.lanes[w<<6|bits.TrailingZeros64(set)]
			oldest = max(oldest, now-l.buf[l.head].queuedAt)
		}
	}
	return oldest
}

// reap stops workers idle for longer than idleTime at now (unix nanos);
// the oldest are at the bottom of the stack.
func (p *workerPool) reap(now int64) {
	cutoff := now - int64(p.idleTime)
	p.mu.Lock()
	n := 0
	for n < len(p.idle) && p.idle[n].lastUsed < cutoff {
		n++
	}
	old := append([]*worker(nil), p.idle[:n]...)
	p.idle = append(p.idle[:0], p.idle[n:]...)
	p.mu.Unlock()
	for _, w := range old {
		w.ch <- false
	}
}

// stop ends every idle worker; busy ones end once the queue is empty.
func (p *workerPool) stop() {
	p.mu.Lock()
	p.quit = true
	if p.recheck != nil {
		p.recheck.Stop()
	}
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, w := range idle {
		w.ch <- false
	}
}
