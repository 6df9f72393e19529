package testport

import (
	"net"
	"strconv"
	"testing"
)

func TestAddrIsFreeAndBelowTheEphemeralRange(t *testing.T) {
	r, ok := quietRange()
	seen := map[string]bool{}
	for range 50 {
		addr := Addr(t)
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := strconv.Atoi(port)
		if ok && (p < r.lo || p >= r.hi) {
			t.Fatalf("port %d outside [%d, %d)", p, r.lo, r.hi)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("%s is not free: %v", addr, err)
		}
		ln.Close()
		seen[addr] = true
	}
	if len(seen) < 40 {
		t.Fatalf("50 picks gave only %d addresses", len(seen))
	}
}
