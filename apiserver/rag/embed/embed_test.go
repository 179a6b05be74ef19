package embed_test

import (
	"context"
	"math"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
	"github.com/chatbackend/chatbackend/internal/openaitest"
)

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func TestLexicalRanksSharedRareWordsFirst(t *testing.T) {
	g := NewWithT(t)
	vs, err := embed.NewLexical().Embed(context.Background(), []string{
		"How do I rotate the signing keys?",
		"Rotating signing keys: call the rotation endpoint.",
		"Install the chart with Helm in the acme namespace.",
		"",
	})
	g.Expect(err).NotTo(HaveOccurred())
	for _, v := range vs[:3] {
		g.Expect(v).To(HaveLen(embed.LexicalDims))
		g.Expect(math.Sqrt(dot(v, v))).To(BeNumerically("~", 1, 1e-5))
	}
	g.Expect(dot(vs[0], vs[1])).To(BeNumerically(">", 0.3))
	g.Expect(dot(vs[0], vs[2])).To(BeNumerically("<", 0.05))
	g.Expect(dot(vs[3], vs[3])).To(BeZero(), "an empty text is the zero vector, not NaN")
}

func TestWordsStemAndDropStopWords(t *testing.T) {
	g := NewWithT(t)
	g.Expect(embed.Words("The keys are rotated; rotation of a key")).To(Equal([]string{"key", "rotat", "rotat", "key"}))
	idx, val := embed.Sparse("key key rotation")
	// Terms: key, rotat, and the pairs "key key" and "key rotat".
	g.Expect(idx).To(HaveLen(4))
	g.Expect(val).To(HaveLen(len(idx)))
}

func TestOpenAIBatchesAndKeepsOrder(t *testing.T) {
	g := NewWithT(t)
	oai := openaitest.Start(t)
	e, err := embed.NewOpenAI(embed.OpenAIOptions{APIKey: openaitest.APIKey, BaseURL: oai.URL, BatchSize: 2})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(e.Model()).To(Equal(embed.DefaultEmbeddingModel))
	texts := []string{"alpha beta", "gamma delta", "alpha beta", "epsilon", "gamma delta"}
	vs, err := e.Embed(context.Background(), texts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(vs).To(HaveLen(5))
	g.Expect(oai.EmbeddingCalls()).To(BeNumerically("==", 3))
	g.Expect(vs[0]).To(HaveLen(openaitest.Dims))
	g.Expect(vs[2]).To(Equal(vs[0]))
	g.Expect(vs[4]).To(Equal(vs[1]))
	g.Expect(math.Sqrt(dot(vs[3], vs[3]))).To(BeNumerically("~", 1, 1e-5), "normalized")

	// A 500 is retried twice, then reported.
	oai.FailEmbeddings(true)
	calls := oai.EmbeddingCalls()
	_, err = e.Embed(context.Background(), texts)
	g.Expect(err).To(MatchError(ContainSubstring("embeddings request")))
	g.Expect(err).To(MatchError(ContainSubstring("500")))
	g.Expect(oai.EmbeddingCalls() - calls).To(BeNumerically("==", 3))

	_, err = embed.NewOpenAI(embed.OpenAIOptions{})
	g.Expect(err).To(HaveOccurred())
}
