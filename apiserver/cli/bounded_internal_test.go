package cli

// Every wait of `serve` is bounded (issue 12): slow clients, a database
// that hangs, a model that stalls, a shutdown with an answer streaming.
// Each test runs the real `serve` in this process on a real PostgreSQL and
// BetterAuth, with the fake OpenAI server as the model.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/store"
	"github.com/chatbackend/chatbackend/apiserver/store/migrations"
	"github.com/chatbackend/chatbackend/internal/betterauthtest"
	"github.com/chatbackend/chatbackend/internal/openaitest"
	"github.com/chatbackend/chatbackend/internal/pgtest"
	"github.com/chatbackend/chatbackend/internal/testutil"
)

const password = "correct horse battery staple"

// stack is `serve` running in this process.
type stack struct {
	t            *testing.T
	api, metrics string
	ba           *betterauthtest.Server
	oai          *openaitest.Server
	logs         *testutil.SyncBuffer
	client       *http.Client
	stop         context.CancelFunc
	// done is closed when serve returned, err.
	done chan struct{}
	err  error
}

// startServe runs serve on dbURL with the settings of env (on top of the
// stack's own) and drain as its shutdown timing, and waits until it is
// ready. It is stopped when the test ends.
func startServe(t *testing.T, dbURL string, env map[string]string, drain drainTiming) *stack {
	t.Helper()
	ctx := context.Background()
	if _, err := migrations.Migrate(ctx, dbURL, nil, nil); err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, api: testutil.FreeAddr(t), metrics: testutil.FreeAddr(t), ba: betterauthtest.Start(t),
		oai: openaitest.Start(t), logs: &testutil.SyncBuffer{}, done: make(chan struct{}),
		client: &http.Client{Timeout: 30 * time.Second}}
	vars := map[string]string{
		"DATABASE_URL": dbURL, "BETTER_AUTH_URL": s.ba.URL, "LISTEN_ADDR": s.api, "METRICS_ADDR": s.metrics,
		"OPENAI_API_KEY": openaitest.APIKey, "OPENAI_BASE_URL": s.oai.URL,
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.LoadFrom(config.FromMap(vars))
	if err != nil {
		t.Fatal(err)
	}
	ctx, s.stop = context.WithCancel(ctx)
	go func() {
		defer close(s.done)
		s.err = serve(ctx, cfg, store.DefaultConnectTimeout, slog.New(slog.NewJSONHandler(s.logs, nil)), drain)
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

func (s *stack) token(email string) string {
	s.ba.SignUp(s.t, email, "Bounded", password)
	return s.ba.Token(s.t, email, password)
}

type reply struct {
	status int
	header http.Header
	body   string
	took   time.Duration
	err    error
}

func (s *stack) do(method, path, token, body string, headers ...string) reply {
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
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
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
	r := s.do(http.MethodPost, "/v1/conversations", token, `{"title":"bounded"}`)
	var c struct{ ID string }
	if r.status != http.StatusCreated && r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &c) != nil {
		s.t.Fatalf("create conversation: %d %s %v", r.status, r.body, r.err)
	}
	return c.ID
}

// storedAnswer is the conversation's last message as a client sees it
// after a reload.
func (s *stack) storedAnswer(token, conversationID string) (content, status string) {
	s.t.Helper()
	r := s.get("/v1/conversations/"+conversationID+"/messages", token)
	var list struct {
		Items []struct{ Role, Content, Status string }
	}
	if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &list) != nil || len(list.Items) == 0 {
		s.t.Fatalf("list messages: %d %s", r.status, r.body)
	}
	last := list.Items[len(list.Items)-1]
	if last.Role != "assistant" {
		s.t.Fatalf("the last message is the %s's: %s", last.Role, r.body)
	}
	return last.Content, last.Status
}

type event struct {
	name string
	data map[string]any
}

