//go:build chaos

package cli

// The chaos suite (issue 12): the real `serve` (stack_internal_test.go) on
// a real PostgreSQL and BetterAuth, with each dependency made sick in turn
// and each kind of slow client, under a bounded load of concurrent
// requests. Every scenario checks that each request was answered within
// its deadline (and some slack) with the right status, that nothing a
// client was told was stored, or was shown, is missing from the database,
// that the goroutines come back to their count before the fault, and that
// the server serves again without a restart. `make chaos` prints the table
// of results; README.md's "Reliability" section holds the last one.

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/dependency"
	"github.com/chatbackend/chatbackend/internal/betterauthtest"
	"github.com/chatbackend/chatbackend/internal/openaitest"
	"github.com/chatbackend/chatbackend/internal/pgtest"
)

// slack is what a request may take beyond its bound: scheduling on two
// shared cores, the client's own connect and read.
const slack = 2 * time.Second

// row is one scenario's line of the results table.
type row struct {
	scenario         string
	requests, onTime int
	// deadline is the longest bound a request of the scenario had.
	deadline         time.Duration
	slowest          time.Duration
	statuses         map[string]int
	lost             int
	goroutinesBefore int
	goroutinesAfter  int
	note             string
	mu               sync.Mutex
}

func newRow(scenario string) *row {
	return &row{scenario: scenario, statuses: map[string]int{}, goroutinesBefore: runtime.NumGoroutine()}
}

// answered records one request's outcome: what it got (a status code, an
// SSE event, a cut connection) and whether it came within bound + slack.
func (r *row) answered(got string, took, bound time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	r.statuses[got]++
	r.slowest = max(r.slowest, took)
	r.deadline = max(r.deadline, bound)
	ok := took <= bound+slack
	if ok {
		r.onTime++
	}
	return ok
}

// settle waits (bounded) for the goroutines to come back within a few of
// their count before the scenario, and records the count. Idle keep-alive
// connections are a pool, not a leak: those of the default transport (the
// JWKS client) are closed before counting, and so, from the fake's side,
// are those of the server's model pool (kept 30 s idle) to each of models.
// Connections just closed take a moment to wind down their goroutines:
// the count is given a few seconds to come back close to the baseline
// before the (looser) assertion.
func (r *row) settle(g Gomega, models ...*openaitest.Server) {
	count := func() int {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		for _, m := range models {
			m.CloseClientConnections()
		}
		return runtime.NumGoroutine()
	}
	for wait := time.Now().Add(5 * time.Second); count() > r.goroutinesBefore+2 && time.Now().Before(wait); {
		time.Sleep(200 * time.Millisecond)
	}
	g.Eventually(count).WithTimeout(15*time.Second).WithPolling(200*time.Millisecond).
		Should(BeNumerically("<=", r.goroutinesBefore+10), "the fault's goroutines are gone")
	r.goroutinesAfter = count()
}

func (r *row) statusText() string {
	keys := make([]string, 0, len(r.statuses))
	for k := range r.statuses {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, r.statuses[k])
	}
	return strings.Join(parts, " ")
}

// report collects the rows and prints them as the suite's table.
type report struct {
	mu   sync.Mutex
	rows []*row
}

func (rep *report) add(r *row) {
	rep.mu.Lock()
	defer rep.mu.Unlock()
	rep.rows = append(rep.rows, r)
}

// print writes the table in Markdown, as README.md shows it.
func (rep *report) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "| scenario\t| requests\t| deadline\t| within deadline + 2 s\t| max latency\t| statuses\t| data lost\t| goroutines before/after\t| note\t|")
	fmt.Fprintln(tw, "|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|")
	for _, r := range rep.rows {
		fmt.Fprintf(tw, "| %s\t| %d\t| %s\t| %d\t| %s\t| %s\t| %d\t| %d/%d\t| %s\t|\n", r.scenario, r.requests, r.deadline, r.onTime,
			r.slowest.Round(10*time.Millisecond), r.statusText(), r.lost, r.goroutinesBefore, r.goroutinesAfter, r.note)
	}
	_ = tw.Flush()
}

