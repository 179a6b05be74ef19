package pgstore

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

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
// follow-up's previous question included) over a 10k-chunk docs site:
// chunks of 120 words drawn from a 20k-word vocabulary, Zipf-distributed
// as prose is, so common words have long posting lists.
func BenchmarkLexicalSearch10k(b *testing.B) {
	const chunks, words, vocab = 10_000, 120, 20_000
	r := rand.New(rand.NewPCG(42, 42))
	zipf := func() string { return fmt.Sprintf("w%dx", int(float64(vocab)*math.Pow(r.Float64(), 3))) }
	payloads := make([]vectorstore.Payload, chunks)
	for i := range payloads {
		text := make([]string, words)
		for j := range text {
			text[j] = zipf()
		}
		payloads[i] = vectorstore.Payload{Title: zipf() + " " + zipf(), Heading: zipf() + " " + zipf(), Text: strings.Join(text, " ")}
	}
	lx := buildLexIndex(payloads)
	question := strings.Join([]string{zipf(), zipf(), zipf(), zipf(), zipf(), zipf()}, " ")
	previous := strings.Join([]string{zipf(), zipf(), zipf(), zipf()}, " ")
	b.ResetTimer()
	for b.Loop() {
		if hits := lx.search(question, previous, 5); len(hits) == 0 {
			b.Fatal("no hit")
		}
	}
}
