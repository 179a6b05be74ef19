//go:build chaos

package cli

// The harness of the chaos suite (chaos_internal_test.go): the real `serve`
// in this process on a real PostgreSQL and BetterAuth, the fake OpenAI
// server as the model, and a client that records what it was answered and
// shown.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/store"
	"github.com/chatbackend/chatbackend/apiserver/store/migrations"
	"github.com/chatbackend/chatbackend/internal/betterauthtest"
	"github.com/chatbackend/chatbackend/internal/openaitest"
	"github.com/chatbackend/chatbackend/internal/testutil"
)

const password = "correct horse battery staple"

// stack is `serve` running in this process.
type stack struct {
	t            *testing.T
	api, metrics string
	dbURL        string
	ba           *betterauthtest.Server
	oai          *openaitest.Server
	logs         *testutil.SyncBuffer
	// client opens a connection per request: an idle keep-alive
	// connection would count as goroutines that a fault left behind.
	client *http.Client
	stop   context.CancelFunc
	// done is closed when serve returned, err.
	done chan struct{}
	err  error
}

// startServe runs serve on dbURL with the settings of env (on top of the
// stack's own; a func(*stack) map[string]string to see the stack's
// BetterAuth first) and drain as its shutdown timing, and waits until it
// is ready. It is stopped when the test ends.
func startServe(t *testing.T, dbURL string, env func(*stack) map[string]string, drain drainTiming) *stack {
	t.Helper()
	ctx := context.Background()
	if _, err := migrations.Migrate(ctx, dbURL, nil, nil); err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, api: testutil.FreeAddr(t), metrics: testutil.FreeAddr(t), dbURL: dbURL, ba: betterauthtest.Start(t),
		oai: openaitest.Start(t), logs: &testutil.SyncBuffer{}, done: make(chan struct{}),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	vars := map[string]string{
		"DATABASE_URL": dbURL, "BETTER_AUTH_URL": s.ba.URL, "LISTEN_ADDR": s.api, "METRICS_ADDR": s.metrics,
		"OPENAI_API_KEY": openaitest.APIKey, "OPENAI_BASE_URL": s.oai.URL,
		// The load is one user's: the per-user limits are not under test.
		"CHAT_RATE_LIMIT_PER_MINUTE": "6000", "CHAT_RATE_LIMIT_BURST": "100",
		"WRITE_RATE_LIMIT_PER_MINUTE": "6000", "WRITE_RATE_LIMIT_BURST": "1000",
	}
	if env != nil {
		for k, v := range env(s) {
			vars[k] = v
		}
	}
	cfg, err := config.LoadFrom(config.FromMap(vars))
	if err != nil {
		t.Fatal(err)
	}
	seedDocs(t, vars)
	ctx, s.stop = context.WithCancel(ctx)
	go func() {
		defer close(s.done)
		s.err = serve(ctx, cfg, serveFlags{connectTimeout: store.DefaultConnectTimeout}, slog.New(slog.NewJSONHandler(s.logs, nil)), drain)
	}()
	t.Cleanup(func() {
		s.stop()
		select {
		case <-s.done:
		case <-time.After(time.Minute):
			t.Error("serve did not return within a minute of being stopped")
		}
		if t.Failed() {
			t.Logf("serve's log:\n%s", s.logs.Tail(60))
		}
	})
	NewWithT(t).Eventually(func() int { return s.get("/readyz", "").status }).
		WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Equal(200))
	return s
}

// seedDocs ingests the RAG test docs with the stack's settings (the same
// embeddings as serve, from the fake model while it is healthy). With no
// document indexed every answer says so without asking the model
// (chat.NoDocumentsAnswer), and the model's faults would not be exercised.
func seedDocs(t *testing.T, vars map[string]string) {
	t.Helper()
	for k, v := range vars {
		t.Setenv(k, v)
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"ingest", "--docs", "../rag/testdata/docs", "--site-url", "https://docs.example.com"}, &out, &errb); code != 0 {
		t.Fatalf("ingest the test docs: exit %d\n%s%s", code, out.String(), errb.String())
	}
}

func (s *stack) token(email string) string {
	s.ba.SignUp(s.t, email, "Chaos", password)
	return s.ba.Token(s.t, email, password)
}

type reply struct {
	status int
	header http.Header
	body   string
	took   time.Duration
	err    error
}

func (s *stack) do(method, path, token, body string) reply {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+s.api+path, rd)
	if err != nil {
		return reply{err: err}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	res, err := s.client.Do(req)
	if err != nil {
		return reply{err: err, took: time.Since(start)}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return reply{status: res.StatusCode, header: res.Header, body: string(b), took: time.Since(start), err: err}
}

func (s *stack) get(path, token string) reply { return s.do(http.MethodGet, path, token, "") }

func (s *stack) conversation(token string) string {
	s.t.Helper()
	r := s.do(http.MethodPost, "/v1/conversations", token, `{"title":"chaos"}`)
	var c struct{ ID string }
	if r.status != http.StatusCreated && r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &c) != nil {
		s.t.Fatalf("create conversation: %d %s %v", r.status, r.body, r.err)
	}
	return c.ID
}

