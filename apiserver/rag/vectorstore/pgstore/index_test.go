package pgstore

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore"
)

func randomIndex(n, dims int, seed uint64) *index {
	r := rand.New(rand.NewPCG(seed, seed+1))
	ix := &index{dims: dims, vecs: make([]uint16, 0, n*dims)}
	v := make([]float32, dims)
	for i := range n {
		for j := range v {
			v[j] = float32(r.NormFloat64())
		}
		ix.add(string(rune('a'+i%26)), embed.Normalize(v), vectorstore.Payload{})
	}
	return ix
}

// The parallel heap scan returns exactly what sorting every score would.
func TestSearchEqualsFullSort(t *testing.T) {
	for _, n := range []int{1, 5, 100, 10000} {
		ix := randomIndex(n, 64, uint64(n))
		q := row(ix, 0) // row 0 itself must come first
		got := ix.search(q, 10)
		all := make([]scored, n)
		for i := range n {
			all[i] = scored{i, dotHalf(q, ix.vecs[i*64:(i+1)*64])}
		}
		slices.SortFunc(all, func(a, b scored) int {
			if a.score != b.score {
				if a.score > b.score {
					return -1
				}
				return 1
			}
			return a.row - b.row
		})
		want := all[:min(10, n)]
		if !slices.Equal(got, want) {
			t.Fatalf("n=%d: got %v want %v", n, got, want)
		}
		if got[0].row != 0 {
			t.Fatalf("n=%d: the query's own row is not first", n)
		}
	}
}

func row(ix *index, i int) []float32 {
	q := make([]float32, ix.dims)
	for j := range q {
		q[j] = fromHalf(ix.vecs[i*ix.dims+j])
	}
	return q
}
