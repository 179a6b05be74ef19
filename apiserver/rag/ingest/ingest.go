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
	// Out receives the summary, and live progress when it is a terminal.
	Out io.Writer
	// BatchSize is how many chunks are embedded and stored at once.
	BatchSize int
}

// Summary is what a run did.
type Summary struct {
	Files     int
	Chunks    int
	Embedded  int
	Unchanged int
	Deleted   int
	Duration  time.Duration
}

func (s Summary) String() string {
	return fmt.Sprintf("%d files, %d chunks: %d embedded, %d unchanged, %d deleted in %s",
		s.Files, s.Chunks, s.Embedded, s.Unchanged, s.Deleted, s.Duration.Round(time.Millisecond))
}

// ContentHash identifies what was embedded and how: a chunk whose hash is
// unchanged keeps its vector.
func ContentHash(model, embedText string) string {
	h := sha256.Sum256([]byte(model + "\x00" + embedText))
	return hex.EncodeToString(h[:])
}

// Run ingests the docs folder. Every file is parsed before anything is
// written, so a malformed page stops the run with the store untouched.
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
	chunks, files, err := Load(o.DocsDir, o.Chunk)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Files: files, Chunks: len(chunks)}

	existing, err := o.Store.Hashes(ctx)
	if err != nil {
		return sum, fmt.Errorf("ingest: read stored chunks: %w", err)
	}
	todo, hashes := changed(chunks, o.Embedder.Model(), existing)
	sum.Unchanged = len(chunks) - len(todo)
	if sum.Embedded, err = embedAndStore(ctx, o, todo, hashes); err != nil {
		return sum, err
	}
	if sum.Deleted, err = deleteStale(ctx, o.Store, existing, hashes); err != nil {
		return sum, err
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
		h := ContentHash(model, c.EmbedText())
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

// Load walks dir and returns the chunks of its Markdown and MDX pages and
// how many pages it read. Like Docusaurus it skips files and folders starting
// with "_" or ".", node_modules, and draft pages. Files are read through an
// os.Root, so a symlink cannot lead the walk outside dir.
func Load(dir string, opt chunk.Options) ([]chunk.Chunk, int, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("ingest: docs folder: %w", err)
	}
	if !info.IsDir() {
		return nil, 0, fmt.Errorf("ingest: docs folder %s is not a directory", dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("ingest: docs folder: %w", err)
	}
	defer root.Close()
	l := loader{fsys: root.FS(), opt: opt, seen: map[string]string{}}
	if err := fs.WalkDir(l.fsys, ".", l.visit); err != nil {
		return nil, 0, fmt.Errorf("ingest: walk %s: %w", dir, err)
	}
	if len(l.errs) > 0 {
		return nil, 0, fmt.Errorf("ingest: %d page(s) could not be read, nothing was changed: %w", len(l.errs), errors.Join(l.errs...))
	}
	if l.files == 0 {
		// Refuse rather than delete every stored chunk because of a wrong path.
		return nil, 0, fmt.Errorf("ingest: no Markdown or MDX pages under %s", dir)
	}
	return l.out, l.files, nil
}

// loader collects the chunks of one walk of the docs folder. A page that
// cannot be parsed is recorded in errs and the walk goes on, so one run
// reports every broken page.
type loader struct {
	fsys  fs.FS
	opt   chunk.Options
	out   []chunk.Chunk
	files int
	errs  []error
	// seen maps a chunk ID to the page that yielded it.
	seen map[string]string
}

// visit is the fs.WalkDirFunc of Load; p is slash-separated and relative to
// the docs folder.
func (l *loader) visit(p string, d fs.DirEntry, err error) error {
	if err != nil {
		return err
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
		return err
	}
	page, err := chunk.Parse(p, src, l.opt)
	if err != nil {
		l.errs = append(l.errs, err)
		return nil
	}
	if page.Draft {
		return nil
	}
	l.files++
	for _, c := range chunk.Split(page, l.opt) {
		if other, dup := l.seen[c.ID]; dup {
			l.errs = append(l.errs, fmt.Errorf("%s: heading id %q appears twice (also in %s)", c.DocPath, c.Anchor, other))
			continue
		}
		l.seen[c.ID] = c.DocPath
		l.out = append(l.out, c)
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
