package svrkit

import (
	"sync"
	"sync/atomic"
	"time"
)

// workerPool runs calls on reusable goroutines. A `go` statement per call
// costs an allocation (the closure carrying its arguments) and a fresh
// stack; a parked worker costs neither.
//
// Calls wait in a FIFO queue. A worker that finishes a call takes the next
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
type workerPool struct {
	run      func(*callCtx)
	idleTime time.Duration
	clock    *atomic.Int64 // unix nanos, advanced by the server's tick

	mu        sync.Mutex
	queue     []*callCtx // calls not yet taken; queue[head:] are live
	head      int
	idle      []*worker
	searching int // workers woken or started that have not yet looked at the queue
	quit      bool
	count     int
}

type worker struct {
	ch       chan bool // true: look at the queue; false: exit
	lastUsed int64     // the pool's clock when it last finished a call
}

func newWorkerPool(run func(*callCtx), idleTime time.Duration, clock *atomic.Int64) *workerPool {
	return &workerPool{run: run, idleTime: idleTime, clock: clock}
}

func (p *workerPool) submit(cc *callCtx) {
	p.mu.Lock()
	p.pushLocked(cc)
	if p.searching > 0 {
		p.mu.Unlock()
		return
	}
	p.wakeLocked()
}

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

// pushLocked queues cc; called with p.mu held. Before the queue's array
// would grow it moves the live calls to its front, so a queue that never
// quite empties (takeLocked resets only an empty one) stays as large as the
// most calls it held at once rather than as all the calls it ever held.
func (p *workerPool) pushLocked(cc *callCtx) {
	if len(p.queue) == cap(p.queue) && p.head > 0 {
		n := copy(p.queue, p.queue[p.head:])
		clear(p.queue[n:])
		p.queue, p.head = p.queue[:n], 0
	}
	p.queue = append(p.queue, cc)
}

// takeLocked pops the next call, or returns nil if the queue is empty;
// called with p.mu held.
func (p *workerPool) takeLocked() *callCtx {
	if p.head == len(p.queue) {
		return nil
	}
	cc := p.queue[p.head]
	p.queue[p.head] = nil
	p.head++
	if p.head == len(p.queue) {
		p.queue, p.head = p.queue[:0], 0
	}
	return cc
}

func (p *workerPool) loop(w *worker) {
	searching := true // started or woken by wakeLocked
	for {
		p.mu.Lock()
		if searching {
			p.searching--
			searching = false
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
		if p.head < len(p.queue) && p.searching == 0 {
			p.wakeLocked() // more calls wait: send the next worker
		} else {
			p.mu.Unlock()
		}
		p.run(cc)
		w.lastUsed = p.clock.Load()
	}
}

// oldestWait returns how long the call at the head of the queue has
// waited, in nanoseconds at now, or 0 when the queue is empty.
func (p *workerPool) oldestWait(now int64) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.head == len(p.queue) {
		return 0
	}
	return now - p.queue[p.head].queuedAt
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
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, w := range idle {
		w.ch <- false
	}
}