// TestChaos runs every scenario and prints the results table (`make chaos`
// runs it verbosely; `make test` too, quietly).
func TestChaos(t *testing.T) {
	rep := &report{}
	t.Cleanup(func() { rep.print(os.Stdout) })
	for _, sc := range []struct {
		name string
		run  func(t *testing.T, rep *report)
	}{
		{"slow clients", slowClients},
		{"slow reader", slowReader},
		{"database frozen", databaseFrozen},
		{"database killed", databaseKilled},
		{"jwks sick", jwksSick},
		{"model sick", modelSick},
		{"sigterm", sigterm},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, rep) })
	}
}

// concurrently runs f(0..n-1) at once and waits for all.
func concurrently(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i)
		}()
	}
	wg.Wait()
}

// statusOf names a reply for the table: its status code, or "cut" for a
// connection that ended without one.
func statusOf(r reply) string {
	if r.err != nil {
		return "cut"
	}
	return fmt.Sprint(r.status)
}

// A client that sends its headers and a Content-Length but never the body,
// or never finishes its headers, loses its connection within the bound, on
// the API (authenticated or not) and on the metrics listener alike; when
// the API was reading the body it says so with 408.
func slowClients(t *testing.T, rep *report) {
	const bound = time.Second
	g := NewWithT(t)
	s := startServe(t, pgtest.New(t), func(*stack) map[string]string {
		return map[string]string{"HTTP_READ_HEADER_TIMEOUT": bound.String(), "HTTP_READ_BODY_TIMEOUT": bound.String()}
	}, productionDrain)
	token := s.token("slow@example.com")
	withBody := func(path, auth string) string {
		return "POST " + path + " HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
	}
	cases := []struct{ name, addr, request, status string }{
		{"api, no body, anonymous", s.api, withBody("/v1/conversations", ""), ""},
		// The handler reads the body: the client hears why it was cut.
		{"api, no body, authenticated", s.api, withBody("/v1/conversations", "Authorization: Bearer "+token+"\r\n"), "408"},
		{"api, no body, no route", s.api, withBody("/nowhere", ""), ""},
		{"metrics, no body", s.metrics, withBody("/metrics", ""), ""},
		{"api, headers never end", s.api, "GET /healthz HTTP/1.1\r\nHost: x\r\n", ""},
		{"metrics, headers never end", s.metrics, "GET /metrics HTTP/1.1\r\nHost: x\r\n", ""},
	}
	r := newRow("slow client: headers or body never sent")
	const each = 5
	concurrently(len(cases)*each, func(i int) {
		tc := cases[i%len(cases)]
		conn, err := net.Dial("tcp", tc.addr)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			return
		}
		defer conn.Close()
		start := time.Now()
		if _, err := io.WriteString(conn, tc.request); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			return
		}
		// Past this the server held the connection: the test fails.
		_ = conn.SetReadDeadline(time.Now().Add(bound + 5*time.Second))
		got, err := io.ReadAll(conn)
		took := time.Since(start)
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			t.Errorf("%s: the server still holds the connection after %s (read %q)", tc.name, took, got)
		}
		status := "closed"
		if len(got) >= len("HTTP/1.1 200") {
			status = string(got[len("HTTP/1.1 "):len("HTTP/1.1 200")])
		}
		if !r.answered(status, took, bound) {
			t.Errorf("%s: answered in %s", tc.name, took)
		}
		if took < bound-100*time.Millisecond {
			t.Errorf("%s: cut after %s, before the bound", tc.name, took)
		}
		if len(got) > 0 && !strings.HasPrefix(status, "2") && !strings.HasPrefix(status, "4") {
			t.Errorf("%s: %q, a server error", tc.name, got)
		}
		if tc.status != "" && status != tc.status {
			t.Errorf("%s: answered %q, want %s", tc.name, got, tc.status)
		}
	})
	g.Expect(s.get("/v1/conversations", token).status).To(Equal(200), "serving the others meanwhile")
	r.settle(g, s.oai)
	rep.add(r)
}

