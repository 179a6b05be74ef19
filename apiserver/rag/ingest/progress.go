package ingest

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// progress redraws one status line when writing to a terminal; otherwise
// (a Job's log) it writes a line each lineEvery chunks embedded.
type progress struct {
	w     io.Writer
	total int
	tty   bool
	// last is the count of the last line written.
	last int
}

// lineEvery is how many chunks are embedded between two progress lines in
// a log.
const lineEvery = 1000

func newProgress(w io.Writer, total int) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, total: total, tty: ok && term.IsTerminal(int(f.Fd()))}
}

func (p *progress) update(n int) {
	switch {
	case p.total == 0:
	case p.tty:
		fmt.Fprintf(p.w, "\ringest: embedded %d/%d chunks (%d%%)", n, p.total, 100*n/p.total)
	case n-p.last >= lineEvery && n < p.total:
		p.last = n
		fmt.Fprintf(p.w, "ingest: embedded %d/%d chunks\n", n, p.total)
	}
}

func (p *progress) done() {
	if p.tty && p.total > 0 {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
