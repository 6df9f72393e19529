//go:build unix

package queue_test

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time this process has used, user and system:
// the client's and, as the server is embedded, the server's. On a machine
// shared with other work it varies less than wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