// A client that reads nothing of its stream while the model writes a long
// answer: the server does not buffer it (its heap grows by a fraction of
// the answer, the model is held back), the stuck write gives up after
// HTTP_STREAM_WRITE_TIMEOUT, and the answer is stored as incomplete with
// what was produced. Before, the write blocked until the connection died,
// and the answer was not stored while it did.
func slowReader(t *testing.T, rep *report) {
	const (
		writeTimeout = time.Second
		deltaSize    = 2 << 10
		answerSize   = 128 << 20
	)
	g := NewWithT(t)
	s := startServe(t, pgtest.New(t), func(*stack) map[string]string {
		return map[string]string{"HTTP_STREAM_WRITE_TIMEOUT": writeTimeout.String()}
	}, productionDrain)
	token := s.token("reader@example.com")
	conv := s.conversation(token)
	delta := strings.Repeat("x", deltaSize-1) + " "
	deltas := make([]string, answerSize/deltaSize)
	for i := range deltas {
		deltas[i] = delta
	}
	s.oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply { return openaitest.Reply{Deltas: deltas} })
	r := newRow("slow reader: SSE client reads nothing")
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	conn, err := net.Dial("tcp", s.api)
	g.Expect(err).NotTo(HaveOccurred())
	defer conn.Close()
	g.Expect(conn.(*net.TCPConn).SetReadBuffer(4 << 10)).To(Succeed())
	const question = "Tell me everything."
	start := time.Now()
	_, err = fmt.Fprintf(conn, "POST /v1/conversations/%s/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
		"Accept: text/event-stream\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"content\":%q}",
		conv, token, len(question)+len(`{"content":""}`), question)
	g.Expect(err).NotTo(HaveOccurred())

	// Meanwhile the heap's peak, sampled; the answer appears once stored.
	var peak uint64
	var stored struct{ Content, Status string }
	g.Eventually(func() string {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		peak = max(peak, m.HeapAlloc)
		res := s.get("/v1/conversations/"+conv+"/messages", token)
		var list struct {
			Items []struct{ Role, Content, Status string }
		}
		if json.Unmarshal([]byte(res.body), &list) == nil && len(list.Items) == 2 {
			stored.Content, stored.Status = list.Items[1].Content, list.Items[1].Status
		}
		return stored.Status
	}).WithTimeout(writeTimeout+20*time.Second).WithPolling(100*time.Millisecond).
		Should(Equal("incomplete"), "the stuck write gave up and the answer is stored")
	// The write timeout runs once the socket's buffers are full, which
	// takes a few seconds of writing on a busy machine: the bound is
	// counted loosely from the request.
	r.answered("incomplete", time.Since(start), writeTimeout+8*time.Second)
	growth := int64(peak) - int64(before.HeapAlloc)
	r.note = fmt.Sprintf("heap +%d MiB for a %d MiB answer; %d MiB produced, stored incomplete",
		max(growth, 0)>>20, answerSize>>20, len(stored.Content)>>20)
	g.Expect(growth).To(BeNumerically("<", answerSize/2), "the answer is not buffered")
	g.Expect(len(stored.Content)).To(BeNumerically("<", answerSize), "the model was held back, not drained into memory")
	g.Expect(strings.Repeat(delta, len(stored.Content)/deltaSize)).To(Equal(stored.Content), "whole deltas, in order")
	r.lost = lost(t, s.dbURL, []turn{{conversation: conv, question: question, status: "incomplete"}})
	g.Expect(s.logs.String()).To(ContainSubstring("the client stopped reading"), "the operator can tell why")
	conn.Close()

	// A client that reads is not cut, and the server serves on.
	conv = s.conversation(token)
	s.oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply {
		return openaitest.Reply{Deltas: deltas[:500]}
	})
	start = time.Now()
	events, res := s.ask(token, conv, question)
	g.Expect(res.status).To(Equal(200), res.body)
	text, last, err := untilEnd(events, 30*time.Second)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(last.name).To(Equal("done"))
	r.answered("sse:done", time.Since(start), 10*time.Second)
	r.lost += lost(t, s.dbURL, []turn{{conversation: conv, question: question, shown: text, exact: true, status: "complete"}})
	r.settle(g, s.oai)
	rep.add(r)
}

