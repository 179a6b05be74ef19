package chat_test

// The turn as the service runs it, on a real PostgreSQL with the test docs
// ingested and the offline (extractive) generator: what is stored, and how
// a turn that did not complete is reported.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatbackend/chatbackend/apiserver/chat"
	"github.com/chatbackend/chatbackend/apiserver/dependency"
	"github.com/chatbackend/chatbackend/apiserver/rag"
	"github.com/chatbackend/chatbackend/apiserver/rag/chunk"
	"github.com/chatbackend/chatbackend/apiserver/rag/generate"
	"github.com/chatbackend/chatbackend/apiserver/rag/ingest"
	"github.com/chatbackend/chatbackend/apiserver/store"
	"github.com/chatbackend/chatbackend/apiserver/store/storetest"
	"github.com/chatbackend/chatbackend/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newService(t *testing.T) (*chat.Service, *store.Store) {
	t.Helper()
	svc, st, _ := newServiceAndEngine(t)
	return svc, st
}

// newServiceAndEngine is newService that also returns the engine, whose
// generator a test may swap.
func newServiceAndEngine(t *testing.T) (*chat.Service, *store.Store, *rag.Engine) {
	t.Helper()
	ctx := context.Background()
	pool := storetest.Open(t)
	engine, closeEngine, err := rag.New(rag.Config{TopK: 3}, pool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeEngine() })
	if _, err := ingest.Run(ctx, ingest.Options{
		Sources: []ingest.Source{ingest.Docs("", "../rag/testdata/docs", chunk.Options{SiteURL: "https://docs.acme.example"})}, Embedder: engine.Embedder, Store: engine.Store}); err != nil {
		t.Fatal(err)
	}
	st := store.New(pool)
	if err := st.SyncUser(ctx, "alice", "alice@example.com", "Alice"); err != nil {
		t.Fatal(err)
	}
	return chat.New(st, engine, nil), st, engine
}

// recorder is a Sink that records events and, with failAfter > 0, fails
// from that delta on, as a client that went away.
type recorder struct {
	events    []string
	deltas    int
	failAfter int
}

func (r *recorder) Started(chat.Started) error { r.events = append(r.events, "started"); return nil }
func (r *recorder) Sources([]rag.Source) error { r.events = append(r.events, "sources"); return nil }
func (r *recorder) Delta(string) error {
	r.deltas++
	if r.failAfter > 0 && r.deltas >= r.failAfter {
		return errors.New("client gone")
	}
	return nil
}

