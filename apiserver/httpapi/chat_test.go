package httpapi_test

// Tests of the RAG chat routes (owned by the rag engineer): a real
// PostgreSQL and BetterAuth (newEnv), the docs of rag/testdata ingested into
// the PostgreSQL vector store, and the fake OpenAI server for the model.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/chat"
	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/httpapi"
	"github.com/chatbackend/chatbackend/apiserver/rag"
	"github.com/chatbackend/chatbackend/apiserver/rag/chunk"
	"github.com/chatbackend/chatbackend/apiserver/rag/generate"
	"github.com/chatbackend/chatbackend/apiserver/rag/ingest"
	"github.com/chatbackend/chatbackend/apiserver/store"
	"github.com/chatbackend/chatbackend/internal/openaitest"
)

const docsSite = "https://docs.acme.example"

const authSectionURL = docsSite + "/docs/guides/auth-guide#signing-key-rotation"

// withChat gives the router a chat service on an engine over the env's
// database, with the test docs ingested; oai nil means offline (extractive
// answers).
func withChat(t *testing.T, oai *openaitest.Server) option {
	return func(e *env, d *httpapi.Deps) {
		cfg := rag.Config{TopK: 3, HistoryTokens: config.DefaultHistoryTokens}
		if oai != nil {
			cfg.OpenAIAPIKey, cfg.OpenAIBaseURL, cfg.QueryRewrite = openaitest.APIKey, oai.URL, true
		}
		engine, closeStore, err := rag.New(cfg, e.pool)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = closeStore() })
		if _, err := ingest.Run(context.Background(), ingest.Options{
			Sources:  []ingest.Source{ingest.Docs("", "../rag/testdata/docs", chunk.Options{SiteURL: docsSite})},
			Embedder: engine.Embedder, Store: engine.Store,
		}); err != nil {
			t.Fatal(err)
		}
		d.Chat = chat.New(d.Store, engine, d.Logger)
	}
}

func withRateLimit(perMinute float64, burst int) option {
	return func(_ *env, d *httpapi.Deps) { d.ChatRateLimit = httpapi.RateLimit{PerMinute: perMinute, Burst: burst} }
}

func withHeartbeat(every time.Duration) option {
	return func(_ *env, d *httpapi.Deps) { d.Heartbeat = every }
}

// listedStatus is the status GET .../messages reports for a message: what a
// client sees after a reload.
func (e *env) listedStatus(token, conversationID, messageID string) string {
	e.t.Helper()
	r := e.do(http.MethodGet, "/v1/conversations/"+conversationID+"/messages", token, nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("list messages: %d %s", r.status, r.body)
	}
	for _, m := range r.json()["items"].([]any) {
		if m := m.(map[string]any); m["id"] == messageID {
			return m["status"].(string)
		}
	}
	e.t.Fatalf("message %s not listed in %s", messageID, r.body)
	return ""
}

type sseEvent struct {
	name string
	data map[string]any
}

// readSSE reads events until the stream ends; comments are returned as
// events named ":".
func readSSE(t *testing.T, res *http.Response) []sseEvent {
	t.Helper()
	var out []sseEvent
	sc := bufio.NewScanner(res.Body)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ":"):
			out = append(out, sseEvent{name: ":"})
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data); err != nil {
				t.Fatalf("bad SSE data %q: %v", line, err)
			}
		case line == "" && ev.name != "":
			out = append(out, ev)
			ev = sseEvent{}
		}
	}
	return out
}

func names(evs []sseEvent) []string {
	var out []string
	for _, e := range withoutHeartbeats(evs) {
		out = append(out, e.name)
	}
	return out
}

// withoutHeartbeats drops the ":" keep-alive comments, which may land
// anywhere in a stream on a loaded machine, so events can be indexed.
func withoutHeartbeats(evs []sseEvent) []sseEvent {
	var out []sseEvent
	for _, e := range evs {
		if e.name != ":" {
			out = append(out, e)
		}
	}
	return out
}

