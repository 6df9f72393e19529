package main

import (
	"bufio"
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

// stream copies r to the writer line by line under name's prefix.
func (p *prefixWriter) stream(name string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.line(name, sc.Text())
	}
}
