package ingest_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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
	chunks, files, err := ingest.Load(dir, chunk.Options{SiteURL: "https://s.io"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(files).To(Equal(1))
	g.Expect(chunks).To(HaveLen(1))
	g.Expect(chunks[0].DocPath).To(Equal("a.md"))
}

func TestBadPageChangesNothing(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	dir := t.TempDir()
	write(t, dir, "a.md", "# A\n\nalpha")
	write(t, dir, "b.md", "# B\n\nbeta")
	store, fq := newStore(t)
	opts := ingest.Options{DocsDir: dir, Chunk: chunk.Options{SiteURL: "https://s.io"}, Embedder: embed.NewLexical(), Store: store}
	sum, err := ingest.Run(ctx, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sum.Embedded).To(Equal(2))

	// b.md deleted and a broken page added: the run fails before deleting b's chunks.
	g.Expect(os.Remove(filepath.Join(dir, "b.md"))).To(Succeed())
	write(t, dir, "c.md", "---\ntitle: [broken\n---\ntext")
	_, err = ingest.Run(ctx, opts)
	g.Expect(err).To(MatchError(And(ContainSubstring("c.md: front matter"), ContainSubstring("nothing was changed"))))
	g.Expect(fq.PointCount("docs")).To(Equal(2))

	// A folder without pages (a wrong path) is refused rather than emptying the store.
	_, err = ingest.Run(ctx, ingest.Options{DocsDir: t.TempDir(), Chunk: opts.Chunk, Embedder: opts.Embedder, Store: store})
	g.Expect(err).To(MatchError(ContainSubstring("no Markdown or MDX pages")))
	_, err = ingest.Run(ctx, ingest.Options{DocsDir: filepath.Join(dir, "missing"), Chunk: opts.Chunk, Embedder: opts.Embedder, Store: store})
	g.Expect(err).To(MatchError(ContainSubstring("docs folder")))
	g.Expect(fq.PointCount("docs")).To(Equal(2))
}

func TestSummaryIsPrinted(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	write(t, dir, "a.md", "# A\n\nalpha\n\n## Two\n\nbeta")
	store, _ := newStore(t)
	var out bytes.Buffer
	_, err := ingest.Run(context.Background(), ingest.Options{DocsDir: dir, Chunk: chunk.Options{SiteURL: "https://s.io"},
		Embedder: embed.NewLexical(), Store: store, Out: &out})
	g.Expect(err).NotTo(HaveOccurred())
	// Not a terminal: no progress line, only the summary.
	g.Expect(out.String()).To(MatchRegexp(`^ingest: 1 files, 2 chunks: 2 embedded, 0 unchanged, 0 deleted in \S+\n$`))
}
