package svrkit

import (
	"sync/atomic"
	"time"
)

// downstreamLevel is, for one method of a server, the highest admission
// level that the services its handlers call report now: the level below
// which a request of this method would be refused further down the chain
// anyway.
//
// Why the server keeps it (beyond DAGOR, which has each client learn only
// its direct server's level): a request refused at the bottom of a chain
// has already cost every tier above it its work and its hops. Measured
// with tools/overloadbench (a 300 µs basic tier under a 20 µs shared and
// entry tier), those wasted upper-tier calls held goodput at 2× and 4× of
// capacity near 70%, however well the basic tier shed. Priorities are
// inherited along the chain (priority.go), so a request's admission key is
// the same at every tier and a verdict further down can be given at the
// top: the server refuses at once, unrun and undecoded, the requests of a
// method whose key is below this level, and reports the level on the
// method's responses (the wire header's timeout field, see wire), so its
// own clients refuse them without sending. Each tier learns it from the
// tier below, so it climbs the whole chain to the first client.
//
// It is per method because a server's methods call different services:
// one whose dependency is overloaded must not shed the others. A method
// that calls several dependencies (shards of a store, or two services)
// takes the highest of their levels; that over-sheds the users of the calm
// ones while another is overloaded, the price of one number per method.
//
// Each dependency's level is its last report (after every call the
// handlers make, see endpoint.reportLevel), so a dependency that relaxes,
// to a lower level or to none, relaxes the method with its next answer.
// An earlier version kept the highest report of the last one to two
// seconds, one number for all the dependencies: a dependency's "calm
// again" could not lower it. In the IM backend a blip of queuing in
// storage (a level for a few hundred milliseconds) then held messagedata's
// syncs refused for one to two seconds after storage had relaxed, sync's
// for one to two more after messagedata's, and the devices shed at the top
// backed off meanwhile: messages synced seconds late (the README's
// "Overload control" has the runs).
//
// A dependency's level also expires levelTTL after its last report: while
// it is overloaded its answers keep the level fresh; once every request of
// the method is refused here nothing is reported, and the level expires,
// lets requests through, and is learnt again if the dependency is still
// overloaded, as a client's endpoint level does.
//
// The dependencies are the first downstreamDeps (address, method) pairs to
// report a level; a further one takes the slot of a level that is gone, or
// else of the lowest. Methods call a handful of services, and only the
// overloaded ones hold a slot. A slot copies the level from the client's
// record of it (endpoint.level and the method's reportedLevel) rather than
// pointing at that record: the server reads it at the door for every
// request of the method, where following pointers into the clients' maps
// would cost more than the copy, which is written only when the level
// changes or ages by refreshEvery.
type downstreamLevel struct {
	deps [downstreamDeps]depLevel
}

// depLevel is one dependency's last report.
type depLevel struct {
	dep atomic.Uint64 // which dependency (see depKey); 0: none yet
	val atomic.Uint64 // unix milliseconds of the report << 16 | its level; 0: no level
}

const downstreamDeps = 4

// refreshEvery is how stale a dependency's unchanged level may get before
// a report rewrites its time: rewriting on every call would make every
// worker write the same cache line.
const refreshEvery = 100 * time.Millisecond

// depKey identifies a dependency: a method (cmd) of the server at an
// address (its endpoint's hash). Never 0.
func depKey(epHash uint64, cmd uint32) uint64 {
	if k := epHash ^ mix64(uint64(cmd)+1); k != 0 {
		return k
	}
	return 1
}

// observe records that dependency dep reported level lvl (0: none) at now
// (unix nanos).
func (d *downstreamLevel) observe(dep uint64, lvl uint32, now int64) {
	ms := now / int64(time.Millisecond)
	var val uint64
	if lvl != 0 {
		val = uint64(ms)<<16 | uint64(lvl)
	}
	// Every slot it holds: workers that heard its first level together may
	// each have claimed one.
	held := false
	for i := range d.deps {
		s := &d.deps[i]
		if s.dep.Load() != dep {
			continue
		}
		held = true
		if old := s.val.Load(); old != val && (uint16(old) != uint16(val) || ms-int64(old>>16) >= refreshEvery.Milliseconds()) {
			s.val.Store(val)
		}
	}
	if held || lvl == 0 {
		return // updated, or no level and none recorded for it
	}
	// A slot for it: one without a live level, else the lowest live one
	// if its level is lower.
	var low *depLevel
	var lowLvl uint16
	for i := range d.deps {
		s := &d.deps[i]
		old, v := s.dep.Load(), s.val.Load()
		if !live(v, ms) {
			if s.dep.CompareAndSwap(old, dep) {
				s.val.Store(val)
				return
			}
			continue // another worker claimed it
		}
		if low == nil || uint16(v) < lowLvl {
			low, lowLvl = s, uint16(v)
		}
	}
	if low != nil && lowLvl < uint16(lvl) {
		low.dep.Store(dep)
		low.val.Store(val)
	}
}

// live reports whether val, a depLevel's, holds a level at ms (unix
// milliseconds).
func live(val uint64, ms int64) bool {
	return val != 0 && ms-int64(val>>16) < levelTTL.Milliseconds()
}

// get returns the level at now (unix nanos), 0 when none is recent. Levels
// found expired are cleared, so that a method whose dependencies are calm
// again pays only the loads of any (not the clock) per request.
func (d *downstreamLevel) get(now int64) uint32 {
	ms := now / int64(time.Millisecond)
	var lvl uint32
	for i := range d.deps {
		s := &d.deps[i]
		v := s.val.Load()
		if v == 0 {
			continue
		}
		if live(v, ms) {
			lvl = max(lvl, uint32(uint16(v)))
		} else {
			s.val.CompareAndSwap(v, 0)
		}
	}
	return lvl
}

// any reports whether a level may be set, without reading the clock.
func (d *downstreamLevel) any() bool {
	for i := range d.deps {
		if d.deps[i].val.Load() != 0 {
			return true
		}
	}
	return false
}

// level is get now, reading the clock only when a level may be set.
func (d *downstreamLevel) level() uint32 {
	if !d.any() {
		return 0
	}
	return d.get(time.Now().UnixNano())
}
