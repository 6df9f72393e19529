// Package leakcheck ends a test binary with a check that its tests left no
// goroutine running. Unlike goleak.VerifyTestMain, which gives stragglers
// well under a second, it waits up to Grace for goroutines already on
// their way out (a closed connection's reader, a stopped server's
// housekeeping), which on a machine shared with other builds can take
// longer; a goroutine still there after that is a leak.
package leakcheck

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Grace is how long Main waits for goroutines to end after the tests.
const Grace = 10 * time.Second

// Main runs the tests, then the check, and exits.
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(Grace)
		for {
			err := goleak.Find()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "leakcheck: goroutines still running %v after the tests: %v\n", Grace, err)
				code = 1
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	os.Exit(code)
}
