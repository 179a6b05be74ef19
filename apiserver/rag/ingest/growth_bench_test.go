package ingest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatbackend/chatbackend/apiserver/rag/chunk"
	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
	"github.com/chatbackend/chatbackend/apiserver/rag/ingest"
	"github.com/chatbackend/chatbackend/apiserver/rag/ragbench"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore/pgstore"
	"github.com/chatbackend/chatbackend/apiserver/store/storetest"
)

// BenchmarkIngestGrowth is how an offline ingest run into PostgreSQL grows
// with the docs folder, 100 to 10,000 generated pages of ten chunks each
// (make bench-growth): the first run into an empty index, a re-run with
// nothing changed (what the scheduled ingest does most days), and a re-run
// after one page changed. It is the CLI's pipeline: walk and parse the
// folder, chunk, hash, embed what changed with the offline embedder and
// upsert it into rag_chunks.
func BenchmarkIngestGrowth(b *testing.B) {
	ctx := context.Background()
	for _, pages := range []int{100, 1_000, 10_000} {
		b.Run(fmt.Sprintf("pages=%d", pages), func(b *testing.B) {
			dir := b.TempDir()
			if err := ragbench.WriteDocs(dir, pages, ragbench.NewText(uint64(pages))); err != nil {
				b.Fatal(err)
			}
			pool := storetest.Open(b)
			opts := ingest.Options{
				Sources:  []ingest.Source{ingest.Docs("", dir, chunk.Options{SiteURL: "https://docs.example.com"})},
				Embedder: embed.NewLexical(), Store: pgstore.New(pool, pgstore.Options{}),
			}
			chunks := pages * ragbench.SectionsPerPage
			// cpu adds up the runs' CPU time in this process (reading,
			// chunking, hashing, embedding; not the database's).
			var cpu time.Duration
			run := func(b *testing.B, want func(ingest.Summary) bool) {
				b.Helper()
				start := ragbench.CPUTime()
				sum, err := ingest.Run(ctx, opts)
				cpu += ragbench.CPUTime() - start
				if err != nil || sum.Chunks != chunks || !want(sum) {
					b.Fatalf("%s: %v", sum, err)
				}
			}
			reportCPU := func(b *testing.B) {
				b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
			}
			b.Run("first", func(b *testing.B) {
				cpu = 0
				for b.Loop() {
					b.StopTimer()
					emptyIndex(ctx, b, pool)
					b.StartTimer()
					run(b, func(s ingest.Summary) bool { return s.Added == chunks })
				}
				reportCPU(b)
			})
			b.Run("unchanged", func(b *testing.B) {
				run(b, func(ingest.Summary) bool { return true }) // indexed, whichever sub-benchmarks ran
				cpu = 0
				for b.Loop() {
					run(b, func(s ingest.Summary) bool { return s.Unchanged == chunks })
				}
				reportCPU(b)
			})
			b.Run("one-page-changed", func(b *testing.B) {
				page := filepath.Join(dir, ragbench.PagePath(0))
				text := ragbench.NewText(1)
				run(b, func(ingest.Summary) bool { return true })
				cpu = 0
				for b.Loop() {
					b.StopTimer()
					if err := os.WriteFile(page, []byte(text.Page()), 0o600); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					// New headings are new anchors: chunks added and removed.
					run(b, func(s ingest.Summary) bool { return s.Embedded() == ragbench.SectionsPerPage })
				}
				reportCPU(b)
			})
		})
	}
}

// emptyIndex deletes every chunk, as before the first run.
func emptyIndex(ctx context.Context, b *testing.B, pool *pgxpool.Pool) {
	b.Helper()
	if _, err := pool.Exec(ctx, `TRUNCATE rag_chunks`); err != nil {
		b.Fatal(err)
	}
}