// firstDelta waits (bounded) for a stream's first delta and returns its text.
func firstDelta(t *testing.T, events <-chan event) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("the stream ended before its first delta")
			}
			if e.name == "delta" {
				return e.data["text"].(string)
			}
		case <-timeout:
			t.Fatal("no delta within 10s")
		}
	}
}

// A database that hangs (every PostgreSQL process stopped) makes requests
// answer 503 with Retry-After within their bound instead of hanging,
// whichever bound comes first: the pool's (acquire, query) or the request's
// deadline. Once it resumes the server serves again without a restart, and
// the goroutines the outage cost are gone.
func databaseFrozen(t *testing.T, rep *report) {
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
			s := startServe(t, cluster.URL(), func(*stack) map[string]string {
				return map[string]string{
					"DATABASE_ACQUIRE_TIMEOUT": tc.acquire.String(), "DATABASE_QUERY_TIMEOUT": tc.query.String(),
					"HTTP_REQUEST_TIMEOUT": tc.request.String(),
				}
			}, productionDrain)
			token := s.token("frozen@example.com")
			g.Expect(s.get("/v1/conversations", token).status).To(Equal(200))
			r := newRow("database frozen (SIGSTOP): " + tc.name)

			cluster.Freeze(t)
			created := burst(t, r, s, token, tc.bound, http.StatusServiceUnavailable)

			cluster.Thaw()
			g.Eventually(func() int { return s.get("/v1/conversations", token).status }).
				WithTimeout(20*time.Second).WithPolling(200*time.Millisecond).Should(Equal(200), "serving again without a restart")
			r.lost = lostConversations(t, cluster.URL(), created)
			r.settle(g, s.oai)
			rep.add(r)
		})
	}
}

// burst sends 40 concurrent reads and writes and checks that each answered
// want within bound (and some slack), a 503 with Retry-After and the JSON
// error. It returns the ids of the conversations acknowledged (201).
func burst(t *testing.T, r *row, s *stack, token string, bound time.Duration, want int) []string {
	const clients = 40
	var mu sync.Mutex
	var created []string
	concurrently(clients, func(i int) {
		var res reply
		if i%2 == 0 {
			res = s.get("/v1/conversations", token)
		} else {
			res = s.do(http.MethodPost, "/v1/conversations", token, `{"title":"during the fault"}`)
		}
		if !r.answered(statusOf(res), res.took, bound) {
			t.Errorf("answered in %s, past %s and the slack", res.took, bound)
		}
		var c struct{ ID string }
		if res.status == http.StatusCreated && json.Unmarshal([]byte(res.body), &c) == nil {
			mu.Lock()
			created = append(created, c.ID)
			mu.Unlock()
		}
		if res.status != want {
			t.Errorf("answered %d %s %v, want %d", res.status, res.body, res.err, want)
			return
		}
		if want == http.StatusServiceUnavailable &&
			(!strings.Contains(res.body, `"code":"unavailable"`) || res.header.Get("Retry-After") == "") {
			t.Errorf("a 503 without the JSON error or Retry-After: %s %v", res.body, res.header)
		}
	})
	return created
}

