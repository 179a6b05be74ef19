package pgstore

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore"
	"github.com/chatbackend/chatbackend/apiserver/store/migrations"
	"github.com/chatbackend/chatbackend/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := pgtest.New(t)
	if _, err := migrations.Migrate(context.Background(), url, nil, nil); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func pt(id string, v ...float32) vectorstore.Point {
	return vectorstore.Point{ID: id, Vector: v, Payload: vectorstore.Payload{DocPath: "d.md", URL: "u#" + id[:2], Title: "T", Heading: "H", Text: "text " + id[:2], ContentHash: "h" + id[:2]}}
}

const (
	idA = "aaaaaaaa-0000-5000-8000-000000000000"
	idB = "bbbbbbbb-0000-5000-8000-000000000000"
)

// A server's in-memory index follows an ingest run by another process
// (another Store on the same database) through the generation counter.
func TestServerSeesIngestFromElsewhere(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	pool := newPool(t)
	server := New(pool, Options{RecheckEvery: time.Millisecond})
	ingester := New(pool, Options{})

	hits, err := server.Search(ctx, vectorstore.Query{Vector: []float32{1, 0}, Limit: 5})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hits).To(BeEmpty())

	g.Expect(ingester.Upsert(ctx, []vectorstore.Point{pt(idA, 1, 0), pt(idB, 0, 1)})).To(Succeed())
	time.Sleep(2 * time.Millisecond)
	hits, err = server.Search(ctx, vectorstore.Query{Vector: []float32{0.1, 0.9}, Limit: 5})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hits).To(HaveLen(2))
	g.Expect(hits[0].ID).To(Equal(idB))
	g.Expect(hits[0].Payload).To(Equal(pt(idB).Payload))
	// Dense and lexical scores are fused: the best cosine, no words (the
	// query has no text), so the dense share alone.
	g.Expect(hits[0].Score).To(BeNumerically("~", DefaultDenseWeight, 1e-6))

	g.Expect(ingester.Delete(ctx, []string{idB})).To(Succeed())
	time.Sleep(2 * time.Millisecond)
	hits, err = server.Search(ctx, vectorstore.Query{Vector: []float32{0.1, 0.9}, Limit: 5})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hits).To(HaveLen(1))
	g.Expect(hits[0].ID).To(Equal(idA))

	hashes, err := server.Hashes(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hashes).To(Equal(map[string]vectorstore.Stored{idA: {ContentHash: "haa", DocPath: "d.md"}}))

	// A question embedded by another model is refused with the fix.
	_, err = server.Search(ctx, vectorstore.Query{Vector: []float32{1, 0, 0}, Limit: 5})
	g.Expect(err).To(MatchError(ContainSubstring("run ingest again")))
}

// A reload that was expensive is not repeated until four of its durations
// have passed, even though an ingest moved the generation; a cheap one is.
func TestExpensiveReloadsAreSpaced(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	pool := newPool(t)
	server := New(pool, Options{RecheckEvery: time.Millisecond})
	ingester := New(pool, Options{})
	g.Expect(ingester.Upsert(ctx, []vectorstore.Point{pt(idA, 1, 0)})).To(Succeed())
	search := func() []vectorstore.Hit {
		time.Sleep(2 * time.Millisecond) // past RecheckEvery
		hits, err := server.Search(ctx, vectorstore.Query{Vector: []float32{0.1, 0.9}, Limit: 5})
		g.Expect(err).NotTo(HaveOccurred())
		return hits
	}
	g.Expect(search()).To(HaveLen(1))

	// The last load took a minute (as a large index does): the next waits.
	loaded := *server.loaded.Load()
	loaded.loadTook = time.Minute
	server.loaded.Store(&loaded)
	g.Expect(ingester.Upsert(ctx, []vectorstore.Point{pt(idB, 0, 1)})).To(Succeed())
	g.Expect(search()).To(HaveLen(1), "reloaded within four load times")

	// Four load times later the new chunk is loaded.
	loaded = *server.loaded.Load()
	loaded.loadedAt = time.Now().Add(-4 * time.Minute)
	server.loaded.Store(&loaded)
	g.Expect(search()).To(HaveLen(2))
}

// An upsert is all or nothing.
func TestUpsertIsAtomic(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	pool := newPool(t)
	s := New(pool, Options{})
	err := s.Upsert(ctx, []vectorstore.Point{pt(idA, 1, 0), {ID: "not-a-uuid", Vector: []float32{1, 0}}})
	g.Expect(err).To(HaveOccurred())
	hashes, err := s.Hashes(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hashes).To(BeEmpty())
}

