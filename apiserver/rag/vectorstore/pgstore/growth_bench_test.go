package pgstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
	"github.com/chatbackend/chatbackend/apiserver/rag/ragbench"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore"
)

// denseDims is text-embedding-3-small's vector size, the default model's.
const denseDims = 1536

// BenchmarkRetrievalGrowth is how a question's retrieval grows with the
// index, 1k to 100k chunks (make bench-growth), through the Store the API
// uses on a real PostgreSQL: offline (BM25F, the lexical embedder's
// vectors stored as ingest stores them, loaded as an offline server loads
// them: not at all) and with 1536-d embeddings (the
// dense scan fused with BM25F). Each sub-benchmark also reports what
// loading that index cost a server (load-ms, at start-up and after every
// ingest run that changed it) and the Go heap it holds (index-MB).
func BenchmarkRetrievalGrowth(b *testing.B) {
	ctx := context.Background()
	lexical := embed.NewLexical()
	offline := &growthIndex{name: "offline", pool: newPool(b), opts: Options{Lexical: true}, text: ragbench.NewText(7), vector: func(text string) []float32 {
		v, _ := lexical.Embed(ctx, []string{text})
		return v[0]
	}}
	offline.questions = growthQuestions(offline.vector, 64)
	dense := &growthIndex{name: fmt.Sprintf("dense%d", denseDims), pool: newPool(b), text: ragbench.NewText(7), vector: randomVector(denseDims)}
	dense.questions = growthQuestions(dense.vector, 64)
	for i := range dense.questions {
		dense.questions[i].Lexical = false
	}
	modes := []*growthIndex{offline, dense}
	for _, n := range []int{1_000, 10_000, 100_000} {
		for _, m := range modes {
			// Seeded and loaded in the sub-benchmark, so that -bench picks
			// levels without paying for the others.
			b.Run(fmt.Sprintf("chunks=%d/%s", n, m.name), func(b *testing.B) {
				m.grow(ctx, b, n)
				s, load := loadMeasured(ctx, b, m.pool, m.opts)
				b.ReportAllocs()
				i, cpu := 0, ragbench.CPUTime()
				for b.Loop() {
					q := m.questions[i%len(m.questions)]
					i++
					if hits, err := s.Search(ctx, q); err != nil || len(hits) == 0 {
						b.Fatalf("%d hits: %v", len(hits), err)
					}
				}
				b.ReportMetric(ms(ragbench.CPUTime()-cpu)/float64(b.N), "cpu-ms/op")
				b.ReportMetric(ms(load.wall), "load-ms")
				b.ReportMetric(ms(load.cpu), "load-cpu-ms")
				b.ReportMetric(float64(load.heap)/(1<<20), "index-MB")
			})
		}
	}
}

// growthIndex is one database's rag_chunks, grown level by level so that
// each level only adds its new rows.
type growthIndex struct {
	name string
	pool *pgxpool.Pool
	// opts are a server's for this kind of index.
	opts   Options
	text   *ragbench.Text
	vector func(text string) []float32
	// questions are asked of it, with vectors of its kind.
	questions []vectorstore.Query
	rows      int
	title     string
}

// grow appends chunks until the table holds n, with COPY (the bulk path:
// ingest's batched upserts would take minutes at 100k × 1536), shaped as
// ingest stores them: ten chunks a page, the page's title on each, and
// bumps the generation as ingest does.
func (g *growthIndex) grow(ctx context.Context, b *testing.B, n int) {
	b.Helper()
	start, from := time.Now(), g.rows
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if g.rows == n {
			return nil, nil
		}
		i := g.rows
		g.rows++
		page := i / ragbench.SectionsPerPage
		if i%ragbench.SectionsPerPage == 0 {
			g.title = g.text.Words(3)
		}
		heading, text := g.text.Words(3), g.text.Words(ragbench.WordsPerSection)
		vec := g.vector(g.title + " — " + heading + "\n\n" + text)
		var id [16]byte
		binary.BigEndian.PutUint64(id[8:], uint64(i))
		path := ragbench.PagePath(page)
		return []any{id, path, "https://docs.example.com/" + path + "#s" + fmt.Sprint(i), g.title, heading, text,
			fmt.Sprintf("h%d", i), len(vec), encode(vec)}, nil
	})
	cols := []string{"id", "doc_path", "url", "title", "heading", "text", "content_hash", "dims", "embedding"}
	if _, err := g.pool.CopyFrom(ctx, pgx.Identifier{"rag_chunks"}, cols, src); err != nil {
		b.Fatalf("seed %s chunks: %v", g.name, err)
	}
	if _, err := g.pool.Exec(ctx, `UPDATE rag_index_state SET generation = generation + 1`); err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: %d → %d chunks seeded with COPY in %s", g.name, from, n, time.Since(start).Round(time.Millisecond))
}

// loaded is what loading an index cost: wall and CPU time (this process's:
// decoding and indexing, not the database's), and the Go heap it holds.
type loaded struct {
	wall, cpu time.Duration
	heap      uint64
}

// loadMeasured is a server's start-up: a new Store loading the chunks.
func loadMeasured(ctx context.Context, b *testing.B, pool *pgxpool.Pool, opts Options) (*Store, loaded) {
	b.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := New(pool, opts)
	start, cpu := time.Now(), ragbench.CPUTime()
	if err := s.Load(ctx); err != nil {
		b.Fatal(err)
	}
	l := loaded{wall: time.Since(start), cpu: ragbench.CPUTime() - cpu}
	runtime.GC()
	runtime.ReadMemStats(&after)
	l.heap = after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc)
	return s, l
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// growthQuestions are n questions of six words drawn as the chunks' are,
// every other one a follow-up carrying its previous question, embedded by
// vector, as an offline server asks them (Lexical).
func growthQuestions(vector func(string) []float32, n int) []vectorstore.Query {
	text := ragbench.NewText(99)
	qs := make([]vectorstore.Query, n)
	for i := range qs {
		q := vectorstore.Query{Text: text.Words(6), Limit: config.DefaultTopK, Lexical: true}
		if i%2 == 1 {
			q.Previous = text.Words(6)
		}
		q.Vector = vector(q.Text)
		qs[i] = q
	}
	return qs
}

// randomVector returns a generator of unit vectors in random directions:
// the dense scan's cost depends on the count and size of the vectors, not
// on what they mean.
func randomVector(dims int) func(string) []float32 {
	r := rand.New(rand.NewPCG(1, 2))
	return func(string) []float32 {
		v := make([]float32, dims)
		for j := range v {
			v[j] = float32(r.NormFloat64())
		}
		return embed.Normalize(v)
	}
}
