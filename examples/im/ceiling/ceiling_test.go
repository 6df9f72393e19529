package ceiling

import (
	"context"
	"testing"
	"time"
)

// TestRunDeliversEverything: a short run stores messages and every one
// reaches its receiver's device once, with CPU measured.
func TestRunDeliversEverything(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := Run(ctx, Config{Users: 3, Duration: 300 * time.Millisecond, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent == 0 || r.Delivered != r.Sent || r.PerSec() <= 0 || r.CPU <= 0 {
		t.Errorf("run does not add up: %+v", r)
	}
}