// PostgreSQL killed (SIGKILL, every process) while answers stream, then
// restarted on its port and data directory: requests during the outage
// answer 503 at once; the streams, which need the database only to store
// their answer at the end, finish and store it once it is back; the pool
// reconnects by itself; nothing acknowledged before the kill is lost.
func databaseKilled(t *testing.T, rep *report) {
	const streams = 4
	// The rest of the answers (under 6 s) and the restart.
	const streamBound = 10 * time.Second
	g := NewWithT(t)
	cluster := pgtest.NewCluster(t)
	s := startServe(t, cluster.URL(), func(*stack) map[string]string {
		return map[string]string{"DATABASE_ACQUIRE_TIMEOUT": "1s", "DATABASE_QUERY_TIMEOUT": "2s"}
	}, productionDrain)
	token := s.token("killed@example.com")
	// Six seconds of answer: outlasts the kill and the restart.
	s.oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply {
		return openaitest.Reply{Deltas: openaitest.Deltas(strings.Repeat("word ", 60)), Delay: 100 * time.Millisecond}
	})
	r := newRow("database killed (SIGKILL) and restarted, streams in flight")
	acked := []string{s.conversation(token), s.conversation(token)}
	convs := make([]string, streams)
	events := make([]<-chan event, streams)
	for i := range streams {
		convs[i] = s.conversation(token)
		var res reply
		events[i], res = s.ask(token, convs[i], fmt.Sprintf("question %d", i))
		g.Expect(res.status).To(Equal(200), res.body)
	}
	for _, ev := range events {
		firstDelta(t, ev)
	}

	cluster.Kill(t)
	acked = append(acked, burst(t, r, s, token, 3*time.Second, http.StatusServiceUnavailable)...)
	cluster.Restart(t)
	g.Eventually(func() int { return s.get("/v1/conversations", token).status }).
		WithTimeout(20*time.Second).WithPolling(200*time.Millisecond).Should(Equal(200), "serving again without a restart")

	turns := make([]turn, streams)
	var wg sync.WaitGroup
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			// The first delta was taken above: what was shown starts after it.
			text, last, err := untilEnd(events[i], 15*time.Second)
			if err != nil {
				t.Error(err)
				r.answered("cut", time.Since(start), streamBound)
				return
			}
			r.answered("sse:"+last.name, time.Since(start), streamBound)
			if last.name != "done" {
				t.Errorf("stream %d ended with %v", i, last.data)
			}
			turns[i] = turn{conversation: convs[i], question: fmt.Sprintf("question %d", i), status: "complete"}
			if !strings.HasSuffix(strings.Repeat("word ", 60), text) {
				t.Errorf("stream %d: %q is not the rest of the answer", i, text)
			}
		}()
	}
	wg.Wait()
	r.lost = lost(t, cluster.URL(), turns) + lostConversations(t, cluster.URL(), acked)
	r.settle(g, s.oai)
	rep.add(r)
}

// The JWKS endpoint hanging, failing, answering garbage or an empty key
// set, behind a proxy in front of the real BetterAuth: tokens of the keys
// already loaded keep working; a token of a key rotated meanwhile, or of a
// key nobody has, is refused with 401 within the request's deadline; once
// the endpoint heals, the rotated key is picked up without a restart.
func jwksSick(t *testing.T, rep *report) {
	const deadline = 3 * time.Second
	g := NewWithT(t)
	var proxy *betterauthtest.JWKSProxy
	s := startServe(t, pgtest.New(t), func(s *stack) map[string]string {
		proxy = betterauthtest.NewJWKSProxy(t, s.ba.URL)
		return map[string]string{"JWKS_URL": proxy.JWKSURL, "HTTP_REQUEST_TIMEOUT": deadline.String()}
	}, productionDrain)
	token := s.token("jwks@example.com")
	stranger := forgedToken(t, s.ba.URL)
	for _, tc := range []struct {
		name  string
		fault betterauthtest.Fault
	}{
		{"hanging", betterauthtest.Hang},
		{"answering 500", betterauthtest.Status500},
		{"answering garbage", betterauthtest.Garbage},
		{"answering an empty key set", betterauthtest.EmptySet},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := newRow("JWKS endpoint " + tc.name)
			proxy.SetFault(tc.fault)
			s.ba.RotateKeys(t)
			rotated := s.ba.Token(t, "jwks@example.com", password)
			tokens := []string{token, rotated, stranger}
			want := []int{http.StatusOK, http.StatusUnauthorized, http.StatusUnauthorized}
			concurrently(30, func(i int) {
				res := s.get("/v1/conversations", tokens[i%3])
				if !r.answered(statusOf(res), res.took, deadline) {
					t.Errorf("answered in %s", res.took)
				}
				if res.status != want[i%3] {
					t.Errorf("token %d: %d %s, want %d", i%3, res.status, res.body, want[i%3])
				}
				if res.status == http.StatusUnauthorized && !strings.Contains(res.body, `"code":"unauthorized"`) {
					t.Errorf("a 401 without the JSON error: %s", res.body)
				}
			})
			g.Eventually(func() string { return metric(s, dependency.MetricName+`{dependency="jwks"}`) }).
				WithTimeout(15*time.Second).WithPolling(200*time.Millisecond).Should(Equal("0"), "the JWKS reported down")

			proxy.SetFault(betterauthtest.Healthy)
			g.Eventually(func() int { return s.get("/v1/conversations", rotated).status }).
				WithTimeout(20*time.Second).WithPolling(500*time.Millisecond).Should(Equal(200), "the rotated key picked up")
			g.Expect(s.get("/v1/conversations", stranger).status).To(Equal(401))
			r.settle(g, s.oai)
			rep.add(r)
		})
	}
	g.Expect(proxy.Fetches()).To(BeNumerically(">", 4))
}