func (e *env) stream(ctx context.Context, path, token, body string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func (e *env) newConversation(token string) string {
	e.t.Helper()
	r := e.do(http.MethodPost, "/v1/conversations", token, str(`{"title":"t"}`))
	if r.status != http.StatusCreated {
		e.t.Fatalf("create conversation: %d %s", r.status, r.body)
	}
	return r.json()["id"].(string)
}

type storedMessage struct {
	Role, Content, Status, AgentType, Model string
	PromptTokens, CompletionTokens          int64
}

func (e *env) storedMessages(conversationID string) []storedMessage {
	e.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT role, content, status, agent_type, model, prompt_tokens, completion_tokens
FROM messages WHERE conversation_id = $1 ORDER BY created_at, id`, conversationID)
	if err != nil {
		e.t.Fatal(err)
	}
	ms, err := pgx.CollectRows(rows, pgx.RowToStructByPos[storedMessage])
	if err != nil {
		e.t.Fatal(err)
	}
	return ms
}

// TestChatOnline shares one server (real PostgreSQL and BetterAuth, fake
// OpenAI) between its subtests, since starting BetterAuth takes seconds.
func TestChatOnline(t *testing.T) {
	oai := openaitest.Start(t)
	e := newEnv(t, withChat(t, oai), withHeartbeat(50*time.Millisecond))
	t.Run("events in order, turn stored", func(t *testing.T) { streamsEventsInOrder(t, e, oai) })
	t.Run("heartbeat", func(t *testing.T) { heartbeats(t, e, oai) })
	t.Run("client disconnect", func(t *testing.T) { clientDisconnect(t, e, oai) })
	t.Run("explicit stop", func(t *testing.T) { explicitStop(t, e, oai) })
	t.Run("upstream failures", func(t *testing.T) { upstreamFailures(t, e, oai) })
}

func streamsEventsInOrder(t *testing.T, e *env, oai *openaitest.Server) {
	g := NewWithT(t)
	oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply {
		return openaitest.Reply{Deltas: []string{"Call the ", "rotation endpoint ", "[1]."}, PromptTokens: 120, CompletionTokens: 9}
	})
	_, token := e.user("streamer@example.com", "Streamer")
	conv := e.newConversation(token)

	res := e.stream(context.Background(), "/v1/conversations/"+conv+"/messages", token, `{"content":"How do I rotate the signing keys?"}`)
	defer res.Body.Close()
	g.Expect(res.StatusCode).To(Equal(http.StatusOK))
	g.Expect(res.Header.Get("Content-Type")).To(HavePrefix("text/event-stream"))
	evs := withoutHeartbeats(readSSE(t, res))
	g.Expect(names(evs)).To(Equal([]string{"message_start", "sources", "delta", "delta", "delta", "done"}))

	start := evs[0].data
	g.Expect(start["conversation_id"]).To(Equal(conv))
	g.Expect(start["user_message_id"]).NotTo(BeEmpty())
	sources := evs[1].data["sources"].([]any)
	g.Expect(sources).NotTo(BeEmpty())
	g.Expect(sources[0].(map[string]any)["url"]).To(Equal(authSectionURL))
	done := evs[5].data["message"].(map[string]any)
	g.Expect(done["id"]).To(Equal(start["message_id"]))
	g.Expect(done["content"]).To(Equal("Call the rotation endpoint [1]."))
	g.Expect(done["status"]).To(Equal("complete"))
	g.Expect(done["agent_type"]).To(Equal("rag"))
	g.Expect(done["usage"]).To(Equal(map[string]any{"prompt_tokens": 120.0, "completion_tokens": 9.0, "total_tokens": 129.0}))
	g.Expect(done["sources"].([]any)[0].(map[string]any)["url"]).To(Equal(authSectionURL))

	g.Expect(e.storedMessages(conv)).To(Equal([]storedMessage{
		{Role: "user", Content: "How do I rotate the signing keys?", Status: "complete"},
		{Role: "assistant", Content: "Call the rotation endpoint [1].", Status: "complete", AgentType: "rag",
			Model: "gpt-4o-mini", PromptTokens: 120, CompletionTokens: 9},
	}))

	// The model got the passages; the next question goes with the history.
	reqs := oai.ChatRequests()
	first := reqs[len(reqs)-1]
	g.Expect(first.Messages[0].Role).To(Equal("system"))
	g.Expect(first.Messages[0].Content).To(ContainSubstring(authSectionURL))
	oai.SetReply(func(req openaitest.ChatRequest) openaitest.Reply {
		if !req.Stream { // the follow-up's rewrite
			return openaitest.Reply{Deltas: []string{"How long do access tokens live before they expire?"}}
		}
		return openaitest.Reply{Deltas: []string{"Fifteen minutes [1]."}}
	})
	r := e.do(http.MethodPost, "/v1/conversations/"+conv+"/messages", token, str(`{"content":"And how long do they live?"}`))
	g.Expect(r.status).To(Equal(http.StatusOK), string(r.body))
	reqs = oai.ChatRequests()
	g.Expect(reqs[len(reqs)-2].Stream).To(BeFalse(), "the follow-up was rewritten first")
	g.Expect(reqs[len(reqs)-2].Messages[1].Content).To(ContainSubstring("How do I rotate the signing keys?"))
	// Retrieval searched the rewrite; the model is asked the user's question.
	g.Expect(r.json()["message"].(map[string]any)["sources"].([]any)[0].(map[string]any)["url"]).To(Equal(docsSite + "/docs/guides/auth-guide#token-lifetime"))
	last := reqs[len(reqs)-1].Messages
	var roles []string
	for _, m := range last {
		roles = append(roles, m.Role)
	}
	g.Expect(roles).To(Equal([]string{"system", "user", "assistant", "user"}))
	g.Expect(last[1].Content).To(Equal("How do I rotate the signing keys?"))
	g.Expect(last[3].Content).To(Equal("And how long do they live?"))
	body := r.json()
	g.Expect(body["user_message"].(map[string]any)["content"]).To(Equal("And how long do they live?"))
	g.Expect(body["message"].(map[string]any)["status"]).To(Equal("complete"))
}

// TestChatOffline: no model configured (offline embedder, extractive answers).
func TestChatOffline(t *testing.T) {
	e := newEnv(t, withChat(t, nil))
	t.Run("agents run", func(t *testing.T) { agentsRun(t, e) })
	t.Run("feedback ownership", func(t *testing.T) { feedbackOwnership(t, e) })
	t.Run("regenerate", func(t *testing.T) { regenerate(t, e) })
}

// Regenerating an answer answers its question again as a new message: the
// old answer stays as it was, the question is not stored twice; only the
// answer's owner can, and not while it streams.
func regenerate(t *testing.T, e *env) {
	g := NewWithT(t)
	aliceID, alice := e.user("alice.regen@example.com", "Alice")
	_, bob := e.user("bob.regen@example.com", "Bob")
	conv := e.newConversation(alice)
	r := e.do(http.MethodPost, "/v1/conversations/"+conv+"/messages", alice, str(`{"content":"How do I rotate the signing keys?"}`))
	g.Expect(r.status).To(Equal(http.StatusOK), string(r.body))
	question := r.json()["user_message"].(map[string]any)
	old := r.json()["message"].(map[string]any)
	path := "/v1/conversations/" + conv + "/messages/" + old["id"].(string) + "/regenerate"

	r = e.do(http.MethodPost, path, alice, nil)
	g.Expect(r.status).To(Equal(http.StatusOK), string(r.body))
	b := r.json()
	again := b["message"].(map[string]any)
	g.Expect(again["id"]).NotTo(Equal(old["id"]))
	g.Expect(b["user_message"]).To(Equal(question), "the question as it was stored")
	g.Expect(again["content"]).To(ContainSubstring("rotation endpoint"))
	g.Expect(b["grounded"]).To(BeTrue())

	// Streamed: message_start names the question it answers again.
	res := e.stream(context.Background(), path, alice, "")
	defer res.Body.Close()
	evs := withoutHeartbeats(readSSE(t, res))
	g.Expect(names(evs)[0]).To(Equal("message_start"))
	g.Expect(evs[0].data["user_message_id"]).To(Equal(question["id"]))
	g.Expect(names(evs)[len(evs)-1]).To(Equal("done"))

	ms := e.storedMessages(conv)
	g.Expect(ms).To(HaveLen(4), "one question, the old answer and two new ones")
	g.Expect(ms[0].Role).To(Equal("user"))
	g.Expect(ms[1].Content).To(Equal(old["content"]), "the old answer is kept as it was")
	g.Expect([]string{ms[2].Role, ms[3].Role}).To(Equal([]string{"assistant", "assistant"}))

	g.Expect(e.do(http.MethodPost, path, bob, nil).status).To(Equal(http.StatusNotFound), "another user's answer")
	g.Expect(e.do(http.MethodPost, "/v1/conversations/"+conv+"/messages/"+question["id"].(string)+"/regenerate", alice, nil).status).
		To(Equal(http.StatusNotFound), "a question is not an answer")
	g.Expect(e.do(http.MethodPost, "/v1/conversations/"+conv+"/messages/nope/regenerate", alice, nil).status).
		To(Equal(http.StatusNotFound))

	streaming, err := e.store.AddMessages(context.Background(), aliceID, conv,
		store.NewMessage{Role: store.RoleAssistant, Status: store.StatusStreaming})
	g.Expect(err).NotTo(HaveOccurred())
	r = e.do(http.MethodPost, "/v1/conversations/"+conv+"/messages/"+streaming[0].ID+"/regenerate", alice, nil)
	g.Expect(r.status).To(Equal(http.StatusConflict), string(r.body))
	g.Expect(errorCode(g, r)).To(Equal("conflict"))
}

func agentsRun(t *testing.T, e *env) {
	g := NewWithT(t)
	_, token := e.user("widget@example.com", "Widget")

	r := e.do(http.MethodPost, "/agents/run", token, str(`{"question":"How do I rotate the signing keys?"}`))
	g.Expect(r.status).To(Equal(http.StatusOK), string(r.body))
	b := r.json()
	conv := b["conversation_id"].(string)
	g.Expect(b["message_id"]).NotTo(BeEmpty())
	g.Expect(b["answer"]).To(HavePrefix(generate.ExtractiveLabel))
	g.Expect(b["answer"]).To(ContainSubstring("rotation endpoint"))
	src := b["sources"].([]any)[0].(map[string]any)
	g.Expect(src["url"]).To(Equal(authSectionURL))
	g.Expect(src["title"]).To(Equal("Authentication › Signing key rotation"))
	g.Expect(src["snippet"]).To(ContainSubstring("rotate the signing keys"))
	g.Expect(src["score"]).To(BeNumerically(">", 0))

	got := e.do(http.MethodGet, "/v1/conversations/"+conv, token, nil)
	g.Expect(got.status).To(Equal(http.StatusOK))
	g.Expect(got.json()["title"]).To(Equal("How do I rotate the signing keys?"))

	// Continuing the same conversation.
	r = e.do(http.MethodPost, "/agents/run", token, str(fmt.Sprintf(`{"question":"Which port does Qdrant use?","conversation_id":%q}`, conv)))
	g.Expect(r.status).To(Equal(http.StatusOK), string(r.body))
	g.Expect(r.json()["conversation_id"]).To(Equal(conv))
	ms := e.storedMessages(conv)
	g.Expect(ms).To(HaveLen(4))
	g.Expect(ms[3].AgentType).To(Equal("rag-extractive"))

	// Streaming: the same events as posting a message, in a new
	// conversation whose id message_start carries.
	res := e.stream(context.Background(), "/agents/run", token, `{"question":"How do I rotate the signing keys?"}`)
	defer res.Body.Close()
	g.Expect(res.StatusCode).To(Equal(http.StatusOK))
	g.Expect(res.Header.Get("Content-Type")).To(HavePrefix("text/event-stream"))
	evs := withoutHeartbeats(readSSE(t, res))
	g.Expect(evs).To(HaveLen(len(names(evs))))
	g.Expect(names(evs)[:2]).To(Equal([]string{"message_start", "sources"}))
	g.Expect(names(evs)[len(evs)-1]).To(Equal("done"))
	streamedConv := evs[0].data["conversation_id"].(string)
	g.Expect(streamedConv).NotTo(Equal(conv))
	var streamed strings.Builder
	for _, ev := range evs[2 : len(evs)-1] {
		g.Expect(ev.name).To(Equal("delta"))
		streamed.WriteString(ev.data["text"].(string))
	}
	done := evs[len(evs)-1].data["message"].(map[string]any)
	g.Expect(done["content"]).To(Equal(streamed.String()))
	g.Expect(done["content"]).To(ContainSubstring("rotation endpoint"))
	g.Expect(e.storedMessages(streamedConv)).To(HaveLen(2))

	for _, bad := range []string{`{"question":"   "}`, `{"question":1}`, `{"question":"x","extra":1}`, `{"question":"` + strings.Repeat("a", 4001) + `"}`} {
		r := e.do(http.MethodPost, "/agents/run", token, str(bad))
		g.Expect(r.status).To(Equal(http.StatusBadRequest), bad[:min(len(bad), 40)])
		g.Expect(errorCode(g, r)).To(Equal("bad_request"))
	}
	r = e.do(http.MethodPost, "/agents/run", token, str(`{"question":"hi","conversation_id":"not-a-uuid"}`))
	g.Expect(r.status).To(Equal(http.StatusNotFound))
}

func upstreamFailures(t *testing.T, e *env, oai *openaitest.Server) {
	_, token := e.user("unlucky@example.com", "Unlucky")

	t.Run("model answers 500, streamed", func(t *testing.T) {
		g := NewWithT(t)
		oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply { return openaitest.Reply{Status: 500} })
		conv := e.newConversation(token)
		res := e.stream(context.Background(), "/v1/conversations/"+conv+"/messages", token, `{"content":"How do I rotate the signing keys?"}`)
		defer res.Body.Close()
		evs := withoutHeartbeats(readSSE(t, res))
		g.Expect(names(evs)).To(Equal([]string{"message_start", "sources", "error"}))
		g.Expect(evs[2].data["error"].(map[string]any)["code"]).To(Equal("upstream_error"))
		g.Expect(evs[2].data["message_id"]).To(Equal(evs[0].data["message_id"]))
		ms := e.storedMessages(conv)
		g.Expect(ms).To(HaveLen(2))
		g.Expect(ms[0]).To(Equal(storedMessage{Role: "user", Content: "How do I rotate the signing keys?", Status: "complete"}))
		g.Expect(ms[1].Role).To(Equal("assistant"))
		g.Expect(ms[1].Status).To(Equal("failed"))
		// After a reload the listing says so too: a failed answer does not
		// pass for a complete one.
		g.Expect(e.listedStatus(token, conv, evs[0].data["message_id"].(string))).To(Equal("failed"))
	})

	t.Run("stream cut mid-answer, JSON", func(t *testing.T) {
		g := NewWithT(t)
		oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply {
			return openaitest.Reply{Deltas: []string{"Partial ", "answer ", "never finished"}, AbortAfter: 2}
		})
		conv := e.newConversation(token)
		r := e.do(http.MethodPost, "/v1/conversations/"+conv+"/messages", token, str(`{"content":"How do I rotate the signing keys?"}`))
		g.Expect(r.status).To(Equal(http.StatusBadGateway))
		g.Expect(errorCode(g, r)).To(Equal("upstream_error"))
		ms := e.storedMessages(conv)
		g.Expect(ms).To(HaveLen(2))
		g.Expect(ms[0].Role).To(Equal("user"))
		g.Expect(ms[1].Status).To(Equal("failed"))
		g.Expect(ms[1].Content).To(Equal("Partial answer "))
	})

	t.Run("embeddings down", func(t *testing.T) {
		g := NewWithT(t)
		oai.FailEmbeddings(true)
		defer oai.FailEmbeddings(false)
		conv := e.newConversation(token)
		r := e.do(http.MethodPost, "/v1/conversations/"+conv+"/messages", token, str(`{"content":"anything"}`))
		g.Expect(r.status).To(Equal(http.StatusBadGateway))
		g.Expect(errorCode(g, r)).To(Equal("upstream_error"))
		ms := e.storedMessages(conv)
		g.Expect(ms).To(HaveLen(2))
		g.Expect(ms[0].Content).To(Equal("anything"))
		g.Expect(ms[1].Status).To(Equal("failed"))
	})
}

func clientDisconnect(t *testing.T, e *env, oai *openaitest.Server) {
	g := NewWithT(t)
	oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply {
		return openaitest.Reply{Deltas: openaitest.Deltas(strings.Repeat("slow words ", 50)), Delay: 50 * time.Millisecond}
	})
	_, token := e.user("leaver@example.com", "Leaver")
	conv := e.newConversation(token)

	ctx, cancel := context.WithCancel(context.Background())
	res := e.stream(ctx, "/v1/conversations/"+conv+"/messages", token, `{"content":"How do I rotate the signing keys?"}`)
	sc := bufio.NewScanner(res.Body)
	deltas := 0
	var answerID string
	for sc.Scan() && deltas < 3 {
		if sc.Text() == "event: delta" {
			deltas++
		}
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok && answerID == "" {
			var start struct {
				MessageID string `json:"message_id"`
			}
			_ = json.Unmarshal([]byte(data), &start)
			answerID = start.MessageID
		}
	}
	cancel()
	res.Body.Close()

	// The answer is stored as streaming from the start, then as incomplete.
	g.Eventually(func() string { return e.answerStatus(conv) }).WithTimeout(10 * time.Second).Should(Equal("incomplete"))
	ms := e.storedMessages(conv)
	g.Expect(ms[0]).To(Equal(storedMessage{Role: "user", Content: "How do I rotate the signing keys?", Status: "complete"}))
	g.Expect(ms[1].Content).To(HavePrefix("slow words slow"))
	g.Expect(e.listedStatus(token, conv, answerID)).To(Equal("incomplete"), "listed as cut off after a reload")
	g.Expect(len(ms[1].Content)).To(BeNumerically("<", len(strings.Repeat("slow words ", 50))))
}

// TestLoneDeltaIsSentAtOnce: deltas are flushed when the model has
// nothing more for now, so that ones read together go out together, but a
// delta with no other behind it must not wait for one: the client reads the first word
// while the model is still silent (the answer still streaming), not when
// the turn ends or the next heartbeat (none within the test) flushes it.
func TestLoneDeltaIsSentAtOnce(t *testing.T) {
	g := NewWithT(t)
	oai := openaitest.Start(t)
	e := newEnv(t, withChat(t, oai), withHeartbeat(time.Hour))
	oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply {
		return openaitest.Reply{Deltas: []string{"first ", "second"}, Stall: time.Minute, StallAt: 1}
	})
	_, token := e.user("lone@example.com", "Lone")
	conv := e.newConversation(token)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := e.stream(ctx, "/v1/conversations/"+conv+"/messages", token, `{"content":"How do I rotate the signing keys?"}`)
	defer res.Body.Close()
	got := make(chan string, 1)
	go func(body io.Reader) {
		sc := bufio.NewScanner(body)
		for sc.Scan() {
			if sc.Text() == "event: delta" && sc.Scan() {
				got <- sc.Text()
				return
			}
		}
		close(got)
	}(res.Body)
	var delta string
	g.Eventually(got).WithTimeout(20 * time.Second).Should(Receive(&delta))
	g.Expect(delta).To(Equal(`data: {"text":"first "}`))
	g.Expect(e.answerStatus(conv)).To(Equal("streaming"), "the model has not sent its next token yet")

	cancel()
	g.Eventually(func() string { return e.answerStatus(conv) }).WithTimeout(10 * time.Second).Should(Equal("incomplete"))
}

// TestDeltaEventsCarryTheTextExactly: each delta event's data is the
// JSON of {"text": delta}, as json.Marshal writes it (HTML characters
// escaped), one line whatever the text holds; a short delta after a long
// one carries nothing of it.
func TestDeltaEventsCarryTheTextExactly(t *testing.T) {
	g := NewWithT(t)
	oai := openaitest.Start(t)
	e := newEnv(t, withChat(t, oai))
	deltas := []string{"<b>&amp;</b> \"quoted\"\n", "line\u2028sep\ttab\\", strings.Repeat("long ", 900), "é", "x"}
	oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply { return openaitest.Reply{Deltas: deltas} })
	_, token := e.user("exact@example.com", "Exact")
	conv := e.newConversation(token)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res := e.stream(ctx, "/v1/conversations/"+conv+"/messages", token, `{"content":"How do I rotate the signing keys?"}`)
	defer res.Body.Close()
	var got []string
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if sc.Text() == "event: delta" && sc.Scan() {
			got = append(got, sc.Text())
		}
	}
	g.Expect(sc.Err()).NotTo(HaveOccurred())
	want := make([]string, len(deltas))
	for i, d := range deltas {
		b, err := json.Marshal(map[string]string{"text": d})
		g.Expect(err).NotTo(HaveOccurred())
		want[i] = "data: " + string(b)
	}
	g.Expect(got).To(Equal(want))
}

// answerStatus is the stored status of the conversation's second message
// (the first answer), "" before it is stored.
func (e *env) answerStatus(conv string) string {
	if ms := e.storedMessages(conv); len(ms) >= 2 {
		return ms[1].Status
	}
	return ""
}

// explicitStop: the owner stops an answer mid-stream; the stream ends with
// done, the answer stored as stopped with exactly the text streamed. The
// stop goes through the database only (the streaming turn polls its row),
// so it works from any replica. Another user's stop is 404, stopping a
// finished answer 409.
func explicitStop(t *testing.T, e *env, oai *openaitest.Server) {
	g := NewWithT(t)
	full := strings.Repeat("slow words ", 200)
	oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply {
		return openaitest.Reply{Deltas: openaitest.Deltas(full), Delay: 50 * time.Millisecond}
	})
	_, token := e.user("stopper@example.com", "Stopper")
	_, other := e.user("meddler@example.com", "Meddler")
	conv := e.newConversation(token)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := e.stream(ctx, "/v1/conversations/"+conv+"/messages", token, `{"content":"How do I rotate the signing keys?"}`)
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	var start map[string]any
	var streamed strings.Builder
	for streamed.Len() == 0 {
		line, err := br.ReadString('\n')
		g.Expect(err).NotTo(HaveOccurred(), "the stream ended before the first delta")
		data, ok := strings.CutPrefix(strings.TrimSpace(line), "data: ")
		if !ok {
			continue
		}
		var ev map[string]any
		g.Expect(json.Unmarshal([]byte(data), &ev)).To(Succeed())
		if start == nil {
			start = ev
		} else if text, ok := ev["text"].(string); ok {
			streamed.WriteString(text)
		}
	}
	answerID := start["message_id"].(string)
	stopPath := func(conv, id string) string { return "/v1/conversations/" + conv + "/messages/" + id + "/stop" }

	// Another user's, the question, an unknown id: not found, nothing stopped.
	r := e.do(http.MethodPost, stopPath(conv, answerID), other, nil)
	g.Expect(r.status).To(Equal(http.StatusNotFound), string(r.body))
	g.Expect(errorCode(g, r)).To(Equal("not_found"))
	g.Expect(e.do(http.MethodPost, stopPath(conv, start["user_message_id"].(string)), token, nil).status).To(Equal(http.StatusNotFound))
	g.Expect(e.do(http.MethodPost, stopPath(conv, "not-a-uuid"), token, nil).status).To(Equal(http.StatusNotFound))
	g.Expect(e.answerStatus(conv)).To(Equal("streaming"))

	stopped := time.Now()
	r = e.do(http.MethodPost, stopPath(conv, answerID), token, nil)
	g.Expect(r.status).To(Equal(http.StatusOK), string(r.body))
	g.Expect(r.json()["message"].(map[string]any)["status"]).To(Equal("stopped"))

	rest := withoutHeartbeats(readSSE(t, &http.Response{Body: io.NopCloser(br)}))
	g.Expect(time.Since(stopped)).To(BeNumerically("<", 10*time.Second), "the stream ends soon after the stop")
	g.Expect(rest).NotTo(BeEmpty())
	for _, ev := range rest[:len(rest)-1] {
		g.Expect(ev.name).To(Equal("delta"))
		streamed.WriteString(ev.data["text"].(string))
	}
	last := rest[len(rest)-1]
	g.Expect(last.name).To(Equal("done"))
	done := last.data["message"].(map[string]any)
	g.Expect(done["status"]).To(Equal("stopped"))
	g.Expect(done["content"]).To(Equal(streamed.String()), "the answer keeps exactly what was streamed")
	g.Expect(len(streamed.String())).To(BeNumerically("<", len(full)))

	ms := e.storedMessages(conv)
	g.Expect(ms[1].Status).To(Equal("stopped"))
	g.Expect(ms[1].Content).To(Equal(streamed.String()))

	// Finished: nothing to stop.
	r = e.do(http.MethodPost, stopPath(conv, answerID), token, nil)
	g.Expect(r.status).To(Equal(http.StatusConflict), string(r.body))
	g.Expect(errorCode(g, r)).To(Equal("conflict"))
}

func heartbeats(t *testing.T, e *env, oai *openaitest.Server) {
	g := NewWithT(t)
	oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply {
		return openaitest.Reply{Deltas: []string{"a ", "b"}, Delay: 300 * time.Millisecond}
	})
	_, token := e.user("patient@example.com", "Patient")
	conv := e.newConversation(token)
	res := e.stream(context.Background(), "/v1/conversations/"+conv+"/messages", token, `{"content":"keys?"}`)
	defer res.Body.Close()
	evs := readSSE(t, res)
	heartbeats := 0
	for _, ev := range evs {
		if ev.name == ":" {
			heartbeats++
		}
	}
	g.Expect(heartbeats).To(BeNumerically(">=", 3))
	g.Expect(names(evs)).To(Equal([]string{"message_start", "sources", "delta", "delta", "done"}))
}

func TestChatRateLimitPerUser(t *testing.T) {
	g := NewWithT(t)
	e := newEnv(t, withChat(t, nil), withRateLimit(1, 2))
	_, alice := e.user("alice.rl@example.com", "Alice")
	_, bob := e.user("bob.rl@example.com", "Bob")
	ask := func(token string) resp {
		return e.do(http.MethodPost, "/agents/run", token, str(`{"question":"Which port does Qdrant use?"}`))
	}
	first := ask(alice)
	g.Expect(first.status).To(Equal(http.StatusOK))
	g.Expect(ask(alice).status).To(Equal(http.StatusOK))
	r := ask(alice)
	g.Expect(r.status).To(Equal(http.StatusTooManyRequests))
	g.Expect(errorCode(g, r)).To(Equal("rate_limited"))
	// Regenerating an answer is asking: the same budget.
	regen := e.do(http.MethodPost, fmt.Sprintf("/v1/conversations/%s/messages/%s/regenerate",
		first.json()["conversation_id"], first.json()["message_id"]), alice, nil)
	g.Expect(regen.status).To(Equal(http.StatusTooManyRequests))
	retry, err := strconv.Atoi(r.header.Get("Retry-After"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(retry).To(BeNumerically("~", 60, 2))
	// Another user has their own budget.
	g.Expect(ask(bob).status).To(Equal(http.StatusOK))
	// The refused request stored nothing.
	var count int
	conn, err := pgx.Connect(context.Background(), e.dbURL)
	g.Expect(err).NotTo(HaveOccurred())
	defer conn.Close(context.Background())
	g.Expect(conn.QueryRow(context.Background(), `SELECT count(*) FROM conversations`).Scan(&count)).To(Succeed())
	g.Expect(count).To(Equal(3))
}

func feedbackOwnership(t *testing.T, e *env) {
	g := NewWithT(t)
	_, alice := e.user("alice.fb@example.com", "Alice")
	_, bob := e.user("bob.fb@example.com", "Bob")
	r := e.do(http.MethodPost, "/agents/run", alice, str(`{"question":"How do I install with Helm?"}`))
	g.Expect(r.status).To(Equal(http.StatusOK))
	answerID := r.json()["message_id"].(string)
	conv := r.json()["conversation_id"].(string)

	path := "/v1/messages/" + answerID + "/feedback"
	r = e.do(http.MethodPost, path, bob, str(`{"rating":"down"}`))
	g.Expect(r.status).To(Equal(http.StatusNotFound))
	g.Expect(errorCode(g, r)).To(Equal("not_found"))

	r = e.do(http.MethodPost, path, alice, str(`{"rating":"up","comment":"spot on"}`))
	g.Expect(r.status).To(Equal(http.StatusOK), string(r.body))
	g.Expect(r.json()["rating"]).To(Equal("up"))
	r = e.do(http.MethodPost, path, alice, str(`{"rating":"down"}`))
	g.Expect(r.status).To(Equal(http.StatusOK))
	g.Expect(r.json()["rating"]).To(Equal("down"))

	for _, bad := range []string{`{"rating":"meh"}`, `{}`, `{"rating":"up","comment":"` + strings.Repeat("x", 2001) + `"}`} {
		r = e.do(http.MethodPost, path, alice, str(bad))
		g.Expect(r.status).To(Equal(http.StatusBadRequest), bad[:min(len(bad), 40)])
	}
	g.Expect(e.do(http.MethodPost, "/v1/messages/not-a-uuid/feedback", alice, str(`{"rating":"up"}`)).status).To(Equal(http.StatusNotFound))

	// A question is not an answer to rate.
	msgs := e.do(http.MethodGet, "/v1/conversations/"+conv+"/messages", alice, nil).json()["items"].([]any)
	userMsgID := msgs[0].(map[string]any)["id"].(string)
	g.Expect(e.do(http.MethodPost, "/v1/messages/"+userMsgID+"/feedback", alice, str(`{"rating":"up"}`)).status).To(Equal(http.StatusBadRequest))

	// Once the conversation is deleted, its answers cannot be rated either.
	g.Expect(e.do(http.MethodDelete, "/v1/conversations/"+conv, alice, nil).status).To(Equal(http.StatusNoContent))
	g.Expect(e.do(http.MethodPost, path, alice, str(`{"rating":"up"}`)).status).To(Equal(http.StatusNotFound))

	// Chat in another user's conversation is a 404 too, and stores nothing.
	own := e.newConversation(alice)
	r = e.do(http.MethodPost, "/v1/conversations/"+own+"/messages", bob, str(`{"content":"hi"}`))
	g.Expect(r.status).To(Equal(http.StatusNotFound))
	g.Expect(e.storedMessages(own)).To(BeEmpty())
}

// With no document indexed at all (nothing ingested yet) the server is
// ready and every way of asking answers "no documents indexed yet", not
// grounded, with the reason no_documents: a widget tells "come back later"
// from "the docs do not cover this".
func TestChatWithNoDocumentsIndexed(t *testing.T) {
	g := NewWithT(t)
	e := newEnv(t) // the offline chat, nothing ingested
	_, token := e.user("early@example.com", "Early")

	g.Expect(e.do(http.MethodGet, "/readyz", "", nil).status).To(Equal(http.StatusOK), "readiness does not depend on the index")

	r := e.do(http.MethodPost, "/agents/run", token, str(`{"question":"How do I rotate the signing keys?"}`))
	g.Expect(r.status).To(Equal(http.StatusOK), string(r.body))
	b := r.json()
	g.Expect([]any{b["answer"], b["grounded"], b["reason"], b["sources"]}).
		To(Equal([]any{chat.NoDocumentsAnswer, false, chat.ReasonNoDocuments, []any{}}))

	conv := e.newConversation(token)
	r = e.do(http.MethodPost, "/v1/conversations/"+conv+"/messages", token, str(`{"content":"How do I rotate the signing keys?"}`))
	g.Expect(r.status).To(Equal(http.StatusOK), string(r.body))
	g.Expect([]any{r.json()["grounded"], r.json()["reason"]}).To(Equal([]any{false, chat.ReasonNoDocuments}))

	res := e.stream(context.Background(), "/v1/conversations/"+conv+"/messages", token, `{"content":"And the ports?"}`)
	defer res.Body.Close()
	evs := withoutHeartbeats(readSSE(t, res))
	g.Expect(names(evs)).To(Equal([]string{"message_start", "sources", "delta", "done"}))
	done := evs[len(evs)-1].data
	g.Expect([]any{done["grounded"], done["reason"]}).To(Equal([]any{false, chat.ReasonNoDocuments}))
	g.Expect(done["message"].(map[string]any)["content"]).To(Equal(chat.NoDocumentsAnswer))
	g.Expect(done["message"].(map[string]any)["status"]).To(Equal("complete"))
}
