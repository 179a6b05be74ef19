package rag_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/rag"
	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
	"github.com/chatbackend/chatbackend/apiserver/rag/generate"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore"
)

// hitsStore answers every search with its hits (a fixed ranking, to test
// what the engine does with scores, coverage and similarity alone).
type hitsStore struct{ hits []vectorstore.Hit }

func (s hitsStore) Hashes(context.Context) (map[string]vectorstore.Stored, error) { return nil, nil }
func (s hitsStore) Upsert(context.Context, []vectorstore.Point) error             { return nil }
func (s hitsStore) Delete(context.Context, []string) error                        { return nil }
func (s hitsStore) Search(context.Context, vectorstore.Query) ([]vectorstore.Hit, error) {
	return s.hits, nil
}
func (s hitsStore) Empty(context.Context) (bool, error) { return len(s.hits) == 0, nil }

// A hybrid hit whose fused score is 0 (pgstore at RAG_DENSE_WEIGHT 0, no
// word in common) but that the encoder measured close is cited through
// RAG_MIN_SIMILARITY, and marked Similar for the extractive answer; a hit
// with neither a score nor a similarity (Qdrant's dense lexical vectors
// sharing nothing) never is, even with every threshold at 0.
func TestRelevanceByMeaningSurvivesAZeroScore(t *testing.T) {
	g := NewWithT(t)
	near := vectorstore.Hit{ID: "a", Score: 0, Coverage: 0, Similarity: 0.7,
		Payload: vectorstore.Payload{Title: "Auth", URL: "https://d.io/auth", Text: "Access tokens expire after an hour."}}
	nothing := vectorstore.Hit{ID: "b", Score: 0, Coverage: 0,
		Payload: vectorstore.Payload{Title: "Helm", URL: "https://d.io/helm", Text: "Install the chart."}}
	e := &rag.Engine{Embedder: embed.NewLexical(), Store: hitsStore{[]vectorstore.Hit{near, nothing}},
		Generator: generate.Extractive{}, TopK: 2, MinCoverage: 0.35, MinSimilarity: 0.65}
	r, err := e.Retrieve(context.Background(), "How long before a login credential stops working?", nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Sources).To(HaveLen(1))
	g.Expect(r.Sources[0].URL).To(Equal("https://d.io/auth"))
	g.Expect(r.Passages[0].Similar).To(BeTrue())

	e.MinCoverage, e.MinSimilarity = 0, 0
	r, err = e.Retrieve(context.Background(), "How long before a login credential stops working?", nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Sources).To(HaveLen(1), "the hit with no score and no similarity shares nothing")
	g.Expect(r.Sources[0].URL).To(Equal("https://d.io/auth"))
}
