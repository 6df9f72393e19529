package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// prefixWriter writes whole lines from several sources to one writer, each
// line prefixed with its source's name, padded so the logs line up, in a
// colour per source on a terminal (unless NO_COLOR is set). Its methods are
// safe to call from any goroutine.
type prefixWriter struct {
	terminal bool // w is a terminal: a status line can be rewritten in place

	mu     sync.Mutex
	w      io.Writer
	width  int
	color  bool
	hues   map[string]int
	status bool // a status line is shown, with no newline after it
}

func newPrefixWriter(w io.Writer) *prefixWriter {
	term := isTerminal(w)
	return &prefixWriter{w: w, terminal: term, width: 9, hues: map[string]int{}, color: term && os.Getenv("NO_COLOR") == ""}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// prefix is name's prefix; p.mu must be held.
func (p *prefixWriter) prefix(name string) string {
	if len(name) > p.width {
		p.width = len(name)
	}
	pad := name + strings.Repeat(" ", p.width-len(name)) + " | "
	if !p.color {
		return pad
	}
	hue, ok := p.hues[name]
	if !ok {
		hue = 31 + len(p.hues)%6
		p.hues[name] = hue
	}
	return fmt.Sprintf("\x1b[%dm%s\x1b[0m", hue, pad)
}

// line writes one line of text under name's prefix.
func (p *prefixWriter) line(name, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearStatusLocked()
	fmt.Fprintf(p.w, "%s%s\n", p.prefix(name), text)
}

// block writes text as it is, between two lines of the others.
func (p *prefixWriter) block(text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearStatusLocked()
	io.WriteString(p.w, text)
}

// showStatus shows text under name's prefix on a line that the next
// showStatus, line or block replaces: progress on a terminal. Call it only
// when p.terminal.
// The line is cut to statusWidth columns: a longer one would wrap, and
// only its last row would be replaced.
func (p *prefixWriter) showStatus(name, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if room := statusWidth - max(p.width, len(name)) - len(" | "); len(text) > room {
		text = text[:max(room-3, 0)] + "..."
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s%s", p.prefix(name), text)
	p.status = true
}

const statusWidth = 79

// clearStatus removes the status line, if one is shown.
func (p *prefixWriter) clearStatus() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearStatusLocked()
}

func (p *prefixWriter) clearStatusLocked() {
	if p.status {
		io.WriteString(p.w, "\r\x1b[K")
		p.status = false
	}
}

// maxLine is the longest line stream prints whole. A longer one is cut
// there, marked, and the rest of it read and dropped: one runaway line
// costs bounded memory and never stops the stream, since a service whose
// output is not read blocks on the full pipe and stops serving.
const maxLine = 64 << 10

// stream copies r to the writer line by line under name's prefix until r
// ends or fails.
func (p *prefixWriter) stream(name string, r io.Reader) {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			text, cut := string(line), 0
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				cut += len(bytes.TrimSuffix(line, []byte("\n")))
			}
			p.line(name, fmt.Sprintf("%s [... %d more bytes of this line dropped]", text, cut))
		} else if len(line) > 0 {
			p.line(name, strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r"))
		}
		if err != nil {
			return
		}
	}
}