// forgedToken is a well-formed token for issuer, signed by a key nobody
// published, under a kid nobody has.
func forgedToken(t *testing.T, issuer string) string {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"sub": "stranger", "iss": issuer, "aud": issuer, "exp": time.Now().Add(time.Hour).Unix(),
		"iat": time.Now().Unix(), "email": "stranger@example.com",
	})
	tok.Header["kid"] = "chaos-unknown-kid"
	signed, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// metric is the value of the series named exactly series on the metrics
// listener ("" if absent).
func metric(s *stack, series string) string {
	res, err := s.client.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		return ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// A model that stalls before its first token or between two tokens, or
// whose connection is reset mid-stream, fails the answer within its bound:
// each client gets an error event, and each answer is stored as failed
// with exactly what its client was shown. A model that writes slowly but
// steadily is not cut, though the stream outlasts the body deadline and
// each token comes close to the idle bound.
func modelSick(t *testing.T, rep *report) {
	const bound = time.Second
	s := startServe(t, pgtest.New(t), func(*stack) map[string]string {
		return map[string]string{
			"OPENAI_FIRST_TOKEN_TIMEOUT": bound.String(), "OPENAI_IDLE_TIMEOUT": bound.String(),
			"HTTP_READ_BODY_TIMEOUT": bound.String(),
		}
	}, productionDrain)
	token := s.token("stall@example.com")
	const streams = 8
	// The connections kept alive to the model for this many streams are
	// part of the baseline, not something a fault left behind.
	concurrently(streams, func(int) {
		if events, res := s.ask(token, s.conversation(token), "warm-up"); res.status == http.StatusOK {
			_, _, _ = untilEnd(events, 15*time.Second)
		}
	})
	for _, tc := range []struct {
		name   string
		reply  openaitest.Reply
		event  string
		text   string
		status string
		took   time.Duration // the stream's bound
	}{
		{"slow but steady", openaitest.Reply{Deltas: []string{"a ", "b ", "c ", "d ", "e ", "f"}, Delay: bound / 2},
			"done", "a b c d e f", "complete", 6 * bound / 2},
		{"stalling before the first token", openaitest.Reply{Deltas: []string{"a ", "b ", "c"}, Stall: time.Minute},
			"error", "", "failed", bound},
		{"stalling mid-stream", openaitest.Reply{Deltas: []string{"a ", "b ", "c"}, Stall: time.Minute, StallAt: 2},
			"error", "a b ", "failed", bound},
		{"resetting the connection mid-stream", openaitest.Reply{Deltas: []string{"a ", "b ", "c"}, AbortAfter: 2, Reset: true},
			"error", "a b ", "failed", bound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := newRow("model " + tc.name)
			s.oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply { return tc.reply })
			turns := make([]turn, streams)
			convs := make([]string, streams)
			for i := range convs {
				convs[i] = s.conversation(token)
			}
			concurrently(streams, func(i int) {
				q := fmt.Sprintf("question %d", i)
				start := time.Now()
				events, res := s.ask(token, convs[i], q)
				if res.status != http.StatusOK {
					r.answered(statusOf(res), res.took, tc.took)
					t.Errorf("ask: %d %s %v", res.status, res.body, res.err)
					return
				}
				text, last, err := untilEnd(events, 15*time.Second)
				if !r.answered("sse:"+last.name, time.Since(start), tc.took) || err != nil {
					t.Errorf("stream %d: %s, %v", i, time.Since(start), err)
				}
				if last.name != tc.event || text != tc.text {
					t.Errorf("stream %d: %q then %s %v, want %q then %s", i, text, last.name, last.data, tc.text, tc.event)
				}
				if tc.event == "error" && fmt.Sprint(last.data["error"]) != fmt.Sprint(map[string]any{
					"code": "upstream_error", "message": "the language model failed; the answer is incomplete"}) {
					t.Errorf("stream %d: error %v", i, last.data["error"])
				}
				turns[i] = turn{conversation: convs[i], question: q, shown: text, exact: true, status: tc.status}
			})
			r.lost = lost(t, s.dbURL, turns)
			g.Expect(s.get("/v1/conversations", token).status).To(Equal(200))
			r.settle(g, s.oai)
			rep.add(r)
		})
	}
}

