// Package ragbench generates the synthetic docs that the retrieval and
// ingest growth benchmarks index (make bench-growth): prose whose word
// frequencies fall off as a power law, as a docs site's do, so that common
// words have posting lists covering most chunks and rare ones a handful;
// and Docusaurus trees of any number of pages. Everything is drawn from a
// seed, so two runs index the same text.
package ragbench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Vocabulary is how many distinct word stems the text draws from.
const Vocabulary = 20_000

// Text draws words from the vocabulary.
type Text struct {
	r *rand.Rand
}

// NewText returns a generator; the same seed gives the same text.
func NewText(seed uint64) *Text {
	// Reproducible fixtures, not secrets: a seeded PRNG is the point.
	return &Text{r: rand.New(rand.NewPCG(seed, seed))} //nolint:gosec // deterministic benchmark text, nothing secret
}

var (
	syllables = func() []string {
		var out []string
		for _, c := range "bdfgklmnprstvz" {
			for _, v := range "aeiou" {
				out = append(out, string(c)+string(v))
			}
		}
		return out
	}()
	// Endings the stemmer folds into their stem ("rotate", "rotating",
	// "rotation"), so the embedder's and the index's stemming does the
	// work it does on English.
	endings = []string{"", "", "", "s", "ing", "ed", "ation", "er"}
)

// Word returns one word: stem number u^3 × Vocabulary (u uniform), which
// makes the most common stem about 4% of the words and the rarest ones
// appear once in hundreds of thousands.
func (t *Text) Word() string {
	stem := int(Vocabulary * math.Pow(t.r.Float64(), 3))
	var b strings.Builder
	for n := stem + len(syllables); n > 0; n /= len(syllables) {
		b.WriteString(syllables[n%len(syllables)])
	}
	b.WriteString(endings[t.r.IntN(len(endings))])
	return b.String()
}

// Words returns n words separated by spaces.
func (t *Text) Words(n int) string {
	ws := make([]string, n)
	for i := range ws {
		ws[i] = t.Word()
	}
	return strings.Join(ws, " ")
}

// Page sizes of WriteDocs: an introduction and SectionsPerPage-1 H2
// sections of WordsPerSection words, each section one chunk (about 700
// characters, under the chunker's 1,500), so a tree of n pages is
// n × SectionsPerPage chunks.
const (
	SectionsPerPage = 10
	WordsPerSection = 100
)

// WriteDocs writes pages Markdown pages (see Page) under dir, a hundred
// per folder, as a Docusaurus docs folder has them.
func WriteDocs(dir string, pages int, t *Text) error {
	for p := range pages {
		path := filepath.Join(dir, PagePath(p))
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return fmt.Errorf("write docs: %w", err)
		}
		if err := os.WriteFile(path, []byte(t.Page()), 0o600); err != nil {
			return fmt.Errorf("write docs: %w", err)
		}
	}
	return nil
}

// PagePath is where WriteDocs puts page p, relative to the folder.
func PagePath(p int) string {
	return fmt.Sprintf("d%03d/p%05d.md", p/100, p)
}

// Page returns one page: front matter with a title, an introduction, then
// H2 sections, SectionsPerPage chunks in all.
func (t *Text) Page() string {
	var page strings.Builder
	fmt.Fprintf(&page, "---\ntitle: %s\n---\n\n%s\n", t.Words(3), t.Words(WordsPerSection))
	for s := 1; s < SectionsPerPage; s++ {
		// The number keeps the heading anchors of a page distinct.
		fmt.Fprintf(&page, "\n## %d %s\n\n%s\n", s, t.Words(3), t.Words(WordsPerSection))
	}
	return page.String()
}

// CPUTime is the CPU time (user and system) this process has used so far.
// On a machine shared with other work a benchmark's wall time says how
// busy the machine was as much as what the code costs; the process's own
// CPU time is far less sensitive to it (the database's work is not in it).
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
