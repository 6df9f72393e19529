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
// line prefixed with its source's name, padded so the logs line up.
type prefixWriter struct {
	mu    sync.Mutex
	w     io.Writer
	width int
	color bool
	hues  map[string]int
}

func newPrefixWriter(w io.Writer) *prefixWriter {
	p := &prefixWriter{w: w, width: 9, hues: map[string]int{}}
	if f, ok := w.(*os.File); ok && os.Getenv("NO_COLOR") == "" {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.color = true
		}
	}
	return p
}

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

func (p *prefixWriter) line(name, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s%s\n", p.prefix(name), text)
}

func (p *prefixWriter) block(text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	io.WriteString(p.w, text)
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