// Offline (Options.Lexical) the store loads the chunks without their
// embeddings, which no BM25F search reads, still finds them by their
// words, and refuses a dense query rather than ranking it by nothing.
func TestLexicalStoreLoadsNoEmbedding(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	pool := newPool(t)
	g.Expect(New(pool, Options{}).Upsert(ctx, []vectorstore.Point{pt(idA, 1, 0), pt(idB, 0, 1)})).To(Succeed())

	s := New(pool, Options{Lexical: true})
	g.Expect(s.Load(ctx)).To(Succeed())
	idx := s.loaded.Load().idx
	g.Expect(idx.len()).To(Equal(2))
	g.Expect(idx.vecs).To(BeEmpty())
	g.Expect(idx.dims).To(BeZero())

	hits, err := s.Search(ctx, vectorstore.Query{Vector: []float32{1, 0}, Text: "text bb", Limit: 5, Lexical: true})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hits).NotTo(BeEmpty())
	g.Expect(hits[0].ID).To(Equal(idB))
	g.Expect(hits[0].Payload).To(Equal(pt(idB).Payload))

	_, err = s.Search(ctx, vectorstore.Query{Vector: []float32{1, 0}, Text: "text bb", Limit: 5})
	g.Expect(err).To(MatchError(ContainSubstring("no embedding is loaded")))
}

// A hybrid search reports each hit's cosine similarity with the question
// (what RAG_MIN_SIMILARITY applies to), whichever ranking proposed it; a
// lexical one measures none.
func TestHybridHitsCarryTheirSimilarity(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := New(newPool(t), Options{})
	g.Expect(s.Upsert(ctx, []vectorstore.Point{pt(idA, 0.6, 0.8), pt(idB, 1, 0)})).To(Succeed())

	hits, err := s.Search(ctx, vectorstore.Query{Vector: []float32{1, 0}, Text: "text aa", Limit: 2})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hits).To(HaveLen(2))
	sim := map[string]float32{}
	for _, h := range hits {
		sim[h.ID] = h.Similarity
	}
	g.Expect(sim[idA]).To(BeNumerically("~", 0.6, 0.001))
	g.Expect(sim[idB]).To(BeNumerically("~", 1, 0.001))

	hits, err = s.Search(ctx, vectorstore.Query{Vector: []float32{1, 0}, Text: "text aa", Limit: 2, Lexical: true})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hits).NotTo(BeEmpty())
	g.Expect(hits[0].Similarity).To(BeZero())
}

// A passage BM25F finds far ahead of the rest, which a weak encoder ranks
// last but close behind its first choices, comes first: the fusion weighs
// how far ahead each side puts a passage. Reciprocal rank fusion, which
// counts ranks alone, put the encoder's first choice (a passage sharing
// one common word with the question) ahead.
func TestHybridKeepsAStrongLexicalHitTheEncoderRanksLast(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := New(newPool(t), Options{})
	const idC = "cccccccc-0000-5000-8000-000000000000"
	chunk := func(id, heading, text string, v ...float32) vectorstore.Point {
		p := pt(id, v...)
		p.Payload.Heading, p.Payload.Text = heading, text
		return p
	}
	g.Expect(s.Upsert(ctx, []vectorstore.Point{
		chunk(idA, "Rotating signing keys", "Rotate the signing keys with one call; old keys stay valid for a day.", 0.8, 0.6),
		chunk(idB, "Storage", "Backups are stored as encrypted chunks; the keys live apart.", 0.85, 0.527),
		chunk(idC, "Restore", "A restore reads the chunks back; it needs the keys.", 0.9, 0.436),
	})).To(Succeed())

	hits, err := s.Search(ctx, vectorstore.Query{Vector: []float32{1, 0}, Text: "How do I rotate the signing keys?", Limit: 3})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hits).To(HaveLen(3))
	g.Expect(hits[0].ID).To(Equal(idA))
	g.Expect(hits[0].Similarity).To(BeNumerically("<", hits[2].Similarity), "the encoder ranks it last")
	g.Expect(hits[1].ID).To(Equal(idC), "then the encoder's first choice, second by BM25F")

	// All dense: the encoder's order.
	dense := 1.0
	s = New(s.pool, Options{DenseWeight: &dense})
	hits, err = s.Search(ctx, vectorstore.Query{Vector: []float32{1, 0}, Text: "How do I rotate the signing keys?", Limit: 3})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect([]string{hits[0].ID, hits[1].ID, hits[2].ID}).To(Equal([]string{idC, idB, idA}))
}

// At DenseWeight 0 every candidate sharing no word with the question scores
// 0; among them the closer in meaning ranks first (not the first stored),
// and it still carries its similarity for RAG_MIN_SIMILARITY.
func TestHybridTiesGoToTheCloserInMeaning(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	zero := 0.0
	s := New(newPool(t), Options{DenseWeight: &zero})
	g.Expect(s.Upsert(ctx, []vectorstore.Point{pt(idA, 0.2, 0.98), pt(idB, 0.99, 0.141)})).To(Succeed())
	hits, err := s.Search(ctx, vectorstore.Query{Vector: []float32{1, 0}, Text: "nothing in common", Limit: 2})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hits).To(HaveLen(2))
	g.Expect(hits[0].ID).To(Equal(idB))
	g.Expect(hits[0].Score).To(BeZero())
	g.Expect(hits[0].Similarity).To(BeNumerically("~", 0.99, 0.01))
}
