// Package ingest loads a Docusaurus docs folder into the vector store:
// walk, parse, chunk by heading, embed only what changed (by content hash),
// and delete the chunks of removed pages or sections.
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/chatbackend/chatbackend/apiserver/rag/chunk"
	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore"
)

// Options is one ingestion run.
type Options struct {
	DocsDir  string
	Chunk    chunk.Options // SiteURL is required
	Embedder embed.Embedder
	Store    vectorstore.Store
	// Out receives the pages skipped, the summary, and live progress when
	// it is a terminal.
	Out io.Writer
	// BatchSize is how many chunks are embedded and stored at once.
	BatchSize int
}

// Summary is what a run did.
type Summary struct {
	Pages  int
	Chunks int
	// Added chunks are new, Updated ones changed (text, URL or embedding
	// model), Unchanged ones kept their vector, Removed ones belonged to
	// pages or sections that are gone.
	Added     int
	Updated   int
	Unchanged int
	Removed   int
	// Skipped are chunks left out (a heading id used twice in a page);
	// Errors are pages that could not be read or parsed, left out too.
	Skipped  int
	Errors   []PageError
	Duration time.Duration
}

// Embedded is how many chunks were embedded and stored.
func (s Summary) Embedded() int { return s.Added + s.Updated }

func (s Summary) String() string {
	return fmt.Sprintf("%d pages, %d chunks: %d added, %d updated, %d unchanged, %d removed, %d skipped, %d errors in %s",
		s.Pages, s.Chunks, s.Added, s.Updated, s.Unchanged, s.Removed, s.Skipped, len(s.Errors), s.Duration.Round(time.Millisecond))
}

// PageError is a page left out of the index, and why.
type PageError struct {
	Path   string
	Reason string
}

func (e PageError) Error() string { return e.Path + ": " + e.Reason }

// ContentHash identifies what was stored and how: a chunk whose hash is
// unchanged keeps its vector and payload. It covers the chunk's URL, so a
// new --site-url, route base or slug updates the stored citations.
func ContentHash(model, embedText, url string) string {
	h := sha256.Sum256([]byte(model + "\x00" + embedText + "\x00" + url))
	return hex.EncodeToString(h[:])
}

// Run ingests the docs folder. A page that cannot be read or parsed is
// reported on Out (path and reason) and left out; the rest is indexed.
// While some page failed, the chunks of removed pages are kept (a failed
// page's chunks cannot be told from them): the next clean run removes them.
func Run(ctx context.Context, o Options) (Summary, error) {
	start := time.Now()
	if o.Chunk.SiteURL == "" {
		return Summary{}, errors.New("ingest: the site URL is required (--site-url)")
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 64
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	l, err := Load(o.DocsDir, o.Chunk)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Pages: l.Pages, Chunks: len(l.Chunks), Skipped: l.Skipped, Errors: l.Errors}
	for _, e := range l.Warnings {
		fmt.Fprintln(o.Out, "ingest: warning:", e.Error())
	}
	for _, e := range l.Errors {
		fmt.Fprintln(o.Out, "ingest: skipped page", e.Error())
	}

	existing, err := o.Store.Hashes(ctx)
	if err != nil {
		return sum, fmt.Errorf("ingest: read stored chunks: %w", err)
	}
	todo, hashes := changed(l.Chunks, o.Embedder.Model(), existing)
	sum.Unchanged = len(l.Chunks) - len(todo)
	for _, c := range todo {
		if _, ok := existing[c.ID]; ok {
			sum.Updated++
		} else {
			sum.Added++
		}
	}
	if _, err = embedAndStore(ctx, o, todo, hashes); err != nil {
		return sum, err
	}
	if len(l.Errors) == 0 {
		if sum.Removed, err = deleteStale(ctx, o.Store, existing, hashes); err != nil {
			return sum, err
		}
	}
	sum.Duration = time.Since(start)
	fmt.Fprintln(o.Out, "ingest:", sum)
	return sum, nil
}

// changed returns the chunks whose content hash under model differs from the
// stored one, and the hash of every chunk by ID.
func changed(chunks []chunk.Chunk, model string, existing map[string]string) (todo []chunk.Chunk, hashes map[string]string) {
	hashes = make(map[string]string, len(chunks))
	for _, c := range chunks {
		h := ContentHash(model, c.EmbedText(), c.URL)
		hashes[c.ID] = h
		if existing[c.ID] != h {
			todo = append(todo, c)
		}
	}
	return todo, hashes
}

