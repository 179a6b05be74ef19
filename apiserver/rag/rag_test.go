package rag_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/rag"
	"github.com/chatbackend/chatbackend/apiserver/rag/chunk"
	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
	"github.com/chatbackend/chatbackend/apiserver/rag/generate"
	"github.com/chatbackend/chatbackend/apiserver/rag/ingest"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore/pgstore"
	"github.com/chatbackend/chatbackend/apiserver/store/migrations"
	"github.com/chatbackend/chatbackend/internal/openaitest"
	"github.com/chatbackend/chatbackend/internal/pgtest"
	"github.com/chatbackend/chatbackend/internal/qdranttest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const site = "https://docs.acme.example"

// copyDocs copies the Docusaurus-like test tree so a test may change it.
func copyDocs(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	src := filepath.Join("testdata", "docs")
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	url := pgtest.New(t)
	if _, err := migrations.Migrate(ctx, url, nil, nil); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

type setup struct {
	engine *rag.Engine
	oai    *openaitest.Server // nil when offline
	qd     *qdranttest.Server // nil for PostgreSQL
}

func newSetup(t *testing.T, backend string, online bool) setup {
	t.Helper()
	var s setup
	cfg := rag.Config{TopK: 3}
	if online {
		s.oai = openaitest.Start(t)
		cfg.OpenAIAPIKey, cfg.OpenAIBaseURL = openaitest.APIKey, s.oai.URL
	}
	var pool *pgxpool.Pool
	switch backend {
	case "postgres":
		pool = newPool(t)
	case "qdrant", "qdrant-hybrid":
		s.qd = qdranttest.Start(t, "qdrant-test-key")
		cfg.QdrantURL, cfg.QdrantAPIKey, cfg.QdrantCollection = s.qd.URL, "qdrant-test-key", "acme"
		cfg.QdrantHybrid = backend == "qdrant-hybrid"
	}
	e, closeStore, err := rag.New(cfg, pool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeStore() })
	if _, ok := e.Store.(*pgstore.Store); ok {
		// Searches see every ingest at once (the default re-checks every 2s).
		e.Store = pgstore.New(pool, pgstore.Options{RecheckEvery: time.Nanosecond, Lexical: cfg.Offline()})
	}
	s.engine = e
	return s
}

