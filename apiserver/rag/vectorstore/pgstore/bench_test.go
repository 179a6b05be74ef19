package pgstore

import (
	"testing"

	"github.com/chatbackend/chatbackend/apiserver/rag/ragbench"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore"
)

// BenchmarkSearch100kx1536 is the target: top-10 over 100k chunks of
// 1536 dimensions (text-embedding-3-small) in ≤ 50 ms, exact.
func BenchmarkSearch100kx1536(b *testing.B) {
	benchSearch(b, 100_000, 1536)
}

// BenchmarkSearch10kx1024 is a typical docs site with the offline embedder.
func BenchmarkSearch10kx1024(b *testing.B) {
	benchSearch(b, 10_000, 1024)
}

func benchSearch(b *testing.B, n, dims int) {
	ix := randomIndex(n, dims, 42)
	q := row(ix, 7)
	b.SetBytes(int64(n * dims * 2))
	b.ResetTimer()
	for b.Loop() {
		if top := ix.search(q, 10); len(top) != 10 || top[0].row != 7 {
			b.Fatalf("wrong result %v", top)
		}
	}
}

// BenchmarkLexicalSearch10k is the offline path's retrieval (BM25F, a
// follow-up's previous question included) over a 10k-chunk docs site, in
// memory (BenchmarkRetrievalGrowth measures it through the Store, on
// PostgreSQL, from 1k to 100k chunks): chunks of 100 words drawn as prose
// is (ragbench), so common words have long posting lists.
func BenchmarkLexicalSearch10k(b *testing.B) {
	text := ragbench.NewText(42)
	payloads := make([]vectorstore.Payload, 10_000)
	for i := range payloads {
		payloads[i] = vectorstore.Payload{Title: text.Words(3), Heading: text.Words(3), Text: text.Words(ragbench.WordsPerSection)}
	}
	lx := buildLexIndex(payloads)
	question, previous := text.Words(6), text.Words(4)
	b.ResetTimer()
	for b.Loop() {
		if hits := lx.search(lx.query(question, previous), 5); len(hits) == 0 {
			b.Fatal("no hit")
		}
	}
}
