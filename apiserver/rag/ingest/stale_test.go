package ingest_test

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/rag/chunk"
	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
	"github.com/chatbackend/chatbackend/apiserver/rag/ingest"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore/pgstore"
	"github.com/chatbackend/chatbackend/apiserver/store/storetest"
)

// byPage is the stored chunks of each page.
func byPage(t *testing.T, s vectorstore.Store) map[string]map[string]vectorstore.Stored {
	t.Helper()
	stored, err := s.Hashes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]vectorstore.Stored{}
	for id, st := range stored {
		if out[st.DocPath] == nil {
			out[st.DocPath] = map[string]vectorstore.Stored{}
		}
		out[st.DocPath][id] = st
	}
	return out
}

func pages(m map[string]map[string]vectorstore.Stored) []string {
	return slices.Sorted(maps.Keys(m))
}

// A page that stays broken (on a real docs tree there may always be one)
// keeps its own chunks, but no longer keeps those of removed pages: the
// index follows the docs (issue #13) without re-embedding anything.
func TestBrokenPageKeepsOnlyItsOwnChunks(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	dir := t.TempDir()
	write(t, dir, "a.md", "# A\n\nalpha")
	write(t, dir, "b.md", "# B\n\nbeta\n\n## More\n\nmore beta")
	write(t, dir, "c.md", "# C\n\ngamma")
	store := pgstore.New(storetest.Open(t), pgstore.Options{})
	opts := ingest.Options{Sources: []ingest.Source{ingest.Docs("", dir, chunk.Options{SiteURL: "https://s.io"})},
		Embedder: embed.NewLexical(), Store: store}
	sum, err := ingest.Run(ctx, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sum.Added).To(Equal(4))
	before := byPage(t, store)
	g.Expect(pages(before)).To(Equal([]string{"a.md", "b.md", "c.md"}))

	// b.md deleted, c.md's front matter broken.
	g.Expect(os.Remove(filepath.Join(dir, "b.md"))).To(Succeed())
	write(t, dir, "c.md", "---\ntitle: [broken\n---\n# C\n\ngamma")
	sum, err = ingest.Run(ctx, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sum.Errors).To(HaveLen(1))
	g.Expect(sum.Errors[0].Path).To(Equal("c.md"))
	g.Expect(sum.Pages).To(Equal(1))
	g.Expect(sum.Unchanged).To(Equal(1))
	g.Expect(sum.Added + sum.Updated).To(BeZero())
	g.Expect(sum.Removed).To(Equal(2), "b.md's two chunks")
	g.Expect(sum.Skipped).To(BeZero())
	after := byPage(t, store)
	g.Expect(pages(after)).To(Equal([]string{"a.md", "c.md"}))
	g.Expect(after["a.md"]).To(Equal(before["a.md"]))
	g.Expect(after["c.md"]).To(Equal(before["c.md"]), "the broken page is still answered from")

	// Fixed as it was: nothing to embed again.
	write(t, dir, "c.md", "# C\n\ngamma")
	sum, err = ingest.Run(ctx, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sum.Errors).To(BeEmpty())
	g.Expect(sum.Unchanged).To(Equal(2))
	g.Expect(sum.Embedded() + sum.Removed).To(BeZero())
}

// A folder that cannot be read keeps the chunks of every page in it (and
// only in it: guidebook.md is not in guide/); a page whose chunks cannot be
// told from those of removed pages (a crawled page that failed without a
// cache) keeps every chunk of its source until a run without one.
func TestFailedFolderAndHiddenPage(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	dir := t.TempDir()
	write(t, dir, "a.md", "# A\n\nalpha")
	write(t, dir, "guide/x.md", "# X\n\nex")
	write(t, dir, "guide/deep/y.md", "# Y\n\nwhy")
	write(t, dir, "guidebook.md", "# Book\n\nbook")
	store := pgstore.New(storetest.Open(t), pgstore.Options{})
	var failed []ingest.PageError
	var hidden []ingest.PageError
	src := ingest.Source{Name: "docs", Load: func(context.Context) (ingest.Loaded, error) {
		l, err := ingest.Load(dir, chunk.Options{SiteURL: "https://s.io"})
		l.Errors = append(l.Errors, failed...)
		l.Hidden = hidden
		return l, err
	}}
	run := func() ingest.Summary {
		t.Helper()
		sum, err := ingest.Run(ctx, ingest.Options{Sources: []ingest.Source{src}, Embedder: embed.NewLexical(), Store: store})
		g.Expect(err).NotTo(HaveOccurred())
		return sum
	}
	g.Expect(run().Added).To(Equal(4))

	// guide/ unreadable (as root, a chmod would not make it so: its pages
	// are gone and its error is given), guidebook.md deleted.
	g.Expect(os.RemoveAll(filepath.Join(dir, "guide"))).To(Succeed())
	g.Expect(os.Remove(filepath.Join(dir, "guidebook.md"))).To(Succeed())
	failed = []ingest.PageError{{Path: "guide", Reason: "permission denied"}}
	sum := run()
	g.Expect(sum.Removed).To(Equal(1))
	g.Expect(pages(byPage(t, store))).To(Equal([]string{"a.md", "guide/deep/y.md", "guide/x.md"}))

	// guide/ gone for good, but a hidden failure: nothing is removed.
	failed = nil
	hidden = []ingest.PageError{{Path: "https://s.io/z", Reason: "503 Service Unavailable"}}
	sum = run()
	g.Expect(sum.Errors).To(Equal(hidden))
	g.Expect(sum.Removed).To(BeZero())
	g.Expect(pages(byPage(t, store))).To(HaveLen(3))

	hidden = nil
	g.Expect(run().Removed).To(Equal(2))
	g.Expect(pages(byPage(t, store))).To(Equal([]string{"a.md"}))
}