func (s setup) ingest(t *testing.T, dir string) ingest.Summary {
	t.Helper()
	sum, err := ingest.Run(context.Background(), ingest.Options{
		Sources: []ingest.Source{ingest.Docs("", dir, chunk.Options{SiteURL: site})}, Embedder: s.engine.Embedder, Store: s.engine.Store,
	})
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func (s setup) embedCalls() int64 {
	if s.oai == nil {
		return 0
	}
	return s.oai.EmbeddingCalls()
}

// The acceptance test, for every retrieval backend and embedder:
// ingest the tree, ask questions answered in one page each, re-ingest
// unchanged, change a page, delete a page.
func TestIngestThenRetrieve(t *testing.T) {
	for _, backend := range []string{"postgres", "qdrant", "qdrant-hybrid"} {
		for _, online := range []bool{false, true} {
			name := fmt.Sprintf("%s/offline", backend)
			if online {
				name = fmt.Sprintf("%s/fake-openai", backend)
			}
			t.Run(name, func(t *testing.T) {
				g := NewWithT(t)
				ctx := context.Background()
				s := newSetup(t, backend, online)
				docs := copyDocs(t)

				first := s.ingest(t, docs)
				g.Expect(first.Pages).To(Equal(6))
				g.Expect(first.Embedded()).To(Equal(first.Chunks))
				g.Expect(first.Unchanged).To(BeZero())
				if online {
					g.Expect(s.oai.EmbeddedInputs()).To(BeNumerically("==", first.Chunks))
				}

				for _, q := range []struct{ question, url string }{
					{"How do I rotate the signing keys?", site + "/docs/guides/auth-guide#signing-key-rotation"},
					{"Which port does Qdrant listen on for gRPC?", site + "/docs/reference/vector-store#qdrant"},
					{"How can I install the operator with Helm?", site + "/docs/getting-started/install#helm"},
					{"Which setting configures how many chat requests a user may send per minute?", site + "/docs/guides/rate-limits#configure"},
				} {
					r, err := s.engine.Retrieve(ctx, q.question, nil)
					g.Expect(err).NotTo(HaveOccurred())
					g.Expect(r.Sources).NotTo(BeEmpty(), q.question)
					g.Expect(r.Sources[0].URL).To(Equal(q.url), q.question)
					g.Expect(r.Sources[0].Snippet).NotTo(BeEmpty())
					g.Expect(r.Passages).To(HaveLen(len(r.Sources)))
				}

				// Unchanged tree: nothing embedded, not even one API call.
				calls := s.embedCalls()
				again := s.ingest(t, docs)
				g.Expect(again.Embedded()).To(BeZero())
				g.Expect(again.Removed).To(BeZero())
				g.Expect(again.Unchanged).To(Equal(first.Chunks))
				g.Expect(s.embedCalls()).To(Equal(calls))

				// One section edited: only it is embedded again.
				p := filepath.Join(docs, "guides", "authentication.md")
				b, err := os.ReadFile(p)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(os.WriteFile(p, []byte(strings.Replace(string(b), "fifteen minutes", "ten minutes", 1)), 0o644)).To(Succeed())
				edited := s.ingest(t, docs)
				g.Expect(edited.Embedded()).To(Equal(1))
				g.Expect(edited.Unchanged).To(Equal(first.Chunks - 1))

				// A deleted page: its chunks are gone from the store and answers.
				gone := chunksOf(t, docs, "guides/rate-limits.md")
				g.Expect(os.Remove(filepath.Join(docs, "guides", "rate-limits.md"))).To(Succeed())
				after := s.ingest(t, docs)
				g.Expect(after.Removed).To(Equal(len(gone)))
				g.Expect(after.Embedded()).To(BeZero())
				hashes, err := s.engine.Store.Hashes(ctx)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(hashes).To(HaveLen(first.Chunks - len(gone)))
				for _, c := range gone {
					g.Expect(hashes).NotTo(HaveKey(c.ID))
				}
				r, err := s.engine.Retrieve(ctx, "What happens when a user exceeds the chat rate limit?", nil)
				g.Expect(err).NotTo(HaveOccurred())
				for _, src := range r.Sources {
					g.Expect(src.URL).NotTo(ContainSubstring("rate-limits"))
				}
			})
		}
	}
}

func chunksOf(t *testing.T, docs, rel string) []chunk.Chunk {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(docs, rel))
	if err != nil {
		t.Fatal(err)
	}
	p, err := chunk.Parse(rel, b, chunk.Options{SiteURL: site})
	if err != nil {
		t.Fatal(err)
	}
	return chunk.Split(p, chunk.Options{SiteURL: site})
}

// Before anything is ingested, questions get no sources rather than errors.
func TestRetrieveBeforeIngest(t *testing.T) {
	for _, backend := range []string{"postgres", "qdrant"} {
		t.Run(backend, func(t *testing.T) {
			g := NewWithT(t)
			s := newSetup(t, backend, false)
			r, err := s.engine.Retrieve(context.Background(), "anything", nil)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(r.Sources).To(BeEmpty())
		})
	}
}

var _ vectorstore.Store = (*pgstore.Store)(nil)

// A question that shares nothing with the docs cites nothing: hits with no
// positive similarity fill the top-k of a small site and would mislead.
func TestUnrelatedQuestionCitesNothingIrrelevant(t *testing.T) {
	g := NewWithT(t)
	s := newSetup(t, "postgres", false)
	s.ingest(t, copyDocs(t))
	r, err := s.engine.Retrieve(context.Background(), "zyxwvut qponmlk", nil)
	g.Expect(err).NotTo(HaveOccurred())
	for _, src := range r.Sources {
		g.Expect(src.Score).To(BeNumerically(">", 0), "source %s", src.URL)
	}
}

// RAG_ANSWERS=extractive with an API key: the API embeds (hybrid retrieval),
// the docs are quoted (no chat model is called).
func TestExtractiveAnswersKeepTheAPIsEmbeddings(t *testing.T) {
	c := rag.Config{OpenAIAPIKey: "local", OpenAIBaseURL: "http://127.0.0.1:1/v1", Answers: config.AnswersExtractive}
	g, err := rag.NewGenerator(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g.(generate.Extractive); !ok {
		t.Errorf("generator %T, want extractive answers", g)
	}
	e, err := rag.NewEmbedder(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.(*embed.OpenAI); !ok {
		t.Errorf("embedder %T, want the API's", e)
	}
}
