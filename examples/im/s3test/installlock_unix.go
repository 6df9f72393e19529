//go:build unix

package s3test

import (
	"context"
	"os"
	"syscall"
	"time"
)

// lockInstall takes an exclusive lock on path (created if missing) shared
// with every other process, waiting for it as long as ctx allows (calling
// waiting once if it must wait), and returns its release.
//
// Why: go test runs packages as separate processes at once, and on a
// machine without weed two of them each started building it into the same
// temporary path: one's rename found the other's file gone and its test
// failed after minutes. The process mutex could not see the other
// process; this lock does, and the kernel drops it if its holder dies.
func lockInstall(ctx context.Context, path string, waiting func()) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	retry := time.NewTicker(200 * time.Millisecond)
	defer retry.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing the file releases the lock
		}
		if err != syscall.EWOULDBLOCK && err != syscall.EINTR {
			f.Close()
			return nil, err
		}
		if waiting != nil {
			waiting()
			waiting = nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-retry.C:
		}
	}
}
