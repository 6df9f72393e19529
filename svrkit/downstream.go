package svrkit

import (
	"sync/atomic"
	"time"
)

// downstreamLevel is, for one method of a server, the highest admission
// level that the services its handlers call have reported lately: the
// level below which a request of this method would be refused further
// down the chain anyway.
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
// that calls several endpoints (shards of a store) takes the highest of
// their levels; that over-sheds the users of the calm ones while another
// is overloaded, the price of one number per method.
//
// The level lasts one to two levelTTLs after it was last reported, in two
// slots of one epoch each: the current epoch's highest report and the
// previous one's. While a dependency is overloaded its answers keep the
// level fresh; once every request of the method is refused here nothing
// is reported, and the level expires, lets requests through, and is
// learnt again if the dependency is still overloaded, as a client's
// endpoint level does (levelTTL).
type downstreamLevel struct {
	slots [2]atomic.Uint64 // epoch<<32 | level
}

// observe records a level a dependency reported at now (unix nanos).
func (d *downstreamLevel) observe(lvl uint32, now int64) {
	if lvl == 0 {
		return
	}
	e := uint64(now / int64(levelTTL))
	s := &d.slots[e&1]
	for {
		old := s.Load()
		if old>>32 == e && uint32(old) >= lvl {
			return
		}
		if s.CompareAndSwap(old, e<<32|uint64(lvl)) {
			return
		}
	}
}

// get returns the level at now (unix nanos), 0 when none is recent. Slots
// found stale are cleared, so that a method whose dependencies are calm
// again pays only two atomic loads per request (load, not the clock).
func (d *downstreamLevel) get(now int64) uint32 {
	e := uint64(now / int64(levelTTL))
	var lvl uint32
	for i := range d.slots {
		v := d.slots[i].Load()
		if v == 0 {
			continue
		}
		if t := v >> 32; t == e || t+1 == e {
			lvl = max(lvl, uint32(v))
		} else {
			d.slots[i].CompareAndSwap(v, 0)
		}
	}
	return lvl
}

// any reports whether a level may be set, without reading the clock.
func (d *downstreamLevel) any() bool {
	return d.slots[0].Load()|d.slots[1].Load() != 0
}

// level is get now, reading the clock only when a level may be set.
func (d *downstreamLevel) level() uint32 {
	if !d.any() {
		return 0
	}
	return d.get(time.Now().UnixNano())
}
