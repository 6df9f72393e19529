package main

import (
	"os"
	"testing"
)

// TestMain keeps the monitor regions of the Logicsvrs these tests run (up
// and the README walkthrough) in a temporary directory, not in the
// machine's /dev/shm.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "svrkit-tool-test-")
	if err != nil {
		panic(err)
	}
	os.Setenv("SVRKIT_MONITOR_DIR", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
