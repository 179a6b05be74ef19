package rag_test

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/rag"
	"github.com/chatbackend/chatbackend/apiserver/rag/generate"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore/pgstore"
	"github.com/chatbackend/chatbackend/internal/embedtest"
)

// With a real sentence encoder (hack/embedserver), RAG_MIN_SIMILARITY cites
// a passage that answers in other words: "login credential stops working"
// shares no word with "Access tokens expire", so coverage alone abstains,
// while a question the docs do not answer stays below both thresholds.
func TestSimilarityThresholdCitesWhatCoverageMisses(t *testing.T) {
	g := NewWithT(t)
	enc := embedtest.Start(t)
	pool := newPool(t)
	ctx := context.Background()
	engine := func(minSimilarity *float64) *rag.Engine {
		e, closeStore, err := rag.New(rag.Config{TopK: 3, OpenAIAPIKey: "local", OpenAIBaseURL: enc.BaseURL,
			OpenAIEmbeddingModel: embedtest.Model, Answers: config.AnswersExtractive, MinSimilarity: minSimilarity}, pool)
		g.Expect(err).NotTo(HaveOccurred())
		t.Cleanup(func() { _ = closeStore() })
		e.Store = pgstore.New(pool, pgstore.Options{RecheckEvery: time.Nanosecond})
		return e
	}
	lexical := engine(nil)
	setup{engine: lexical}.ingest(t, copyDocs(t))
	threshold := 0.4
	semantic := engine(&threshold)

	const paraphrase = "How long before a login credential stops working?"
	r, err := lexical.Retrieve(ctx, paraphrase, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Sources).To(BeEmpty(), "coverage alone: no word in common")
	r, err = semantic.Retrieve(ctx, paraphrase, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Sources).NotTo(BeEmpty())
	g.Expect(strings.SplitN(r.Sources[0].URL, "#", 2)[0]).To(Equal(site + "/docs/guides/auth-guide"))
	// What the reader sees: an answer quoting and citing it, not "the
	// documentation does not cover this question".
	res, err := semantic.Generator.Generate(ctx, generate.Request{Question: paraphrase, Passages: r.Passages, Weights: r.Weights},
		func(string) error { return nil })
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Grounded).To(BeTrue(), res.Text)
	g.Expect(res.Text).NotTo(ContainSubstring(generate.NotCovered))
	g.Expect(res.Cited).NotTo(BeEmpty())
	g.Expect(strings.SplitN(r.Passages[res.Cited[0]].URL, "#", 2)[0]).To(Equal(site+"/docs/guides/auth-guide"), res.Text)

	r, err = semantic.Retrieve(ctx, "What is the capital of France?", nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Sources).To(BeEmpty(), "nothing in the docs is close to it")
}
