package rag_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/rag"
	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
	"github.com/chatbackend/chatbackend/apiserver/rag/generate"
	"github.com/chatbackend/chatbackend/internal/openaitest"
)

// answers streams n answers at once, each long enough (two paced deltas)
// for them all to be open together.
func answers(t *testing.T, g generate.Generator, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := g.Generate(ctx, generate.Request{Question: "How do I rotate the signing keys?"},
				func(string) error { return nil })
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A wave of concurrent answers leaves its connections to the model server
// open for the next wave: with http.DefaultTransport (2 idle per host) the
// second wave dialed all but two of its connections again.
func TestConcurrentAnswersReuseTheModelConnections(t *testing.T) {
	g := NewWithT(t)
	const wave = 20
	oai := openaitest.Start(t)
	oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply {
		return openaitest.Reply{Deltas: []string{"The answer ", "is in the docs [1]."}, Delay: 100 * time.Millisecond}
	})
	gen, err := rag.NewGenerator(rag.Config{OpenAIAPIKey: openaitest.APIKey, OpenAIBaseURL: oai.URL, ModelConns: wave})
	g.Expect(err).NotTo(HaveOccurred())

	answers(t, gen, wave)
	first := oai.Conns()
	g.Expect(first).To(BeNumerically("<=", wave))
	answers(t, gen, wave)
	g.Expect(oai.Conns()-first).To(BeNumerically("<=", 2), "the second wave reused the first one's connections")
}

// The embedder, the rewrites and the answers of one engine share their
// connections: rewriting a follow-up, searching it and answering one
// after the other go over one connection; with a client each, the search
// dialed one of its own. Counted by the requests' client addresses, not
// by the connections dialed: whether ingest's connection is still open
// must not change the count.
func TestEngineSharesOneConnectionPool(t *testing.T) {
	g := NewWithT(t)
	s := newRewriteSetup(t, true)
	s.oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply {
		return openaitest.Reply{Deltas: []string{`"` + standalone + `"` + "\n"}}
	})
	before := len(s.oai.Peers())
	r, err := s.engine.Retrieve(context.Background(), followUp, rotationHistory)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.rewrites("rewritten")).To(Equal(1.0))
	_, err = s.engine.Generator.Generate(context.Background(), generate.Request{Question: followUp, Passages: r.Passages},
		func(string) error { return nil })
	g.Expect(err).NotTo(HaveOccurred())
	peers := s.oai.Peers()[before:]
	g.Expect(peers).To(HaveLen(3), "the rewrite, the search's embedding and the answer")
	g.Expect(peers).To(HaveEach(peers[0]))
}

// An answer's connection is kept when the model server ends its response
// a moment after [DONE], as uvicorn's servers do: the stream stops
// reading at [DONE], and a body closed before its end cost the
// connection, so each answer dialed a new one.
func TestAnswersReuseTheConnectionAfterALateEnd(t *testing.T) {
	g := NewWithT(t)
	oai := openaitest.Start(t)
	oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply {
		return openaitest.Reply{Deltas: []string{"The answer ", "is in the docs [1]."}, Linger: 5 * time.Millisecond}
	})
	gen, err := rag.NewGenerator(rag.Config{OpenAIAPIKey: openaitest.APIKey, OpenAIBaseURL: oai.URL, ModelConns: 4})
	g.Expect(err).NotTo(HaveOccurred())
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := gen.Generate(ctx, generate.Request{Question: followUp}, func(string) error { return nil })
		cancel()
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(oai.Conns()).To(Equal(int64(1)))
}

// A model server that holds its response open after [DONE] does not hold
// the answer's end: the drain gives up after modelDrainWait.
func TestAnAnswerDoesNotWaitForAResponseHeldOpen(t *testing.T) {
	g := NewWithT(t)
	oai := openaitest.Start(t)
	oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply {
		return openaitest.Reply{Deltas: []string{"The answer ", "is in the docs [1]."}, Linger: time.Minute}
	})
	gen, err := rag.NewGenerator(rag.Config{OpenAIAPIKey: openaitest.APIKey, OpenAIBaseURL: oai.URL, ModelConns: 4})
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	res, err := gen.Generate(ctx, generate.Request{Question: followUp}, func(string) error { return nil })
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Text).To(Equal("The answer is in the docs [1]."))
	g.Expect(ctx.Err()).NotTo(HaveOccurred(), "the drain's own bound ended it, not the test's deadline")
	g.Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
}

// Closing a stream cut mid-answer (the user went away: its context is
// cancelled) does not wait in the drain for a body the model server is
// still writing.
func TestACancelledAnswerDoesNotWaitForTheDrain(t *testing.T) {
	g := NewWithT(t)
	oai := openaitest.Start(t)
	oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply {
		return openaitest.Reply{Deltas: []string{"The answer ", "is in the docs [1]."}, Stall: time.Minute, StallAt: 1}
	})
	gen, err := rag.NewGenerator(rag.Config{OpenAIAPIKey: openaitest.APIKey, OpenAIBaseURL: oai.URL, ModelConns: 4})
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := gen.Generate(ctx, generate.Request{Question: followUp}, func(string) error {
			cancel() // the first token reached the user, who went away
			return nil
		})
		done <- err
	}()
	select {
	case err := <-done:
		g.Expect(err).To(MatchError(context.Canceled))
	case <-time.After(10 * time.Second):
		t.Fatal("Generate still waiting 10 s after its context was cancelled")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// go-openai's requests can be sent again (GetBody is set: their bodies are
// byte buffers): that lets the Transport resend one that met a kept-alive
// connection the model server had closed before a byte of it was written
// (see modelIdleConnTimeout).
func TestModelRequestsCanBeResent(t *testing.T) {
	g := NewWithT(t)
	oai := openaitest.Start(t)
	var sent, resendable atomic.Int64
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent.Add(1)
		if r.GetBody != nil {
			resendable.Add(1)
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	gen, err := generate.NewOpenAI(generate.OpenAIOptions{APIKey: openaitest.APIKey, BaseURL: oai.URL, HistoryTokens: 100,
		HTTPClient: client})
	g.Expect(err).NotTo(HaveOccurred())
	emb, err := embed.NewOpenAI(embed.OpenAIOptions{APIKey: openaitest.APIKey, BaseURL: oai.URL, HTTPClient: client})
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()

	_, err = gen.Rewrite(ctx, followUp, rotationHistory)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = emb.Embed(ctx, []string{followUp})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = gen.Generate(ctx, generate.Request{Question: followUp}, func(string) error { return nil })
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sent.Load()).To(Equal(int64(3)))
	g.Expect(resendable.Load()).To(Equal(int64(3)))
}
