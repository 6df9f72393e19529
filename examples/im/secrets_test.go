package im_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer that a process writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogicsvrsRefuseDevelopmentSecrets starts real Logicsvr binaries with
// the secrets topology.json publishes, and with short ones: outside
// development mode each refuses to start and says why; with "dev": true it
// starts and warns.
func TestLogicsvrsRefuseDevelopmentSecrets(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Logicsvr binaries")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./logicsvr/account", "./logicsvr/sync", "./logicsvr/storage")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building: %v\n%s", err, out)
	}
	const devSecret = "dev-only: set your own secret in production"
	routes := map[string][]string{"im.AccountData": {"127.0.0.1:1"}, "im.MessageData": {"127.0.0.1:1"}}
	// start runs a Logicsvr with cfg and returns it with its stderr.
	start := func(t *testing.T, name string, cfg map[string]any) (*exec.Cmd, *syncBuffer) {
		t.Helper()
		cfg["http"], cfg["rpc"], cfg["admin"], cfg["routes"] = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", routes
		b, _ := json.Marshal(cfg)
		path := filepath.Join(t.TempDir(), name+".json")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(filepath.Join(bin, name), "-config", path)
		var stderr syncBuffer
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &stderr
	}
	wait := func(t *testing.T, cmd *exec.Cmd) error {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			return err
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-done
			t.Fatal("the Logicsvr did not exit within a minute")
			return nil
		}
	}
	for _, tc := range []struct {
		name, logicsvr, why string
		app                 map[string]any
	}{
		{"account, published secret", "account", "session_secret is the public development secret", map[string]any{"session_secret": devSecret}},
		{"account, short secret", "account", "session_secret has 12 bytes, fewer than 32", map[string]any{"session_secret": "short secret"}},
		{"sync, published secret", "sync", "session_secret is the public development secret", map[string]any{"session_secret": devSecret}},
		{"storage, published secret", "storage", "sync_key_secret is the public development secret", map[string]any{"sync_key_secret": devSecret}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.logicsvr == "storage" {
				tc.app["dir"] = t.TempDir()
			}
			cmd, stderr := start(t, tc.logicsvr, map[string]any{"app": tc.app})
			err := wait(t, cmd)
			if err == nil || !strings.Contains(stderr.String(), "REFUSING TO START") || !strings.Contains(stderr.String(), tc.why) {
				t.Fatalf("exit %v, stderr:\n%s\nwant a failed start saying %q", err, stderr, tc.why)
			}
		})
	}
	t.Run("account, published secret in development mode", func(t *testing.T) {
		cmd, stderr := start(t, "account", map[string]any{"dev": true, "app": map[string]any{"session_secret": devSecret}})
		deadline := time.Now().Add(time.Minute)
		for !strings.Contains(stderr.String(), "logicsvr ready") {
			if cmd.ProcessState != nil || time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				t.Fatalf("not ready within a minute:\n%s", stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := wait(t, cmd); err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, stderr)
		}
		if !strings.Contains(stderr.String(), "DEVELOPMENT MODE") {
			t.Errorf("no warning in development mode:\n%s", stderr)
		}
	})
}
