package ingest

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// progress redraws one status line when writing to a terminal and stays
// silent otherwise (logs get the summary only).
type progress struct {
	w     io.Writer
	total int
	tty   bool
}

func newProgress(w io.Writer, total int) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, total: total, tty: ok && term.IsTerminal(int(f.Fd()))}
}

func (p *progress) update(n int) {
	if p.tty && p.total > 0 {
		fmt.Fprintf(p.w, "\ringest: embedded %d/%d chunks (%d%%)", n, p.total, 100*n/p.total)
	}
}

func (p *progress) done() {
	if p.tty && p.total > 0 {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
