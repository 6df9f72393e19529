package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// TestStreamKeepsDrainingAfterALongLine writes, through a pipe that blocks
// the writer until the stream reads (as a child blocks on a full pipe), a
// line far over maxLine (and over the 1 MiB that once stopped the stream
// for good) and then more lines: the stream must read all of it, cut the
// long line, and print what follows.
func TestStreamKeepsDrainingAfterALongLine(t *testing.T) {
	var out bytes.Buffer
	p := newPrefixWriter(&out)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.stream("svc", pr)
	}()
	wrote := make(chan error, 1)
	go func() {
		long := strings.Repeat("x", 2<<20)
		_, err := io.WriteString(pw, "first\n"+long+"\nafter\r\nno newline at the end")
		pw.Close()
		wrote <- err
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the writer is still blocked: the stream stopped reading")
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("stream did not return after the pipe closed")
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4:\n%.300s", len(lines), out.String())
	}
	if lines[0] != "svc       | first" || lines[2] != "svc       | after" || lines[3] != "svc       | no newline at the end" {
		t.Errorf("lines = %q, %q, %q", lines[0], lines[2], lines[3])
	}
	if want := fmt.Sprintf("[... %d more bytes of this line dropped]", 2<<20-maxLine); !strings.HasSuffix(lines[1], want) || len(lines[1]) > maxLine+100 {
		t.Errorf("long line: %d bytes ending %q; want it cut at maxLine, ending %q", len(lines[1]), lines[1][max(0, len(lines[1])-60):], want)
	}
}

// TestStatusLine checks the terminal status line: cut to fit one row, and
// wiped before the next ordinary line.
func TestStatusLine(t *testing.T) {
	var out bytes.Buffer
	p := newPrefixWriter(&out)
	p.showStatus("svrkit up", "building, 5s: "+strings.Repeat("p", 200))
	p.line("users", "ready")
	p.clearStatus() // nothing shown: writes nothing
	status, rest, ok := strings.Cut(out.String(), "\r\x1b[K"+"users")
	if !ok {
		t.Fatalf("the status line was not wiped before the next line: %q", out.String())
	}
	if !strings.HasPrefix(status, "\r\x1b[Ksvrkit up | building, 5s: ppp") || !strings.HasSuffix(status, "...") || len(status)-len("\r\x1b[K") != statusWidth {
		t.Errorf("status line %q: want it cut to %d columns", status, statusWidth)
	}
	if rest != "     | ready\n" {
		t.Errorf("after the status: %q", rest)
	}
}
