package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"-center", "127.0.0.1:1", "-routes", "r.json"}, {"-log-level", "loud", "-center", "x"}} {
		if code := run(args); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
	}
}

func TestReadKey(t *testing.T) {
	dir := t.TempDir()
	_, key, _ := ed25519.GenerateKey(nil)
	for name, content := range map[string]string{
		"seed": hex.EncodeToString(key.Seed()) + "\n",
		"full": hex.EncodeToString(key),
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		got, err := readKey(p)
		if err != nil || !got.Equal(key) {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("abcd"), 0o600)
	if _, err := readKey(bad); err == nil || !strings.Contains(err.Error(), "2 bytes") {
		t.Errorf("short key: %v", err)
	}
}