func TestRunStartsAConversationAndStoresTheTurn(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	svc, st := newService(t)

	turn, err := svc.Run(ctx, "alice", "", "  How do I rotate the signing keys?  ", chat.Discard)
	g.Expect(err).NotTo(HaveOccurred())
	conv, err := st.GetConversation(ctx, "alice", turn.ConversationID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(conv.Title).To(Equal("How do I rotate the signing keys?"), "titled from the trimmed question")
	g.Expect(turn.Question.Content).To(Equal("How do I rotate the signing keys?"))
	g.Expect(turn.Answer.Status).To(Equal(store.StatusComplete))
	g.Expect(turn.Answer.Content).NotTo(BeEmpty())
	g.Expect(turn.Sources).NotTo(BeEmpty())
	g.Expect(turn.Grounded).To(BeTrue())

	page, err := st.ListMessages(ctx, "alice", turn.ConversationID, 10, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(page.Items).To(HaveLen(2))
	g.Expect(page.Items[1].ID).To(Equal(turn.Answer.ID))
	g.Expect(page.Items[1].Model).To(Equal(generate.ExtractiveModel))

	// A refused question stores nothing, not even a conversation.
	_, err = svc.Run(ctx, "alice", "", strings.Repeat("x", chat.MaxQuestionChars+1), chat.Discard)
	var invalid *chat.InvalidError
	g.Expect(errors.As(err, &invalid)).To(BeTrue(), "%v", err)
	convs, err := st.ListConversations(ctx, "alice", 10, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(convs.Items).To(HaveLen(1))
}

// A question the docs do not cover is answered as such: no source cited,
// not grounded, and the stored answer cites nothing either.
func TestRunAbstainsWhenTheDocsDoNotCoverTheQuestion(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	svc, st := newService(t)
	turn, err := svc.Run(ctx, "alice", "", "How do I configure Acme with LDAP login for Kubernetes?", chat.Discard)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(turn.Grounded).To(BeFalse())
	g.Expect(turn.Reason).To(Equal(chat.ReasonNotCovered))
	g.Expect(turn.Sources).To(BeEmpty())
	g.Expect(turn.Answer.Content).To(ContainSubstring(generate.NotCovered))
	page, err := st.ListMessages(ctx, "alice", turn.ConversationID, 10, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(page.Items[1].Sources)).To(Equal("[]"))
}

func TestAskWhenTheClientGoesAwayStoresAnIncompleteAnswer(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	svc, st := newService(t)
	conv, err := st.CreateConversation(ctx, "alice", "")
	g.Expect(err).NotTo(HaveOccurred())

	sink := &recorder{failAfter: 3}
	turn, err := svc.Ask(ctx, "alice", conv.ID, "How do I rotate the signing keys?", nil, sink)
	g.Expect(err).To(MatchError(chat.ErrClientGone))
	g.Expect(sink.events).To(Equal([]string{"started", "sources"}))
	g.Expect(sink.deltas).To(Equal(3), "generation stops at the first failed delta")
	g.Expect(turn.Answer.Status).To(Equal(store.StatusIncomplete))
	g.Expect(strings.Fields(turn.Answer.Content)).To(HaveLen(2), "what was streamed before the client left")

	// Neither a foreign conversation nor a malformed id stores anything.
	_, err = svc.Ask(ctx, "bob", conv.ID, "mine now?", nil, chat.Discard)
	g.Expect(err).To(MatchError(store.ErrNotFound))
	_, err = svc.Ask(ctx, "alice", "not-a-uuid", "hello", nil, chat.Discard)
	g.Expect(err).To(MatchError(store.ErrNotFound))
	page, err := st.ListMessages(ctx, "alice", conv.ID, 10, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(page.Items).To(HaveLen(2))
}

// TestAnswersAndDependenciesAreCounted: a streamed answer has sent 200
// before the model fails, so chatbackend_chat_answers_total counts how
// answers end, and each turn's retrieval and generation set
// chatbackend_dependency_up. The model is a fake OpenAI endpoint (at the
// wire) that refuses every request.
func TestAnswersAndDependenciesAreCounted(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	svc, _, engine := newServiceAndEngine(t)
	reg := prometheus.NewRegistry()
	deps, err := dependency.New(reg)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(svc.Instrument(reg, deps)).To(Succeed())

	_, err = svc.Run(ctx, "alice", "", "How do I rotate the signing keys?", chat.Discard)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(answers(g, reg)).To(Equal(map[string]float64{"complete": 1, "incomplete": 0, "failed": 0, "stopped": 0}))
	g.Expect(dependencies(g, reg)).To(Equal(map[string]float64{"vector_store": 1, "llm": 1}))

	fakeOpenAI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":{"message":"model overloaded","type":"invalid_request_error"}}`))
	}))
	t.Cleanup(fakeOpenAI.Close)
	engine.Generator, err = rag.NewGenerator(rag.Config{OpenAIAPIKey: "sk-test", OpenAIBaseURL: fakeOpenAI.URL + "/v1", OpenAIChatModel: "gpt-test"})
	g.Expect(err).NotTo(HaveOccurred())
	turn, err := svc.Run(ctx, "alice", "", "How do I rotate the signing keys?", chat.Discard)
	g.Expect(err).To(MatchError(chat.ErrModelFailed))
	g.Expect(turn.Answer.Status).To(Equal(store.StatusFailed))
	g.Expect(answers(g, reg)).To(Equal(map[string]float64{"complete": 1, "incomplete": 0, "failed": 1, "stopped": 0}))
	g.Expect(dependencies(g, reg)).To(Equal(map[string]float64{"vector_store": 1, "llm": 0}))
}

// answers and dependencies read the service's metrics by label value.
func answers(g Gomega, reg *prometheus.Registry) map[string]float64 {
	return byLabel(g, reg, chat.AnswersMetric)
}

func dependencies(g Gomega, reg *prometheus.Registry) map[string]float64 {
	return byLabel(g, reg, dependency.MetricName)
}

func byLabel(g Gomega, reg *prometheus.Registry, name string) map[string]float64 {
	mfs, err := reg.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out[m.GetLabel()[0].GetValue()] = v
		}
	}
	return out
}
