package pgstore

import (
	"testing"
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
