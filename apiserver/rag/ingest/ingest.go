// Package ingest loads docs into the vector store: read each source's
// pages (a Docusaurus folder, a git repository, a crawled site), chunk them
// by heading, embed only what changed (by content hash), and delete the
// chunks of removed pages, sections and sources.
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/chatbackend/chatbackend/apiserver/rag/chunk"
	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore"
)

// Source is one named set of pages.
type Source struct {
	// Name tells the source's chunks from other sources': a run replaces
	// and removes only the chunks of the sources it loads. "" is the
	// unnamed source of `ingest --docs`, which every chunk indexed before
	// sources had names belongs to: its chunk ids and hashes are those of
	// earlier releases, so an existing index upgrades without re-embedding.
	Name string
	// Load reads the source's pages. An error fails the source (its
	// chunks are kept) but not the other sources.
	Load func(ctx context.Context) (Loaded, error)
}

// Options is one ingestion run.
type Options struct {
	Sources []Source
	// Authoritative says that Sources are all the index should hold: the
	// chunks of any other source (the unnamed one included) are removed.
	// A run from INGEST_SOURCES is; a single --docs, --git or --site run
	// is not, and leaves the other sources alone.
	Authoritative bool
	Embedder      embed.Embedder
	Store         vectorstore.Store
	// Out receives the pages skipped, progress and the summary.
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
	// pages, sections or sources that are gone.
	Added     int
	Updated   int
	Unchanged int
	Removed   int
	// Skipped are chunks left out (a heading id used twice in a page);
	// Errors are pages that could not be fetched, read or parsed, left out
	// too, and sources that failed as a whole.
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

// storedHash is the hash stored with a chunk of the named source: the
// stores list only ids, hashes and pages (vectorstore.Store.Hashes), so the
// source's name rides in front of the hash, which tells whose chunk it is
// without a schema change. The unnamed source's is the bare hash.
func storedHash(sourceName, contentHash string) string {
	if sourceName == "" {
		return contentHash
	}
	return sourceName + "/" + contentHash
}

// sourceOf is the name of the source a stored hash belongs to.
func sourceOf(stored string) string {
	if i := strings.LastIndexByte(stored, '/'); i >= 0 {
		return stored[:i]
	}
	return ""
}

// pointID is the id of a chunk of the named source: the unnamed source
// keeps chunk.PointID's (that of earlier releases); a named one's covers its
// name, so two sources with a page at the same path never share a chunk.
func pointID(sourceName string, c chunk.Chunk) string {
	if sourceName == "" {
		return c.ID
	}
	return chunk.PointID(sourceName+"\x00"+c.DocPath, c.Anchor, c.Index)
}

// Run ingests the sources one after the other. A page that cannot be read
// is reported on Out (path and reason) and left out, keeping its stored
// chunks; the rest is indexed, and removed pages' chunks are deleted. A
// source that fails as a whole (a clone that fails, a site that does not
// answer) keeps its chunks, is counted in Summary.Errors and makes Run
// return an error once the other sources are done.
func Run(ctx context.Context, o Options) (Summary, error) {
	start := time.Now()
	if o.BatchSize <= 0 {
		o.BatchSize = 64
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	existing, err := o.Store.Hashes(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("ingest: read stored chunks: %w", err)
	}
	var (
		sum    Summary
		failed []error
		listed = map[string]bool{}
	)
	for _, src := range o.Sources {
		listed[src.Name] = true
		if err := runSource(ctx, o, src, existing, &sum); err != nil {
			// The entry's path names the source; the error returned does.
			sum.Errors = append(sum.Errors, PageError{Path: "source " + label(src.Name), Reason: err.Error()})
			err = fmt.Errorf("source %s: %w", label(src.Name), err)
			if ctx.Err() != nil {
				return sum, err
			}
			fmt.Fprintln(o.Out, "ingest:", err)
			failed = append(failed, err)
		}
	}
	if o.Authoritative {
		n, err := deleteStale(ctx, o.Store, existing, func(_ string, st vectorstore.Stored) bool { return !listed[sourceOf(st.ContentHash)] })
		sum.Removed += n
		if err != nil {
			return sum, err
		}
	}
	sum.Duration = time.Since(start)
	fmt.Fprintln(o.Out, "ingest:", sum)
	return sum, errors.Join(failed...)
}

func label(name string) string {
	if name == "" {
		return "(unnamed)"
	}
	return fmt.Sprintf("%q", name)
}

// runSource loads, embeds and stores one source and removes its stale
// chunks; only an error of the source itself, or the store's, is returned
// (Run names the source in it), and either stops the source.
func runSource(ctx context.Context, o Options, src Source, existing map[string]vectorstore.Stored, sum *Summary) error {
	l, err := src.Load(ctx)
	if err != nil {
		return err
	}
	prefix := ""
	if src.Name != "" {
		prefix = "source " + label(src.Name) + ": "
	}
	sum.Pages += l.Pages
	sum.Chunks += len(l.Chunks)
	sum.Skipped += l.Skipped
	left := slices.Concat(l.Errors, l.Hidden, l.Missed)
	sum.Errors = append(sum.Errors, left...)
	for _, e := range l.Warnings {
		fmt.Fprintln(o.Out, "ingest: warning:", prefix+e.Error())
	}
	for _, e := range left {
		fmt.Fprintln(o.Out, "ingest: skipped page", prefix+e.Error())
	}
	for i := range l.Chunks {
		l.Chunks[i].ID = pointID(src.Name, l.Chunks[i])
	}
	todo, hashes := changed(l.Chunks, src.Name, o.Embedder.Model(), existing)
	sum.Unchanged += len(l.Chunks) - len(todo)
	for _, c := range todo {
		if _, ok := existing[c.ID]; ok {
			sum.Updated++
		} else {
			sum.Added++
		}
	}
	if _, err := embedAndStore(ctx, o, todo, hashes); err != nil {
		return err
	}
	// A page left out that the docs may still have keeps its chunks
	// (removing them would drop it from answers, and re-embed it once
	// fixed); the chunks of every other page not loaded go, so that one
	// page that stays broken does not keep removed and renamed pages cited
	// forever. Only a page whose chunks cannot be told apart (Hidden) keeps
	// them all, until a run without one.
	if len(l.Hidden) > 0 {
		return nil
	}
	n, err := deleteStale(ctx, o.Store, existing, func(id string, st vectorstore.Stored) bool {
		_, kept := hashes[id]
		return !kept && sourceOf(st.ContentHash) == src.Name && !leftOut(st.DocPath, l.Errors)
	})
	sum.Removed += n
	if err != nil {
		return err
	}
	return nil
}

// leftOut says whether a stored chunk's page is one of the pages left out,
// or in a folder left out.
func leftOut(docPath string, errs []PageError) bool {
	for _, e := range errs {
		if docPath == e.Path || strings.HasPrefix(docPath, e.Path+"/") {
			return true
		}
	}
	return false
}

// changed returns the chunks whose stored hash under model differs from
// the stored one, and the stored hash of every chunk by ID.
func changed(chunks []chunk.Chunk, sourceName, model string, existing map[string]vectorstore.Stored) (todo []chunk.Chunk, hashes map[string]string) {
	hashes = make(map[string]string, len(chunks))
	for _, c := range chunks {
		h := storedHash(sourceName, ContentHash(model, c.EmbedText(), c.URL))
		hashes[c.ID] = h
		if existing[c.ID].ContentHash != h {
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

// deleteStale deletes the stored chunks for which stale says so and
// returns how many there were.
func deleteStale(ctx context.Context, store vectorstore.Store, existing map[string]vectorstore.Stored, stale func(id string, st vectorstore.Stored) bool) (int, error) {
	var ids []string
	for id, st := range existing {
		if stale(id, st) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if err := store.Delete(ctx, ids); err != nil {
		return 0, fmt.Errorf("ingest: delete chunks of removed pages: %w", err)
	}
	for _, id := range ids {
		delete(existing, id)
	}
	return len(ids), nil
}