// embedAndStore embeds todo in batches of o.BatchSize and upserts each batch,
// so a failure part-way keeps what was stored (the next run skips it). It
// returns how many chunks were stored.
func embedAndStore(ctx context.Context, o Options, todo []chunk.Chunk, hashes map[string]string) (int, error) {
	prog := newProgress(o.Out, len(todo))
	defer prog.done()
	stored := 0
	for lo := 0; lo < len(todo); lo += o.BatchSize {
		batch := todo[lo:min(lo+o.BatchSize, len(todo))]
		texts := make([]string, len(batch))
		for i, c := range batch {
			texts[i] = c.EmbedText()
		}
		vecs, err := o.Embedder.Embed(ctx, texts)
		if err != nil {
			return stored, fmt.Errorf("ingest: embed chunks of %s: %w", batch[0].DocPath, err)
		}
		points := make([]vectorstore.Point, len(batch))
		for i, c := range batch {
			points[i] = vectorstore.Point{ID: c.ID, Vector: vecs[i], Payload: vectorstore.Payload{
				DocPath: c.DocPath, URL: c.URL, Title: c.Title, Heading: c.Heading, Text: c.Text,
				ContentHash: hashes[c.ID],
			}}
		}
		if err := o.Store.Upsert(ctx, points); err != nil {
			return stored, fmt.Errorf("ingest: store chunks: %w", err)
		}
		stored += len(batch)
		prog.update(stored)
	}
	return stored, nil
}

// deleteStale deletes the stored chunks that no page yields any more and
// returns how many there were.
func deleteStale(ctx context.Context, store vectorstore.Store, existing, hashes map[string]string) (int, error) {
	var stale []string
	for id := range existing {
		if _, ok := hashes[id]; !ok {
			stale = append(stale, id)
		}
	}
	slices.Sort(stale)
	if err := store.Delete(ctx, stale); err != nil {
		return 0, fmt.Errorf("ingest: delete chunks of removed pages: %w", err)
	}
	return len(stale), nil
}

// Loaded is what Load found.
type Loaded struct {
	Chunks []chunk.Chunk
	// Pages is how many pages were read (drafts and failed pages excluded).
	Pages int
	// Skipped counts chunks left out (Warnings say why); Errors are the
	// pages left out.
	Skipped  int
	Warnings []PageError
	Errors   []PageError
}

// Load walks dir and returns the chunks of its Markdown and MDX pages. Like
// Docusaurus it skips files and folders starting with "_" or ".",
// node_modules, and draft pages. Files are read through an os.Root, so a
// symlink cannot lead the walk outside dir. A page that cannot be read or
// parsed is recorded in Errors and the walk goes on.
func Load(dir string, opt chunk.Options) (Loaded, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return Loaded{}, fmt.Errorf("ingest: docs folder: %w", err)
	}
	if !info.IsDir() {
		return Loaded{}, fmt.Errorf("ingest: docs folder %s is not a directory", dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Loaded{}, fmt.Errorf("ingest: docs folder: %w", err)
	}
	defer root.Close()
	l := loader{fsys: root.FS(), opt: opt, seen: map[string]string{}}
	if err := fs.WalkDir(l.fsys, ".", l.visit); err != nil {
		return Loaded{}, fmt.Errorf("ingest: walk %s: %w", dir, err)
	}
	if l.res.Pages == 0 {
		// Refuse rather than delete every stored chunk because of a wrong path.
		return Loaded{}, fmt.Errorf("ingest: no readable Markdown or MDX pages under %s (%d could not be read): %w",
			dir, len(l.res.Errors), errors.Join(pageErrors(l.res.Errors)...))
	}
	return l.res, nil
}

func pageErrors(es []PageError) []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// loader collects the chunks of one walk of the docs folder.
type loader struct {
	fsys fs.FS
	opt  chunk.Options
	res  Loaded
	// seen maps a chunk ID to the page that yielded it.
	seen map[string]string
}

// visit is the fs.WalkDirFunc of Load; p is slash-separated and relative to
// the docs folder.
func (l *loader) visit(p string, d fs.DirEntry, err error) error {
	if err != nil {
		if p == "." {
			return err
		}
		l.res.Errors = append(l.res.Errors, PageError{Path: p, Reason: err.Error()})
		if d != nil && d.IsDir() {
			return fs.SkipDir
		}
		return nil
	}
	name := d.Name()
	if p != "." && (strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".") || name == "node_modules") {
		if d.IsDir() {
			return fs.SkipDir
		}
		return nil
	}
	ext := strings.ToLower(path.Ext(name))
	if d.IsDir() || (ext != ".md" && ext != ".mdx") {
		return nil
	}
	src, err := fs.ReadFile(l.fsys, p)
	if err != nil {
		l.res.Errors = append(l.res.Errors, PageError{Path: p, Reason: err.Error()})
		return nil
	}
	page, err := chunk.Parse(p, src, l.opt)
	if err != nil {
		l.res.Errors = append(l.res.Errors, PageError{Path: p, Reason: strings.TrimPrefix(err.Error(), p+": ")})
		return nil
	}
	if page.Draft {
		return nil
	}
	l.res.Pages++
	for _, c := range chunk.Split(page, l.opt) {
		if other, dup := l.seen[c.ID]; dup {
			// A heading id used twice ({#same} on two headings): the second
			// section cannot be linked to; its text is left out.
			l.res.Skipped++
			l.res.Warnings = append(l.res.Warnings, PageError{Path: c.DocPath,
				Reason: fmt.Sprintf("heading id %q appears twice (also in %s): the later section is left out", c.Anchor, other)})
			continue
		}
		l.seen[c.ID] = c.DocPath
		l.res.Chunks = append(l.res.Chunks, c)
	}
	return nil
}

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