// SIGTERM while answers stream: the server stops accepting, and the
// streams that outlast the drain are cut, each answer stored as incomplete
// with exactly what its client was shown, the client told so in a last
// event; only then does the pool close. The shutdown itself is bounded.
func sigterm(t *testing.T, rep *report) {
	const streams = 6
	g := NewWithT(t)
	drain := drainTiming{total: 4 * time.Second, cutAfter: 2 * time.Second}
	dbURL := pgtest.New(t)
	s := startServe(t, dbURL, nil, drain)
	token := s.token("sigterm@example.com")
	r := newRow("SIGTERM with streams in flight")
	// Twenty seconds of answer: far longer than the drain.
	s.oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply {
		return openaitest.Reply{Deltas: openaitest.Deltas(strings.Repeat("word ", 100)), Delay: 200 * time.Millisecond}
	})
	convs := make([]string, streams)
	events := make([]<-chan event, streams)
	shown := make([]string, streams)
	for i := range streams {
		convs[i] = s.conversation(token)
		var res reply
		events[i], res = s.ask(token, convs[i], fmt.Sprintf("question %d", i))
		g.Expect(res.status).To(Equal(200), res.body)
	}
	for i, ev := range events {
		shown[i] = firstDelta(t, ev)
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
	turns := make([]turn, streams)
	concurrently(streams, func(i int) {
		rest, last, err := untilEnd(events[i], drain.total+5*time.Second)
		if !r.answered("sse:"+last.name, time.Since(start), drain.total) || err != nil {
			t.Errorf("stream %d: %v", i, err)
		}
		if last.name != "error" || !strings.Contains(fmt.Sprint(last.data["error"]), "shutting down") {
			t.Errorf("stream %d ended with %s %v", i, last.name, last.data)
		}
		turns[i] = turn{conversation: convs[i], question: fmt.Sprintf("question %d", i), shown: shown[i] + rest,
			exact: true, status: "incomplete"}
	})
	g.Eventually(s.done).WithTimeout(drain.total+stragglersTimeout+5*time.Second).Should(BeClosed(), "serve returned")
	g.Expect(s.err).NotTo(HaveOccurred())
	g.Expect(time.Since(start)).To(BeNumerically("<", drain.total+stragglersTimeout+2*time.Second), "shutdown is bounded")
	g.Expect(s.logs.String()).NotTo(ContainSubstring("closed pool"))
	// The server is gone: lost reads what it stored straight from the database.
	r.lost = lost(t, dbURL, turns)
	r.settle(g, s.oai)
	rep.add(r)
}
