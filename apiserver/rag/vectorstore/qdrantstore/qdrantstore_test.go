package qdrantstore_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/qdrant/go-client/qdrant"

	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore/qdrantstore"
	"github.com/chatbackend/chatbackend/internal/qdranttest"
)

func point(id string, v []float32, text string) vectorstore.Point {
	return vectorstore.Point{ID: id, Vector: v, Payload: vectorstore.Payload{
		DocPath: id[:4] + ".md", URL: "https://s.io/docs/a#" + id[:4], Title: "A", Heading: "H " + id[:4], Text: text, ContentHash: "h-" + id[:4],
	}}
}

const (
	id1 = "11111111-1111-5111-8111-111111111111"
	id2 = "22222222-2222-5222-8222-222222222222"
)

func TestCollectionCreatedOnFirstUpsertWithPayload(t *testing.T) {
	for _, hybrid := range []bool{false, true} {
		g := NewWithT(t)
		ctx := context.Background()
		fq := qdranttest.Start(t, "secret")
		s, err := qdrantstore.New(qdrantstore.Options{URL: fq.URL, APIKey: "secret", Collection: "c", Hybrid: hybrid})
		g.Expect(err).NotTo(HaveOccurred())
		defer s.Close()

		// Nothing ingested yet: no collection, no hits, no error.
		hits, err := s.Search(ctx, vectorstore.Query{Vector: []float32{1, 0, 0}, Text: "alpha", Limit: 2})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(hits).To(BeEmpty())
		g.Expect(fq.Collection("c")).To(BeNil())
		g.Expect(s.Empty(ctx)).To(BeTrue())

		g.Expect(s.Upsert(ctx, []vectorstore.Point{point(id1, []float32{1, 0, 0}, "alpha words"), point(id2, []float32{0, 1, 0}, "beta words")})).To(Succeed())
		created := fq.Collection("c")
		g.Expect(created).NotTo(BeNil())
		dense := created.GetVectorsConfig().GetParamsMap().GetMap()[qdrantstore.DenseVector]
		g.Expect(dense.GetSize()).To(BeNumerically("==", 3))
		g.Expect(created.GetSparseVectorsConfig().GetMap()).To(HaveLen(map[bool]int{false: 0, true: 1}[hybrid]))

		hits, err = s.Search(ctx, vectorstore.Query{Vector: []float32{0.9, 0.1, 0}, Text: "alpha", Limit: 1})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(hits).To(HaveLen(1))
		g.Expect(hits[0].ID).To(Equal(id1))
		g.Expect(hits[0].Payload).To(Equal(point(id1, nil, "alpha words").Payload))

		hashes, err := s.Hashes(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		// Each chunk's page comes with its hash, read in the same scroll.
		g.Expect(hashes).To(Equal(map[string]vectorstore.Stored{
			id1: {ContentHash: "h-1111", DocPath: "1111.md"},
			id2: {ContentHash: "h-2222", DocPath: "2222.md"},
		}))
		g.Expect(s.Empty(ctx)).To(BeFalse())
		g.Expect(s.Delete(ctx, []string{id1})).To(Succeed())
		g.Expect(fq.PointCount("c")).To(Equal(1))
		g.Expect(fq.Calls("/qdrant.Collections/Create")).To(Equal(1))
	}
}

func TestWrongAPIKeyIsAnError(t *testing.T) {
	g := NewWithT(t)
	fq := qdranttest.Start(t, "secret")
	s, err := qdrantstore.New(qdrantstore.Options{URL: fq.URL, APIKey: "nope"})
	g.Expect(err).NotTo(HaveOccurred())
	defer s.Close()
	_, err = s.Hashes(context.Background())
	g.Expect(err).To(MatchError(ContainSubstring("Unauthenticated")))
	g.Expect(err.Error()).NotTo(ContainSubstring("nope"))

	_, err = qdrantstore.New(qdrantstore.Options{URL: "::bad"})
	g.Expect(err).To(MatchError(ContainSubstring("QDRANT_URL")))
}

func TestScrollPagesThroughManyPoints(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	fq := qdranttest.Start(t, "")
	s, err := qdrantstore.New(qdrantstore.Options{URL: fq.URL})
	g.Expect(err).NotTo(HaveOccurred())
	defer s.Close()
	var ps []vectorstore.Point
	for i := range 2500 {
		id := []byte("00000000-0000-5000-8000-000000000000")
		copy(id[24:], []byte(padHex(i)))
		ps = append(ps, point(string(id), []float32{1, float32(i)}, "t"))
	}
	g.Expect(s.Upsert(ctx, ps)).To(Succeed())
	hashes, err := s.Hashes(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hashes).To(HaveLen(2500))
	g.Expect(fq.Calls("/qdrant.Points/Scroll")).To(Equal(3))
}

func padHex(i int) string {
	const hex = "0123456789abcdef"
	b := []byte("000000000000")
	for p := len(b) - 1; i > 0; p-- {
		b[p] = hex[i%16]
		i /= 16
	}
	return string(b)
}

// hybridCorpus: three passages near the query's dense vector that share no
// word with it, and one (idKey) whose dense vector is orthogonal to the query
// but whose text answers it word for word.
const (
	idGrafana = "33333333-3333-5333-8333-333333333333"
	idAlerts  = "44444444-4444-5444-8444-444444444444"
	idScrape  = "55555555-5555-5555-8555-555555555555"
	idKey     = "66666666-6666-5666-8666-666666666666"
)

var (
	hybridCorpus = []vectorstore.Point{
		point(idGrafana, []float32{1, 0, 0}, "import the dashboards into grafana"),
		point(idAlerts, []float32{0.9, 0.1, 0}, "alerting rules fire on errors"),
		point(idScrape, []float32{0.8, 0.2, 0}, "metrics scraping interval"),
		point(idKey, []float32{0, 0, 1}, "rotating the jwks signing key"),
	}
	hybridQuery = vectorstore.Query{Vector: []float32{1, 0, 0}, Text: "how do I rotate the signing key?", Limit: 2}
)

func hitIDs(hits []vectorstore.Hit) []string {
	ids := make([]string, len(hits))
	for i, h := range hits {
		ids[i] = h.ID
	}
	return ids
}

// With hybrid on, Search asks Qdrant for dense and sparse candidates and
// fuses them by reciprocal rank; with it off (or a question with no index
// term), it is a plain nearest-neighbour query on the dense vector.
func TestSearchRequestDenseOrFusedHybrid(t *testing.T) {
	sparseIdx, sparseVal := embed.Sparse(hybridQuery.Text)
	for _, tc := range []struct {
		name   string
		hybrid bool
		text   string
		fused  bool
	}{
		{name: "dense only", hybrid: false, text: hybridQuery.Text},
		{name: "hybrid", hybrid: true, text: hybridQuery.Text, fused: true},
		{name: "hybrid, question of stop words only", hybrid: true, text: "how do I do it?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			fq := qdranttest.Start(t, "")
			s, err := qdrantstore.New(qdrantstore.Options{URL: fq.URL, Collection: "c", Hybrid: tc.hybrid})
			g.Expect(err).NotTo(HaveOccurred())
			defer s.Close()
			g.Expect(s.Upsert(ctx, hybridCorpus)).To(Succeed())

			q := hybridQuery
			q.Text = tc.text
			_, err = s.Search(ctx, q)
			g.Expect(err).NotTo(HaveOccurred())
			req := fq.LastQuery()
			g.Expect(req).NotTo(BeNil())
			g.Expect(req.GetCollectionName()).To(Equal("c"))
			g.Expect(req.GetLimit()).To(BeNumerically("==", q.Limit))

			if !tc.fused {
				g.Expect(req.GetPrefetch()).To(BeEmpty())
				g.Expect(req.GetUsing()).To(Equal(qdrantstore.DenseVector))
				g.Expect(req.GetQuery().GetNearest().GetDense().GetData()).To(Equal(q.Vector))
				return
			}
			g.Expect(req.GetQuery().GetFusion()).To(Equal(qdrant.Fusion_RRF))
			g.Expect(req.GetQuery().GetNearest()).To(BeNil())
			g.Expect(req.Using).To(BeNil(), "a fusion query names no vector of its own")
			g.Expect(req.GetPrefetch()).To(HaveLen(2))
			byVector := map[string]*qdrant.PrefetchQuery{}
			for _, pf := range req.GetPrefetch() {
				byVector[pf.GetUsing()] = pf
				// Fusion can only promote what the prefetches proposed.
				g.Expect(pf.GetLimit()).To(BeNumerically(">=", q.Limit), "prefetch on %q", pf.GetUsing())
			}
			g.Expect(byVector).To(HaveKey(qdrantstore.DenseVector))
			g.Expect(byVector).To(HaveKey(qdrantstore.SparseVector))
			g.Expect(byVector[qdrantstore.DenseVector].GetQuery().GetNearest().GetDense().GetData()).To(Equal(q.Vector))
			sparse := byVector[qdrantstore.SparseVector].GetQuery().GetNearest().GetSparse()
			g.Expect(sparse).NotTo(BeNil())
			g.Expect(sparse.GetIndices()).To(Equal(sparseIdx))
			g.Expect(sparse.GetValues()).To(Equal(sparseVal))
		})
	}
}

