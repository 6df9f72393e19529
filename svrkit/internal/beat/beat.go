// Package beat gives periodic housekeeping one rhythm: timers that wait
// with Until fire on the same instants, the multiples of their period on
// the wall clock, so together they wake a process once.
//
// Why: an idle Go process pays for every wake-up well beyond the work the
// timer does. The runtime's monitor thread (sysmon) sleeps deeper the
// longer nothing happens and starts over from 20 µs sleeps whenever the
// process wakes, and on the 2-core VM the project is measured on each of
// those sleeps is a context switch. An idle Logicsvr spent 2–9 ms of CPU a
// second, most of it on about 230 such sleeps, for five or six timers (the
// routing file, process sampling, the event loop's tick, each client's
// health check, gnet's client pool) each started at its own moment and so
// each waking the process on its own. Timers that expire together are run
// by one wake-up.
//
// The beats are the wall clock's, the same in every process of a machine,
// not a random offset per process: a client's health check pings the
// servers it calls, and a ping that lands on the server's own beat wakes
// it no extra time. Tried with a random offset per process, an idle
// accountdata (which many services call) switched context 201 times a
// second instead of 40, and spent 5.0 ms of CPU a second instead of 1.7. The
// work that runs together is small (a file compared, /proc read, the
// connections walked), so the burst it makes on a busy machine is too.
package beat

import "time"

// Until returns how long to wait for the next beat of period: the next
// multiple of period on the wall clock that is at least half a period
// away, so a timer that fired a little early does not fire again at the
// instant it was meant for. The first wait is between half a period and
// one and a half; each later one, a period.
func Until(period time.Duration) time.Duration {
	if period <= 0 {
		return 0
	}
	now := time.Now()
	next := now.Add(period / 2).Truncate(period).Add(period)
	return next.Sub(now)
}
