package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im/imtest"
	"github.com/svrkit/svrkit/examples/im/mediatest"
	"github.com/svrkit/svrkit/tools/internal/cmdline/cmdlinetest"
)

// syncBuffer is a bytes.Buffer safe to read while watch writes it.
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

// TestChat is two people chatting with imcli against the real backend
// (svrkit up of examples/im): each command a fresh run, as from a shell,
// with the state files in a temporary HOME.
func TestChat(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the IM backend")
	}
	be := imtest.Start(t)
	home := t.TempDir()
	env := func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	}
	imcli := func(ctx context.Context, stdout *syncBuffer, args ...string) (int, string) {
		t.Helper()
		var stderr syncBuffer
		code := run(ctx, append([]string{"-up", be.StateFile}, args...), strings.NewReader(""), stdout, &stderr, env)
		return code, stderr.String()
	}
	ok := func(want string, args ...string) string {
		t.Helper()
		var out syncBuffer
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if code, stderr := imcli(ctx, &out, args...); code != 0 {
			t.Fatalf("imcli %q: exit %d, stderr %s", args, code, stderr)
		}
		if !strings.Contains(out.String(), want) {
			t.Fatalf("imcli %q printed %q; want %q in it", args, out.String(), want)
		}
		return out.String()
	}
	fails := func(wantCode int, wantErr string, args ...string) {
		t.Helper()
		var out syncBuffer
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		code, stderr := imcli(ctx, &out, args...)
		if code != wantCode || !strings.Contains(stderr, wantErr) {
			t.Fatalf("imcli %q: exit %d, stderr %q; want exit %d with %q", args, code, stderr, wantCode, wantErr)
		}
	}

	ok("logged in as alice", "register", "alice", "-password", "alice-password", "-nick", "Alice")
	ok("registered bob", "register", "bob", "-password", "bob-password")
	fails(1, "already_exists", "register", "bob", "-password", "not-bobs-password")
	fails(1, "unauthenticated: wrong name or password", "login", "bob", "-password", "not-bobs")
	fails(2, "unknown command", "frobnicate")
	fails(2, "whose login?", "contacts")
	fails(1, "not one of your contacts", "-as", "alice", "send", "bob", "hi")

	ok("added bob", "-as", "alice", "add", "bob")
	ok("bob", "-as", "alice", "contacts")
	ok("sent to bob", "-as", "alice", "send", "bob", "hello", "bob")
	ok("alice → you: hello bob", "-as", "bob", "sync")
	ok("nothing new", "-as", "bob", "sync")
	ok(`"name":"bob"`, "-as", "bob", "-json", "whoami")
	ok(`"nickname":"Alice"`, "-as", "alice", "-json", "profile", "alice")
	ok("you → bob: hello bob", "-as", "alice", "sync")

	// watch prints a message sent while it runs, pushed over the long
	// link, and stops on cancel.
	ctx, cancel := context.WithCancel(context.Background())
	deadline0 := time.Now().Add(30 * time.Second)
	var watched syncBuffer
	done := make(chan int, 1)
	go func() {
		code, _ := imcli(ctx, &watched, "-as", "bob", "watch")
		done <- code
	}()
	for !strings.Contains(watched.String(), "over the long link") {
		if time.Now().After(deadline0) {
			cancel()
			t.Fatalf("watch printed %q within 30s; want it watching over the long link", watched.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	ok("sent to bob", "-as", "alice", "send", "bob", "are you there?")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(watched.String(), "alice → you: are you there?") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("watch printed %q within 30s; want the message", watched.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("watch exited %d after Ctrl-C", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("watch did not stop within 30s of cancel")
	}
	// watch saved the key: nothing is printed twice.
	ok("nothing new", "-as", "bob", "sync")

	// A group: messages arrive through the fan-out, after the send's reply.
	ok(`created group "lunch"`, "-as", "alice", "newgroup", "lunch", "bob")
	ok("lunch", "-as", "bob", "groups")
	ok("sent to group lunch", "-as", "alice", "gsend", "lunch", "noon?")
	var synced string
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(synced, "alice → group lunch: noon?"); {
		if time.Now().After(deadline) {
			t.Fatalf("bob's syncs printed %q within 30s; want the group message", synced)
		}
		var out syncBuffer
		if code, stderr := imcli(context.Background(), &out, "-as", "bob", "sync"); code != 0 {
			t.Fatalf("sync: exit %d, %s", code, stderr)
		}
		synced += out.String()
	}
	if !strings.Contains(synced, "alice created it with alice, you") {
		t.Errorf("bob's syncs printed %q; want the group's creation before its message", synced)
	}
	ok("alice", "-as", "bob", "members", "lunch")
	fails(1, "permission_denied: only the owner", "-as", "bob", "kick", "lunch", "alice")
	ok("left group lunch", "-as", "bob", "leave", "lunch")
	fails(1, "in no group named", "-as", "bob", "gsend", "lunch", "still there?")

	// An image, with the location its camera wrote, and its download.
	photoPath := filepath.Join(home, "photo.jpg")
	if err := os.WriteFile(photoPath, mediatest.Photo(t, 640, 480, 1), 0o600); err != nil {
		t.Fatal(err)
	}
	ok("removed exif, xmp, comment", "-as", "alice", "sendimage", "bob", photoPath)
	line := ok("alice → you: (image 640×480", "-as", "bob", "sync")
	m := regexp.MustCompile(`imcli download ([0-9a-f]{32})`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no media id in %q", line)
	}
	saved := filepath.Join(home, "saved.jpg")
	ok("to "+saved, "-as", "bob", "download", m[1], "-o", saved)
	if b, err := os.ReadFile(saved); err != nil || !bytes.HasPrefix(b, []byte{0xFF, 0xD8}) || bytes.Contains(b, []byte(mediatest.GPSMarker)) {
		t.Fatalf("downloaded file: %d bytes, %v; location kept: %v", len(b), err, bytes.Contains(b, []byte(mediatest.GPSMarker)))
	}
	notes := filepath.Join(home, "notes.txt")
	if err := os.WriteFile(notes, []byte("not an image"), 0o600); err != nil {
		t.Fatal(err)
	}
	fails(2, "is not a JPEG, PNG, GIF or WebP image", "-as", "alice", "sendimage", "bob", notes)

	// A password change ends every other session and keeps this one.
	ok("logged in as bob", "-state", filepath.Join(home, "tablet.json"), "login", "bob", "-password", "bob-password", "-device", "tablet")
	ok("password changed", "-as", "bob", "passwd", "-password", "bob-password", "-new", "bob-new-password")
	ok("nothing new", "-as", "bob", "sync")
	fails(1, "session revoked; log in again", "-state", filepath.Join(home, "tablet.json"), "sync")
	fails(1, "wrong name or password", "login", "bob", "-password", "bob-password")
	fails(1, "wrong password", "-as", "bob", "passwd", "-password", "not-bobs-password", "-new", "whatever-else")

	// Logout ends the token on the server, not only in the state file.
	statePath := filepath.Join(home, ".imcli-bob.json")
	before, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	ok("logged out", "-as", "bob", "logout")
	fails(1, "not logged in", "-as", "bob", "sync")
	if err := os.WriteFile(statePath, before, 0o600); err != nil {
		t.Fatal(err)
	}
	fails(1, "session revoked; log in again", "-as", "bob", "sync")
	ok("logged in as bob", "login", "bob", "-password", "bob-new-password")
	ok("nothing new", "-as", "bob", "sync")
}

// TestHelpConvention needs no backend: help and bad usage are answered
// before any call.
func TestHelpConvention(t *testing.T) {
	env := func(string) string { return "" }
	imcli := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr, env)
		return code, stdout.String(), stderr.String()
	}
	cmdlinetest.Check(t, "imcli", imcli, nil, []string{"nosuch"}, []string{"register"}, []string{"add", "a", "b"})
	for _, args := range [][]string{{"help"}, {"register", "-h"}, {"-as", "bob", "send", "--help"}} {
		if code, stdout, stderr := imcli(args...); code != 0 || stderr != "" || !strings.HasPrefix(stdout, "usage: imcli ") {
			t.Errorf("imcli %q: exit %d, stdout %q, stderr %q; want the help on stdout", args, code, stdout, stderr)
		}
	}
	if _, _, stderr := imcli("register"); !strings.HasPrefix(stderr, "usage: imcli register NAME") {
		t.Errorf("imcli register: stderr %q; want the command's own usage line", stderr)
	}
}
