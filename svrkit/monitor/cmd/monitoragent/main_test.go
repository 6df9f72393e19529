package main

import "testing"

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"-center", "127.0.0.1:1", "-routes", "r.json"}, {"-log-level", "loud", "-center", "x"}} {
		if code := run(args); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
	}
}
