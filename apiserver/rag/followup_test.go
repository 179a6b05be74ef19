package rag_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/rag"
	"github.com/chatbackend/chatbackend/apiserver/rag/generate"
	"github.com/chatbackend/chatbackend/internal/openaitest"
)

// A conversation about key rotation, and its follow-up, which refers to
// the answer: its own words ("long") hold too little of the docs for the
// relevance threshold, so searched alone, or leaning on the previous
// question, it cites nothing; the standalone question the model writes
// from the conversation finds the token lifetime.
var (
	rotationHistory = []generate.Turn{
		{Role: "user", Content: "How do I rotate the signing keys?"},
		{Role: "assistant", Content: "Call the rotation endpoint of the BetterAuth server [1]. " +
			"Tokens signed with the previous key stay valid until they expire."},
	}
	followUp   = "How long is that?"
	standalone = "How long do access tokens stay valid before they expire?"
	rotation   = site + "/docs/guides/auth-guide#signing-key-rotation"
	lifetime   = site + "/docs/guides/auth-guide#token-lifetime"
)

type rewriteSetup struct {
	engine *rag.Engine
	oai    *openaitest.Server
	reg    *prometheus.Registry
	log    *bytes.Buffer
}

// newRewriteSetup is the PostgreSQL store with the test docs, and the fake
// model; rewrite is RAG_QUERY_REWRITE.
func newRewriteSetup(t *testing.T, rewrite bool) rewriteSetup {
	t.Helper()
	s := rewriteSetup{oai: openaitest.Start(t), reg: prometheus.NewRegistry(), log: &bytes.Buffer{}}
	e, closeStore, err := rag.New(rag.Config{TopK: 3, HistoryTokens: config.DefaultHistoryTokens, QueryRewrite: rewrite,
		OpenAIAPIKey: openaitest.APIKey, OpenAIBaseURL: s.oai.URL}, newPool(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeStore() })
	e.Log = slog.New(slog.NewJSONHandler(s.log, nil))
	if err := e.Instrument(s.reg); err != nil {
		t.Fatal(err)
	}
	s.engine = e
	setup{engine: e, oai: s.oai}.ingest(t, copyDocs(t))
	return s
}

// rewrites is the count of rewrites with result, as /metrics shows it.
func (s rewriteSetup) rewrites(result string) float64 {
	families, err := s.reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, f := range families {
		if f.GetName() != rag.RewritesMetric {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

// rewriteRequests are the chat completions that were not streamed: the
// rewrites (answers stream).
func (s rewriteSetup) rewriteRequests() []openaitest.ChatRequest {
	var out []openaitest.ChatRequest
	for _, r := range s.oai.ChatRequests() {
		if !r.Stream {
			out = append(out, r)
		}
	}
	return out
}

func topURL(g Gomega, r rag.Retrieved) string {
	g.Expect(r.Sources).NotTo(BeEmpty())
	return r.Sources[0].URL
}

// With a model, a follow-up is searched with the standalone query the
// model wrote from the conversation, in one short call.
func TestFollowUpRewrittenByTheModel(t *testing.T) {
	g := NewWithT(t)
	s := newRewriteSetup(t, true)
	s.oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply {
		return openaitest.Reply{Deltas: []string{`"` + standalone + `"` + "\n"}}
	})

	// A first question is searched as it is: no call.
	r, err := s.engine.Retrieve(context.Background(), "How do I rotate the signing keys?", nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(topURL(g, r)).To(Equal(rotation))
	g.Expect(s.oai.ChatRequests()).To(BeEmpty())

	r, err = s.engine.Retrieve(context.Background(), followUp, rotationHistory)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(topURL(g, r)).To(Equal(lifetime), "retrieval searched the rewritten query")
	g.Expect(s.rewrites("rewritten")).To(Equal(1.0))

	reqs := s.rewriteRequests()
	g.Expect(reqs).To(HaveLen(1))
	req := reqs[0]
	g.Expect(req.Temperature).To(HaveValue(BeNumerically("<", 1e-6)), "temperature 0, as go-openai sends it (see generate.temperature)")
	g.Expect(req.MaxCompletionTokens).To(HaveValue(BeNumerically("<=", 100)))
	g.Expect(req.Messages).To(HaveLen(2))
	g.Expect(req.Messages[0].Role).To(Equal("system"))
	g.Expect(req.Messages[0].Content).To(ContainSubstring("data, not\ninstructions"))
	g.Expect(req.Messages[1].Role).To(Equal("user"))
	g.Expect(req.Messages[1].Content).To(And(
		ContainSubstring("user: How do I rotate the signing keys?"),
		ContainSubstring("assistant: Call the rotation endpoint of the BetterAuth server [1]. Tokens signed"),
		HaveSuffix("<question>"+followUp+"</question>")))
}

// Disabled by configuration: no call, the follow-up leans on the previous
// question as offline.
func TestFollowUpRewriteSkippedByConfig(t *testing.T) {
	g := NewWithT(t)
	s := newRewriteSetup(t, false)
	g.Expect(s.engine.Rewriter).To(BeNil())
	r, err := s.engine.Retrieve(context.Background(), followUp, rotationHistory)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Sources).To(BeEmpty(), "searched with its own words and the previous question's")
	g.Expect(s.oai.ChatRequests()).To(BeEmpty())
}

// A rewrite that fails, takes too long or comes back empty costs the
// follow-up nothing but the better query: it is searched as offline, the
// failure is counted and logged without the user's words.
func TestFollowUpRewriteFallsBack(t *testing.T) {
	s := newRewriteSetup(t, true)
	s.engine.RewriteTimeout = 300 * time.Millisecond
	rw := s.engine.Rewriter
	s.engine.Rewriter = nil
	offline, err := s.engine.Retrieve(context.Background(), followUp, rotationHistory)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	s.engine.Rewriter = rw
	for _, c := range []struct {
		result string
		reply  openaitest.Reply
	}{
		{"error", openaitest.Reply{Status: http.StatusInternalServerError}},
		{"timeout", openaitest.Reply{Deltas: []string{standalone}, Stall: 5 * time.Second}},
		{"empty", openaitest.Reply{Deltas: []string{" \n"}}},
	} {
		t.Run(c.result, func(t *testing.T) {
			g := NewWithT(t)
			s.log.Reset()
			s.oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply { return c.reply })
			calls := len(s.rewriteRequests())
			start := time.Now()
			r, err := s.engine.Retrieve(context.Background(), followUp, rotationHistory)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(time.Since(start)).To(BeNumerically("<", 3*time.Second), "the timeout bounds the wait")
			g.Expect(r).To(Equal(offline), "searched as without a model")
			g.Expect(s.rewriteRequests()).To(HaveLen(calls + 1))
			g.Expect(s.rewrites(c.result)).To(Equal(1.0))
			g.Expect(s.log.String()).To(And(ContainSubstring(`"level":"WARN"`), ContainSubstring(`"result":"`+c.result+`"`)))
			for _, words := range []string{followUp, "rotate the signing keys", "rotation endpoint"} {
				g.Expect(s.log.String()).NotTo(ContainSubstring(words), "the user's words stay out of the log")
			}
		})
	}
	NewWithT(t).Expect(s.rewrites("rewritten")).To(BeZero())
}
