package ingest

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/rag/ingest/site"
	"github.com/chatbackend/chatbackend/apiserver/store/storetest"
)

// The stored pages of a source come back in one Load, each with its own
// links, and only that source's; Retain forgets the pages not crawled.
func TestPageCacheRoundTrip(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	pool := storetest.Open(t)
	docs, blog := pageCache{pool: pool, source: "docs"}, pageCache{pool: pool, source: "blog"}
	a := site.Entry{URL: "https://d.example/a/", ETag: `"a1"`, Extracted: site.Extracted{Title: "A", Markdown: "# A", Links: []string{"https://d.example/b"}}}
	b := site.Entry{URL: "https://d.example/b", LastModified: "Mon, 02 Nov 2026 10:00:00 GMT", Extracted: site.Extracted{Title: "B", Markdown: "# B", Links: []string{"https://d.example/a/"}}}
	g.Expect(docs.Put(ctx, "https://d.example/a", a)).To(Succeed())
	g.Expect(docs.Put(ctx, "https://d.example/b", b)).To(Succeed())
	g.Expect(blog.Put(ctx, "https://b.example/", site.Entry{URL: "https://b.example/"})).To(Succeed())

	got, err := docs.Load(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(Equal(map[string]site.Entry{"https://d.example/a": a, "https://d.example/b": b}))

	g.Expect(docs.Retain(ctx, []string{"https://d.example/b"})).To(Succeed())
	got, err = docs.Load(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(HaveLen(1))
	g.Expect(got).To(HaveKey("https://d.example/b"))
}
