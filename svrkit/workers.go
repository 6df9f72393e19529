package svrkit

import (
	"sync"
	"sync/atomic"
	"time"
)

// workerPool runs calls on reusable goroutines. A `go` statement per call
// costs an allocation (the closure carrying its arguments) and a fresh
// stack; handing the call to a parked worker over its channel costs neither.
// Workers are kept on a LIFO stack so the most recently used (warm cache,
// grown stack) runs next, and ones idle for idleTime exit. The pool itself
// is unbounded: the server's concurrent-call limit is what bounds it.
// Idle time is measured on the server's coarse clock (a second's
// resolution is plenty for a ten-second limit, and cheaper than time.Now
// per call).
type workerPool struct {
	run      func(*callCtx)
	idleTime time.Duration
	clock    *atomic.Int64 // unix nanos, advanced by the server's tick

	mu    sync.Mutex
	idle  []*worker
	quit  bool
	count int
}

type worker struct {
	ch       chan *callCtx
	lastUsed int64 // the pool's clock when it last finished a call
}

func newWorkerPool(run func(*callCtx), idleTime time.Duration, clock *atomic.Int64) *workerPool {
	return &workerPool{run: run, idleTime: idleTime, clock: clock}
}

func (p *workerPool) submit(cc *callCtx) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.ch <- cc
		return
	}
	p.count++
	p.mu.Unlock()
	w := &worker{ch: make(chan *callCtx, 1)}
	go p.loop(w, cc)
}

func (p *workerPool) loop(w *worker, cc *callCtx) {
	for cc != nil {
		p.run(cc)
		w.lastUsed = p.clock.Load()
		p.mu.Lock()
		if p.quit {
			p.count--
			p.mu.Unlock()
			return
		}
		p.idle = append(p.idle, w)
		p.mu.Unlock()
		cc = <-w.ch
	}
	p.mu.Lock()
	p.count--
	p.mu.Unlock()
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
		w.ch <- nil
	}
}

// stop ends every idle worker; busy ones end when their call returns.
func (p *workerPool) stop() {
	p.mu.Lock()
	p.quit = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, w := range idle {
		w.ch <- nil
	}
}
