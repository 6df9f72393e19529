//go:build unix

package s3test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestLockInstallExcludesAnotherHolder checks the lock between two holders
// (two opens of the lock file, as two processes have): the second waits,
// says so once, gives up with its context, and gets the lock once the first
// lets it go.
func TestLockInstallExcludesAnotherHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weed.lock")
	unlock, err := lockInstall(context.Background(), path, func() { t.Error("the first holder waited") })
	if err != nil {
		t.Fatal(err)
	}
	waited := 0
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := lockInstall(ctx, path, func() { waited++ }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second holder while the first holds the lock: %v, want the context's deadline", err)
	}
	if waited != 1 {
		t.Fatalf("waiting called %d times, want once", waited)
	}
	unlock()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	unlock2, err := lockInstall(ctx, path, nil)
	if err != nil {
		t.Fatalf("after the first holder let go: %v", err)
	}
	unlock2()
}
