package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/rag/chunk"
	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
	"github.com/chatbackend/chatbackend/apiserver/rag/ingest"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore/qdrantstore"
	"github.com/chatbackend/chatbackend/internal/qdranttest"
)

func write(t *testing.T, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newStore(t *testing.T) (*qdrantstore.Store, *qdranttest.Server) {
	fq := qdranttest.Start(t, "")
	s, err := qdrantstore.New(qdrantstore.Options{URL: fq.URL, Collection: "docs"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, fq
}

func TestLoadSkipsWhatDocusaurusSkips(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	write(t, dir, "a.md", "# A\n\nalpha")
	write(t, dir, "_partial.mdx", "partial")
	write(t, dir, "_drafts/x.md", "x")
	write(t, dir, ".hidden/y.md", "y")
	write(t, dir, "node_modules/z.md", "z")
	write(t, dir, "draft.md", "---\ndraft: true\n---\nunpublished")
	write(t, dir, "img.png", "not text")
	l, err := ingest.Load(dir, chunk.Options{SiteURL: "https://s.io"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(l.Pages).To(Equal(1))
	g.Expect(l.Chunks).To(HaveLen(1))
	g.Expect(l.Chunks[0].DocPath).To(Equal("a.md"))
}

// One bad page never aborts the run: it is reported with its reason and
// left out, the other pages are indexed, and the chunks of removed pages
// go even while a page fails.
func TestBadPageIsSkippedAndReported(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	dir := t.TempDir()
	write(t, dir, "a.md", "# A\n\nalpha")
	write(t, dir, "b.md", "# B\n\nbeta")
	store, fq := newStore(t)
	site := chunk.Options{SiteURL: "https://s.io"}
	opts := ingest.Options{Sources: []ingest.Source{ingest.Docs("", dir, site)}, Embedder: embed.NewLexical(), Store: store}
	sum, err := ingest.Run(ctx, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sum.Added).To(Equal(2))

	// b.md deleted, a broken page and a good one added.
	g.Expect(os.Remove(filepath.Join(dir, "b.md"))).To(Succeed())
	write(t, dir, "c.md", "---\ntitle: [broken\n---\ntext")
	write(t, dir, "d.md", "# D\n\ndelta")
	var out bytes.Buffer
	opts.Out = &out
	sum, err = ingest.Run(ctx, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out.String()).To(ContainSubstring("ingest: skipped page c.md: front matter"))
	g.Expect(sum.Errors).To(HaveLen(1))
	g.Expect(sum.Added).To(Equal(1))
	g.Expect(sum.Removed).To(Equal(1))
	g.Expect(fq.PointCount("docs")).To(Equal(2))

	// Fixed: the next run adds it.
	write(t, dir, "c.md", "# C\n\ngamma")
	sum, err = ingest.Run(ctx, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sum.Added).To(Equal(1))
	g.Expect(sum.Removed).To(BeZero())
	g.Expect(fq.PointCount("docs")).To(Equal(3))

	// A folder without pages (a wrong path) is refused rather than emptying the store.
	_, err = ingest.Run(ctx, ingest.Options{Sources: []ingest.Source{ingest.Docs("", t.TempDir(), site)}, Embedder: opts.Embedder, Store: store})
	g.Expect(err).To(MatchError(ContainSubstring("no readable Markdown or MDX pages")))
	_, err = ingest.Run(ctx, ingest.Options{Sources: []ingest.Source{ingest.Docs("", filepath.Join(dir, "missing"), site)}, Embedder: opts.Embedder, Store: store})
	g.Expect(err).To(MatchError(ContainSubstring("docs folder")))
	g.Expect(fq.PointCount("docs")).To(Equal(3))
}

// A heading id used twice leaves out the later section, not the page; a
// new site URL updates every stored chunk (its citation changed).
func TestDuplicateAnchorAndSiteURLChange(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	dir := t.TempDir()
	write(t, dir, "a.md", "Text before the title.\n\n# A\n\nalpha\n\n# Another H1\n\nmore\n\n## Same {#same}\n\none\n\n## Again {#same}\n\ntwo")
	store, _ := newStore(t)
	var out bytes.Buffer
	docs := func(site string) []ingest.Source {
		return []ingest.Source{ingest.Docs("", dir, chunk.Options{SiteURL: site})}
	}
	opts := ingest.Options{Sources: docs("https://s.io"), Embedder: embed.NewLexical(), Store: store, Out: &out}
	sum, err := ingest.Run(ctx, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sum.Pages).To(Equal(1))
	g.Expect(sum.Skipped).To(Equal(1))
	g.Expect(sum.Added).To(Equal(3))
	g.Expect(out.String()).To(ContainSubstring(`ingest: warning: a.md: heading id "same" appears twice`))

	opts.Sources = docs("https://docs.s.io")
	sum, err = ingest.Run(ctx, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sum.Updated).To(Equal(3))
	g.Expect(sum.Unchanged).To(BeZero())
}

func TestSummaryIsPrinted(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	write(t, dir, "a.md", "# A\n\nalpha\n\n## Two\n\nbeta")
	store, _ := newStore(t)
	var out bytes.Buffer
	_, err := ingest.Run(context.Background(), ingest.Options{Sources: []ingest.Source{ingest.Docs("", dir, chunk.Options{SiteURL: "https://s.io"})},
		Embedder: embed.NewLexical(), Store: store, Out: &out})
	g.Expect(err).NotTo(HaveOccurred())
	// Not a terminal: no progress line, only the summary.
	g.Expect(out.String()).To(MatchRegexp(`^ingest: 1 pages, 2 chunks: 2 added, 0 updated, 0 unchanged, 0 removed, 0 skipped, 0 errors in \S+\n$`))
}

// Named sources own their chunks: a run replaces and removes only its own
// sources' chunks (two sources may have a page at the same path), and an
// authoritative run removes the chunks of sources it does not list, the
// unnamed one of earlier releases included. The unnamed source keeps the
// chunk ids of earlier releases, so an existing index is not re-embedded.
func TestSourcesOwnTheirChunks(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	a, b := t.TempDir(), t.TempDir()
	write(t, a, "intro.md", "# A\n\nalpha")
	write(t, a, "more.md", "# More\n\nmore alpha")
	write(t, b, "intro.md", "# B\n\nbeta")
	store, fq := newStore(t)
	site := chunk.Options{SiteURL: "https://s.io"}
	run := func(authoritative bool, sources ...ingest.Source) ingest.Summary {
		t.Helper()
		sum, err := ingest.Run(ctx, ingest.Options{Sources: sources, Authoritative: authoritative, Embedder: embed.NewLexical(), Store: store})
		g.Expect(err).NotTo(HaveOccurred())
		return sum
	}

	legacy := run(false, ingest.Docs("", a, site))
	g.Expect(legacy.Added).To(Equal(2))
	hashes, err := store.Hashes(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hashes).To(HaveKey(chunk.PointID("intro.md", "", 0)), "the unnamed source keeps the ids of earlier releases")

	sum := run(false, ingest.Docs("a", a, site), ingest.Docs("b", b, site))
	g.Expect(sum.Added).To(Equal(3))
	g.Expect(sum.Removed).To(BeZero(), "a named run leaves the unnamed source alone")
	g.Expect(fq.PointCount("docs")).To(Equal(5))

	// b alone, after one of a's pages went: a's chunks are not b's to remove.
	g.Expect(os.Remove(filepath.Join(a, "more.md"))).To(Succeed())
	sum = run(false, ingest.Docs("b", b, site))
	g.Expect(sum.Unchanged).To(Equal(1))
	g.Expect(sum.Removed).To(BeZero())
	g.Expect(fq.PointCount("docs")).To(Equal(5))

	// Authoritative, listing a only: b's and the unnamed chunks go, and a's
	// removed page.
	sum = run(true, ingest.Docs("a", a, site))
	g.Expect(sum.Unchanged).To(Equal(1))
	g.Expect(sum.Removed).To(Equal(4))
	g.Expect(fq.PointCount("docs")).To(Equal(1))

	// A source that fails keeps its chunks, even in an authoritative run.
	sum, err = ingest.Run(ctx, ingest.Options{Sources: []ingest.Source{ingest.Docs("a", filepath.Join(a, "missing"), site)},
		Authoritative: true, Embedder: embed.NewLexical(), Store: store})
	g.Expect(err).To(MatchError(ContainSubstring(`source "a": ingest: docs folder`)))
	g.Expect(sum.Errors).To(HaveLen(1))
	// Its path names the source, its reason does not again.
	g.Expect(sum.Errors[0].Path).To(Equal(`source "a"`))
	g.Expect(sum.Errors[0].Reason).To(HavePrefix("ingest: docs folder"))
	g.Expect(fq.PointCount("docs")).To(Equal(1))
}

// In a log (not a terminal), progress is a line every 1000 chunks.
func TestProgressLinesInALog(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	var page strings.Builder
	page.WriteString("# Big\n\n")
	for i := range 2100 {
		fmt.Fprintf(&page, "## Section %d\n\ntext %d\n\n", i, i)
	}
	write(t, dir, "big.md", page.String())
	store, _ := newStore(t)
	var out bytes.Buffer
	_, err := ingest.Run(context.Background(), ingest.Options{Sources: []ingest.Source{ingest.Docs("", dir, chunk.Options{SiteURL: "https://s.io"})},
		Embedder: embed.NewLexical(), Store: store, Out: &out, BatchSize: 100})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(strings.Split(out.String(), "\n")[:2]).To(Equal([]string{"ingest: embedded 1000/2100 chunks", "ingest: embedded 2000/2100 chunks"}))
}