// ask posts a question as a streaming client and returns its events,
// heartbeats left out, until the stream ends.
func (s *stack) ask(token, conversationID string) <-chan event {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.api+"/v1/conversations/"+conversationID+"/messages",
		strings.NewReader(`{"content":"How do I rotate the signing keys?"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	res, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		s.t.Fatalf("ask: %d %s", res.StatusCode, b)
	}
	out := make(chan event, 1000)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(res.Body)
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
	return out
}

// untilEnd collects the deltas' text and the final event (done or error),
// within limit.
func untilEnd(t *testing.T, events <-chan event, limit time.Duration) (text string, last event) {
	t.Helper()
	timeout := time.After(limit)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the stream ended without a done or error event (text so far %q)", text)
			}
			switch ev.name {
			case "delta":
				text += ev.data["text"].(string)
			case "done", "error":
				return text, ev
			}
		case <-timeout:
			t.Fatalf("no done or error event within %s (text so far %q)", limit, text)
		}
	}
}

// A client that sends its headers and a Content-Length but never the body,
// or never finishes its headers, loses its connection within the bound, on
// the API (authenticated or not) and on the metrics listener alike.
func TestSlowClientsLoseTheirConnection(t *testing.T) {
	const bound = time.Second
	s := startServe(t, pgtest.New(t), map[string]string{
		"HTTP_READ_HEADER_TIMEOUT": bound.String(), "HTTP_READ_BODY_TIMEOUT": bound.String(),
	}, productionDrain)
	token := s.token("slow@example.com")
	withBody := func(path, auth string) string {
		return "POST " + path + " HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
	}
	for _, tc := range []struct{ name, addr, request, status string }{
		{"api, no body, anonymous", s.api, withBody("/v1/conversations", ""), ""},
		// The handler reads the body: the client hears why it was cut.
		{"api, no body, authenticated", s.api, withBody("/v1/conversations", "Authorization: Bearer "+token+"\r\n"), "408"},
		{"api, no body, no route", s.api, withBody("/nowhere", ""), ""},
		{"metrics, no body", s.metrics, withBody("/metrics", ""), ""},
		{"api, headers never end", s.api, "GET /healthz HTTP/1.1\r\nHost: x\r\n", ""},
		{"metrics, headers never end", s.metrics, "GET /metrics HTTP/1.1\r\nHost: x\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			conn, err := net.Dial("tcp", tc.addr)
			g.Expect(err).NotTo(HaveOccurred())
			defer conn.Close()
			start := time.Now()
			_, err = io.WriteString(conn, tc.request)
			g.Expect(err).NotTo(HaveOccurred())
			// Past this the server held the connection: the test fails.
			g.Expect(conn.SetReadDeadline(time.Now().Add(bound + 5*time.Second))).To(Succeed())
			got, err := io.ReadAll(conn)
			var netErr net.Error
			g.Expect(errors.As(err, &netErr) && netErr.Timeout()).To(BeFalse(),
				"the server still holds the connection after %s (read %q)", time.Since(start), got)
			g.Expect(time.Since(start)).To(BeNumerically(">=", bound-100*time.Millisecond), "not cut before the bound")
			if len(got) > 0 {
				g.Expect(string(got)).To(MatchRegexp(`^HTTP/1\.1 [24]\d\d `), "never a server error")
			}
			if tc.status != "" {
				g.Expect(string(got)).To(HavePrefix("HTTP/1.1 "+tc.status+" "), "answered with the status that says why")
			}
		})
	}
}

// A database that hangs (every PostgreSQL process stopped) makes requests
// answer 503 with Retry-After within their bound instead of hanging,
// whichever bound comes first: the pool's (acquire, query) or the request's
// deadline. Once it resumes the server serves again without a restart, and
// the goroutines the outage cost are gone.
func TestFrozenDatabaseAnswers503ThenRecovers(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		acquire, query, request time.Duration
		bound                   time.Duration
	}{
		{"the pool gives up first", 500 * time.Millisecond, time.Second, 5 * time.Second, 1500 * time.Millisecond},
		{"the request's deadline comes first", time.Minute, time.Minute, time.Second, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			cluster := pgtest.NewCluster(t)
			s := startServe(t, cluster.URL(), map[string]string{
				"DATABASE_ACQUIRE_TIMEOUT": tc.acquire.String(), "DATABASE_QUERY_TIMEOUT": tc.query.String(),
				"HTTP_REQUEST_TIMEOUT": tc.request.String(),
			}, productionDrain)
			token := s.token("frozen@example.com")
			g.Expect(s.get("/v1/conversations", token).status).To(Equal(200))
			s.client.Transport = &http.Transport{DisableKeepAlives: true}
			baseline := runtime.NumGoroutine()

			cluster.Freeze(t)
			slowest := freezeBurst(g, s, token, tc.bound)
			t.Logf("40 requests during the freeze: all 503, the slowest in %s", slowest)

			cluster.Thaw()
			g.Eventually(func() int { return s.get("/v1/conversations", token).status }).
				WithTimeout(20*time.Second).WithPolling(200*time.Millisecond).Should(Equal(200), "serving again without a restart")
			g.Eventually(runtime.NumGoroutine).WithTimeout(20*time.Second).WithPolling(200*time.Millisecond).
				Should(BeNumerically("<=", baseline+10), "the outage's goroutines are gone")
			t.Logf("goroutines: %d before the freeze, %d after", baseline, runtime.NumGoroutine())
		})
	}
}

// freezeBurst sends 40 concurrent reads and writes and checks that each
// answered 503 unavailable with Retry-After within bound (and some slack).
// It returns the slowest answer's time.
func freezeBurst(g Gomega, s *stack, token string, bound time.Duration) time.Duration {
	const clients = 40
	replies := make(chan reply, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				replies <- s.get("/v1/conversations", token)
			} else {
				replies <- s.do(http.MethodPost, "/v1/conversations", token, `{"title":"during the freeze"}`)
			}
		}()
	}
	wg.Wait()
	close(replies)
	var slowest time.Duration
	for r := range replies {
		slowest = max(slowest, r.took)
		g.Expect(r.err).NotTo(HaveOccurred())
		g.Expect(r.status).To(Equal(http.StatusServiceUnavailable), r.body)
		g.Expect(r.body).To(ContainSubstring(`"code":"unavailable"`))
		g.Expect(r.header.Get("Retry-After")).NotTo(BeEmpty())
		g.Expect(r.took).To(BeNumerically("<", bound+2*time.Second), "answered within the bound and some slack")
	}
	return slowest
}

// A model that stalls before its first token or between two tokens fails
// the answer within its bound: the client gets an error event, and the
// answer is stored as failed with what was streamed. A model that writes
// slowly but steadily is not cut, though the stream outlasts the body
// deadline and each token comes close to the idle bound.
func TestModelStallFailsTheAnswerWithWhatWasStreamed(t *testing.T) {
	const bound = time.Second
	s := startServe(t, pgtest.New(t), map[string]string{
		"OPENAI_FIRST_TOKEN_TIMEOUT": bound.String(), "OPENAI_IDLE_TIMEOUT": bound.String(),
		"HTTP_READ_BODY_TIMEOUT": bound.String(),
	}, productionDrain)
	token := s.token("stall@example.com")
	for _, tc := range []struct {
		name   string
		reply  openaitest.Reply
		event  string
		text   string
		status string
	}{
		{"slow but steady", openaitest.Reply{Deltas: []string{"a ", "b ", "c ", "d ", "e ", "f"}, Delay: bound / 2},
			"done", "a b c d e f", "complete"},
		{"stall before the first token", openaitest.Reply{Deltas: []string{"a ", "b ", "c"}, Stall: time.Minute},
			"error", "", "failed"},
		{"stall between two tokens", openaitest.Reply{Deltas: []string{"a ", "b ", "c"}, Stall: time.Minute, StallAt: 2},
			"error", "a b ", "failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			s.oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply { return tc.reply })
			conv := s.conversation(token)
			text, last := untilEnd(t, s.ask(token, conv), 15*time.Second)
			g.Expect(last.name).To(Equal(tc.event), "%v", last.data)
			g.Expect(text).To(Equal(tc.text))
			if tc.event == "error" {
				g.Expect(last.data["error"]).To(HaveKeyWithValue("code", "upstream_error"))
			}
			content, status := s.storedAnswer(token, conv)
			g.Expect(status).To(Equal(tc.status))
			g.Expect(content).To(Equal(tc.text))
		})
	}
}

// SIGTERM while an answer streams: the server stops accepting, and the
// stream that outlasts the drain is cut, its answer stored as incomplete
// with exactly what the client was shown, the client told so in a last
// event; only then does the pool close. The shutdown itself is bounded.
func TestShutdownStoresTheAnswerStillStreaming(t *testing.T) {
	g := NewWithT(t)
	drain := drainTiming{total: 4 * time.Second, cutAfter: 2 * time.Second}
	dbURL := pgtest.New(t)
	s := startServe(t, dbURL, nil, drain)
	token := s.token("sigterm@example.com")
	// Twenty seconds of answer: far longer than the drain.
	s.oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply {
		return openaitest.Reply{Deltas: strings.Split(strings.Repeat("word ", 100), " ")[:100], Delay: 200 * time.Millisecond}
	})
	conv := s.conversation(token)
	events := s.ask(token, conv)
	var shown strings.Builder
	for shown.Len() < len("word word ") {
		select {
		case ev := <-events:
			if ev.name == "delta" {
				shown.WriteString(ev.data["text"].(string))
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no delta within 10s")
		}
	}

	start := time.Now()
	s.stop() // what SIGTERM does through signal.NotifyContext
	g.Eventually(func() error {
		conn, err := net.DialTimeout("tcp", s.api, time.Second)
		if err == nil {
			conn.Close()
		}
		return err
	}).WithTimeout(time.Second).Should(HaveOccurred(), "no new connections once shutting down")
	rest, last := untilEnd(t, events, drain.total+5*time.Second)
	shown.WriteString(rest)
	g.Expect(last.name).To(Equal("error"))
	g.Expect(last.data["error"]).To(HaveKeyWithValue("code", "unavailable"))
	g.Expect(fmt.Sprint(last.data["error"])).To(ContainSubstring("shutting down"))
	g.Eventually(s.done).WithTimeout(drain.total+stragglersTimeout+5*time.Second).Should(BeClosed(), "serve returned")
	g.Expect(s.err).NotTo(HaveOccurred())
	g.Expect(time.Since(start)).To(BeNumerically("<", drain.total+stragglersTimeout+2*time.Second), "shutdown is bounded")
	g.Expect(s.logs.String()).NotTo(ContainSubstring("closed pool"))

	// The server is gone: read what it stored straight from the database.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := pgx.Connect(ctx, dbURL)
	g.Expect(err).NotTo(HaveOccurred())
	defer db.Close(ctx)
	var content, status string
	g.Expect(db.QueryRow(ctx, `SELECT content, status FROM messages WHERE conversation_id = $1 AND role = 'assistant'`, conv).
		Scan(&content, &status)).To(Succeed())
	g.Expect(status).To(Equal("incomplete"))
	g.Expect(content).To(Equal(shown.String()), "stored exactly what the client was shown")
}
