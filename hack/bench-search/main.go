// Command bench-search measures the PostgreSQL-only retrieval end to end:
// it fills rag_chunks with N random chunks (DATABASE_URL, migrated), loads
// them into memory as chat-apiserver does, and times top-10 searches.
//
//	DATABASE_URL=postgres://... go run ./hack/bench-search -n 100000 -dims 1536
//
// The database's chunks are replaced: use a throwaway database.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore/pgstore"
)

func main() {
	n := flag.Int("n", 100_000, "chunks")
	dims := flag.Int("dims", 1536, "dimensions")
	queries := flag.Int("queries", 200, "searches to time")
	fill := flag.Bool("fill", true, "replace the chunks with random ones first")
	flag.Parse()
	if err := run(*n, *dims, *queries, *fill); err != nil {
		fmt.Fprintln(os.Stderr, "bench-search:", err)
		os.Exit(1)
	}
}

func run(n, dims, queries int, fill bool) error {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer pool.Close()
	s := pgstore.New(pool, pgstore.Options{RecheckEvery: time.Hour})
	r := rand.New(rand.NewPCG(1, 2))
	vec := func() []float32 {
		v := make([]float32, dims)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return embed.Normalize(v)
	}
	if fill {
		if _, err := pool.Exec(ctx, `TRUNCATE rag_chunks`); err != nil {
			return err
		}
		start := time.Now()
		const batch = 1000
		for lo := 0; lo < n; lo += batch {
			ps := make([]vectorstore.Point, 0, batch)
			for i := lo; i < min(lo+batch, n); i++ {
				ps = append(ps, vectorstore.Point{ID: uuid.NewString(), Vector: vec(), Payload: vectorstore.Payload{
					DocPath: fmt.Sprintf("doc%d.md", i/20), URL: "https://example.com/docs/x", Title: "T", Heading: "H",
					Text: "some chunk text of a typical length", ContentHash: "h",
				}})
			}
			if err := s.Upsert(ctx, ps); err != nil {
				return err
			}
		}
		fmt.Printf("insert %d × %d: %s\n", n, dims, time.Since(start).Round(time.Millisecond))
	}
	start := time.Now()
	if err := s.Load(ctx); err != nil {
		return err
	}
	fmt.Printf("load into memory: %s\n", time.Since(start).Round(time.Millisecond))
	var lat []time.Duration
	for range queries {
		q := vectorstore.Query{Vector: vec(), Limit: 10}
		t := time.Now()
		hits, err := s.Search(ctx, q)
		if err != nil {
			return err
		}
		lat = append(lat, time.Since(t))
		if len(hits) != min(10, n) {
			return fmt.Errorf("got %d hits", len(hits))
		}
	}
	slices.Sort(lat)
	fmt.Printf("search top-10 over %d × %d: p50 %s  p90 %s  p99 %s  max %s\n", n, dims,
		lat[len(lat)/2].Round(10*time.Microsecond), lat[len(lat)*9/10].Round(10*time.Microsecond),
		lat[len(lat)*99/100].Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))
	return nil
}
