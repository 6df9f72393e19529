package handlers

import (
	"strings"
	"testing"
	"time"
)

// A client address counts as one key: an IPv4 address whatever the port,
// an IPv6 address by its /64 (one subscriber's allocation).
func TestAddrKey(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7:51234":          "203.0.113.7",
		"203.0.113.7":                "203.0.113.7",
		"[::ffff:203.0.113.7]:1":     "203.0.113.7",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443": "2001:db8:1:2::/64",
		"[fe80::1%eth0]:1":           "fe80::/64",
		"not an address":             "addr:not an address",
		"[2001:db8:1:3:3:4:5:6]:443": "2001:db8:1:3::/64",
	} {
		if got := addrKey(in); got != want {
			t.Errorf("addrKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestThrottledMessage(t *testing.T) {
	for wait, want := range map[time.Duration]string{
		time.Millisecond:        "try again in 1 s",
		time.Second:             "try again in 1 s",
		1500 * time.Millisecond: "try again in 2 s",
		15 * time.Minute:        "try again in 900 s",
	} {
		if got := throttled(wait).Error(); !strings.Contains(got, want) || !strings.Contains(got, "too many failed logins") {
			t.Errorf("throttled(%v) = %q, want %q in it", wait, got, want)
		}
	}
}