type event struct {
	name string
	data map[string]any
}

// ask posts question as a streaming client. On 200 it returns the events,
// heartbeats left out, until the stream ends; otherwise the reply.
func (s *stack) ask(token, conversationID, question string) (<-chan event, reply) {
	body, _ := json.Marshal(map[string]string{"content": question})
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.api+"/v1/conversations/"+conversationID+"/messages",
		strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	start := time.Now()
	res, err := s.client.Do(req)
	if err != nil {
		return nil, reply{err: err, took: time.Since(start)}
	}
	if res.StatusCode != http.StatusOK {
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return nil, reply{status: res.StatusCode, header: res.Header, body: string(b), took: time.Since(start)}
	}
	s.t.Cleanup(func() { res.Body.Close() })
	out := make(chan event, 1000)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(res.Body)
		// The done event carries the whole answer.
		sc.Buffer(nil, 64<<20)
		var ev event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data)
			case line == "" && ev.name != "":
				out <- ev
				ev = event{}
			}
		}
	}()
	return out, reply{status: res.StatusCode, header: res.Header, took: time.Since(start)}
}

// untilEnd collects the deltas' text and the final event (done or error),
// within limit; last is empty if the stream ended without either.
func untilEnd(events <-chan event, limit time.Duration) (text string, last event, err error) {
	timeout := time.After(limit)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return text, event{}, fmt.Errorf("the stream ended without a done or error event (text so far: %d bytes)", len(text))
			}
			switch ev.name {
			case "delta":
				text += ev.data["text"].(string)
			case "done", "error":
				return text, ev, nil
			}
		case <-timeout:
			return text, event{}, fmt.Errorf("no done or error event within %s (text so far: %d bytes)", limit, len(text))
		}
	}
}

// turn is what a streaming client sent and was shown of one answer.
type turn struct {
	conversation, question, shown string
	// exact: the stored answer must be exactly what was shown (the turn
	// ended on the server's side), not merely start with it.
	exact bool
	// status, when set, is the answer's stored status.
	status string
}

// readStored connects to the database directly (the server may be gone),
// for one check bounded to 30 s; the connection closes when t ends.
func readStored(t *testing.T, dbURL string) (context.Context, *pgx.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("read what was stored: %v", err)
	}
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	return ctx, db
}

// lost counts the turns whose question, or the answer text the client was
// shown, the database does not hold, reading it directly (the server may
// be gone). Each loss is reported. Turns without a conversation (the
// request failed before it started) are skipped.
func lost(t *testing.T, dbURL string, turns []turn) int {
	t.Helper()
	ctx, db := readStored(t, dbURL)
	n := 0
	for _, tu := range turns {
		if tu.conversation == "" {
			continue
		}
		var question, answer, status string
		err := db.QueryRow(ctx, `SELECT
			coalesce((SELECT content FROM messages WHERE conversation_id = $1 AND role = 'user'), ''),
			coalesce((SELECT content FROM messages WHERE conversation_id = $1 AND role = 'assistant'), ''),
			coalesce((SELECT status FROM messages WHERE conversation_id = $1 AND role = 'assistant'), '')`,
			tu.conversation).Scan(&question, &answer, &status)
		switch {
		case err != nil:
			t.Errorf("conversation %s: %v", tu.conversation, err)
			n++
		case question != tu.question:
			t.Errorf("conversation %s: the question is not stored (found %q)", tu.conversation, question)
			n++
		case tu.exact && answer != tu.shown, !strings.HasPrefix(answer, tu.shown):
			t.Errorf("conversation %s: stored answer %q, the client was shown %q", tu.conversation, clip(answer), clip(tu.shown))
			n++
		case tu.status != "" && status != tu.status:
			t.Errorf("conversation %s: answer stored as %q, want %q", tu.conversation, status, tu.status)
			n++
		}
	}
	return n
}

// lostConversations counts the conversations (ids a client got a 201 for)
// that the database does not hold.
func lostConversations(t *testing.T, dbURL string, ids []string) int {
	t.Helper()
	ctx, db := readStored(t, dbURL)
	var found int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM conversations WHERE id::text = ANY($1)`, ids).Scan(&found); err != nil {
		t.Fatalf("count conversations: %v", err)
	}
	if found != len(ids) {
		t.Errorf("%d of %d acknowledged conversations are not stored", len(ids)-found, len(ids))
	}
	return len(ids) - found
}

// clip shortens a text for a failure message.
func clip(s string) string {
	if len(s) > 200 {
		return s[:100] + "..." + s[len(s)-100:]
	}
	return s
}
