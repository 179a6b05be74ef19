package pgstore

import (
	"runtime"
	"slices"
	"sync"

	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore"
)

// index is the in-memory copy of rag_chunks: one contiguous slab of half
// precision floats (row i at vecs[i*dims:]) scanned in full with SIMD. The
// scan is bound by memory bandwidth, which on a small machine still answers
// top-10 over 100k × 1536 dims in tens of milliseconds, and needs no
// approximate index to tune or keep in sync.
type index struct {
	dims     int
	vecs     []uint16
	ids      []string
	payloads []vectorstore.Payload
	// lex ranks the same rows by their words.
	lex *lexIndex
}

func (ix *index) len() int { return len(ix.ids) }

func (ix *index) add(id string, vec []float32, p vectorstore.Payload) {
	ix.ids = append(ix.ids, id)
	for _, x := range vec {
		ix.vecs = append(ix.vecs, toHalf(x))
	}
	ix.payloads = append(ix.payloads, p)
}

type scored struct {
	row   int
	score float32
}

// topK keeps the k best scores seen in a min-heap (worst at the root), so a
// scan costs O(n log k) and k entries of memory.
type topK struct {
	k int
	h []scored
}

func (t *topK) push(s scored) {
	if len(t.h) < t.k {
		t.h = append(t.h, s)
		t.up(len(t.h) - 1)
		return
	}
	if s.score <= t.h[0].score {
		return
	}
	t.h[0] = s
	t.down(0)
}

func (t *topK) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if t.h[p].score <= t.h[i].score {
			return
		}
		t.h[p], t.h[i] = t.h[i], t.h[p]
		i = p
	}
}

func (t *topK) down(i int) {
	n := len(t.h)
	for {
		l, m := 2*i+1, i
		if l < n && t.h[l].score < t.h[m].score {
			m = l
		}
		if r := l + 1; r < n && t.h[r].score < t.h[m].score {
			m = r
		}
		if m == i {
			return
		}
		t.h[m], t.h[i] = t.h[i], t.h[m]
		i = m
	}
}

// minParallelRows is below the size where goroutines pay for themselves.
const minParallelRows = 4096

// search returns the k rows with the highest dot product with q, best first.
func (ix *index) search(q []float32, k int) []scored {
	n := ix.len()
	if k <= 0 || n == 0 {
		return nil
	}
	workers := runtime.GOMAXPROCS(0)
	if n < minParallelRows {
		workers = 1
	}
	tops := make([]topK, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*n/workers, (w+1)*n/workers
		tops[w] = topK{k: k, h: make([]scored, 0, k)}
		wg.Add(1)
		go func(t *topK) {
			defer wg.Done()
			d := ix.dims
			for i := lo; i < hi; i++ {
				t.push(scored{row: i, score: dotHalf(q, ix.vecs[i*d:(i+1)*d])})
			}
		}(&tops[w])
	}
	wg.Wait()
	all := tops[0]
	for _, t := range tops[1:] {
		for _, s := range t.h {
			all.push(s)
		}
	}
	out := all.h
	slices.SortFunc(out, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return a.row - b.row
	})
	return out
}
