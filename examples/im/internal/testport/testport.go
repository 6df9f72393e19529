// Package testport picks loopback addresses for the servers a test starts
// later (storage replicas and Logicsvrs in child processes, Raft
// transports), whose addresses must be chosen before they bind them:
// every replica's configuration names all of them.
//
// Why not the usual listen-on-port-0-and-close: that port comes from the
// kernel's ephemeral range, the same range every outgoing connection takes
// its local port from, and between the pick and the child's bind (a
// process start, hundreds of milliseconds on a loaded machine) the rest of
// a parallel test run makes thousands of loopback connections. One of them
// can take the port, and the child cannot bind it. That is the likeliest
// reading of a full run in which a three-replica group, healthy enough to
// take writes (two of three is a majority), had no leader for the rest of
// the test once its leader was killed. Ports below the ephemeral range are never handed out by the
// kernel, so only another explicit bind can take them.
package testport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
)

// Addr returns "127.0.0.1:port" for a port that was free a moment ago and
// that the kernel does not assign on its own (below its ephemeral range),
// falling back to an ephemeral one if none can be found.
func Addr(t testing.TB) string {
	t.Helper()
	if r, ok := quietRange(); ok {
		for range 200 {
			addr := fmt.Sprintf("127.0.0.1:%d", r.lo+rand.N(r.hi-r.lo))
			if ln, err := net.Listen("tcp", addr); err == nil {
				ln.Close()
				return addr
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// minPort keeps clear of well-known and commonly configured service ports.
const minPort = 10000

// ports is a range of ports [lo, hi).
type ports struct{ lo, hi int }

// quietRange is the range Addr picks from: from minPort up to the kernel's
// ephemeral range. ok is false when that cannot be read or leaves fewer
// than a thousand ports. The kernel's setting is read once.
var quietRange = sync.OnceValues(func() (ports, bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return ports{}, false
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || lo < minPort+1000 {
		return ports{}, false
	}
	return ports{minPort, lo}, true
})