// The point of hybrid search: a passage whose dense vector matches nothing
// but whose words answer the question is found only when hybrid is on.
func TestHybridSearchFindsALexicalMatchDenseSearchMisses(t *testing.T) {
	for _, hybrid := range []bool{false, true} {
		t.Run(map[bool]string{false: "dense", true: "hybrid"}[hybrid], func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			fq := qdranttest.Start(t, "")
			s, err := qdrantstore.New(qdrantstore.Options{URL: fq.URL, Collection: "c", Hybrid: hybrid})
			g.Expect(err).NotTo(HaveOccurred())
			defer s.Close()
			g.Expect(s.Upsert(ctx, hybridCorpus)).To(Succeed())

			hits, err := s.Search(ctx, hybridQuery)
			g.Expect(err).NotTo(HaveOccurred())
			if !hybrid {
				g.Expect(hitIDs(hits)).To(Equal([]string{idGrafana, idAlerts}))
				return
			}
			// Ranked first by the sparse side and present on the dense side
			// (4×limit candidates), the key passage outranks the best dense
			// match, which only one side proposes.
			g.Expect(hitIDs(hits)).To(Equal([]string{idKey, idGrafana}))
			g.Expect(hits[0].Payload.Text).To(Equal("rotating the jwks signing key"))
			g.Expect(hits[0].Score).To(BeNumerically(">", hits[1].Score))
		})
	}
}
