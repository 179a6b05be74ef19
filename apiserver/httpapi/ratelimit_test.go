package httpapi_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatbackend/chatbackend/apiserver/chat"
	"github.com/chatbackend/chatbackend/apiserver/httpapi"
	"github.com/chatbackend/chatbackend/apiserver/openapi"
	"github.com/chatbackend/chatbackend/apiserver/store"
	"github.com/chatbackend/chatbackend/internal/openaitest"
)

func withWriteRateLimit(perMinute float64, burst int) option {
	return func(_ *env, d *httpapi.Deps) {
		d.WriteRateLimit = httpapi.RateLimit{PerMinute: perMinute, Burst: burst}
	}
}

func withMaxStreams(n int) option {
	return func(_ *env, d *httpapi.Deps) { d.MaxStreams = n }
}

// writeRoute is how the test calls one write route: a request that is
// valid for a fresh user, and requests that are not.
type writeRoute struct {
	// path makes the request's path, creating what it refers to directly
	// in the store (so that no budget is spent on it).
	path    func(t *testing.T, userID string) string
	valid   string
	invalid []string
}

func writeRoutes(e *env) map[string]writeRoute {
	ctx := context.Background()
	conversation := func(t *testing.T, userID string) string {
		c, err := e.store.CreateConversation(ctx, userID, "t")
		if err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	noBody := []string{"", `{`, `{"title":5}`, `{"unknown":1}`}
	return map[string]writeRoute{
		"POST /v1/conversations": {
			path:    func(*testing.T, string) string { return "/v1/conversations" },
			valid:   `{"title":"t"}`,
			invalid: []string{`{`, `{"title":5}`, `{"title":"` + strings.Repeat("x", store.MaxTitleLen+1) + `"}`},
		},
		"PATCH /v1/conversations/{id}": {
			path:    func(t *testing.T, u string) string { return "/v1/conversations/" + conversation(t, u) },
			valid:   `{"title":"renamed"}`,
			invalid: []string{`{}`, `{"title":null}`, `[]`},
		},
		// No body to validate; a malformed id is refused before the route's
		// handler (404) where the strict id parser applies.
		"DELETE /v1/conversations/{id}": {
			path: func(t *testing.T, u string) string { return "/v1/conversations/" + conversation(t, u) },
		},
		"POST /v1/conversations/{id}/messages": {
			path:    func(t *testing.T, u string) string { return "/v1/conversations/" + conversation(t, u) + "/messages" },
			valid:   `{"content":"Which port does Qdrant use?"}`,
			invalid: append(noBody, `{"content":"   "}`, `{"content":"`+strings.Repeat("x", chat.MaxQuestionChars+1)+`"}`),
		},
		"POST /v1/conversations/{id}/messages/{messageID}/stop": {
			path: func(t *testing.T, u string) string {
				conv := conversation(t, u)
				m, err := e.store.AddMessages(ctx, u, conv, store.NewMessage{Role: store.RoleAssistant, Status: store.StatusStreaming})
				if err != nil {
					t.Fatal(err)
				}
				return "/v1/conversations/" + conv + "/messages/" + m[0].ID + "/stop"
			},
		},
		"POST /v1/conversations/{id}/messages/{messageID}/regenerate": {
			path: func(t *testing.T, u string) string {
				conv := conversation(t, u)
				m, err := e.store.AddMessages(ctx, u, conv, store.NewMessage{Role: store.RoleUser, Content: "Which port does Qdrant use?"},
					store.NewMessage{Role: store.RoleAssistant, Content: "a"})
				if err != nil {
					t.Fatal(err)
				}
				return "/v1/conversations/" + conv + "/messages/" + m[1].ID + "/regenerate"
			},
		},
		"POST /v1/messages/{id}/feedback": {
			path: func(t *testing.T, u string) string {
				m, err := e.store.AddMessages(ctx, u, conversation(t, u), store.NewMessage{Role: store.RoleAssistant, Content: "a"})
				if err != nil {
					t.Fatal(err)
				}
				return "/v1/messages/" + m[0].ID + "/feedback"
			},
			valid:   `{"rating":"up"}`,
			invalid: []string{`{"rating":"meh"}`, `{}`, `{"rating":"up","comment":"` + strings.Repeat("x", store.MaxCommentChars+1) + `"}`},
		},
		"POST /agents/run": {
			path:    func(*testing.T, string) string { return "/agents/run" },
			valid:   `{"question":"Which port does Qdrant use?"}`,
			invalid: []string{`{"question":""}`, `{"question":"hi","extra":1}`, `{`},
		},
	}
}

// TestEveryWriteRouteIsRateLimitedAfterValidation: every operation of the
// API that writes (each POST, PATCH and DELETE in openapi.yaml) spends the
// user's budget, answers 429 with Retry-After once it is spent, and
// invalid requests, answered 400 however many, spend nothing.
func TestEveryWriteRouteIsRateLimitedAfterValidation(t *testing.T) {
	const burst = 2
	e := newEnv(t, withChat(t, nil), withRateLimit(1, burst), withWriteRateLimit(1, burst))
	routes := writeRoutes(e)

	paths, err := openapi.Paths()
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	var writes []string
	for p, methods := range paths {
		for _, m := range methods {
			if m != http.MethodGet {
				writes = append(writes, m+" "+p)
			}
		}
	}
	sort.Strings(writes)
	NewWithT(t).Expect(writes).To(HaveLen(len(routes)), "a write route without a case here: add it to writeRoutes")

	for i, op := range writes {
		t.Run(op, func(t *testing.T) {
			g := NewWithT(t)
			route, ok := routes[op]
			g.Expect(ok).To(BeTrue(), "no case for the write route %s in writeRoutes", op)
			method, _, _ := strings.Cut(op, " ")
			// A user of its own: each route's budget starts full.
			userID, token := e.user("writer"+strconv.Itoa(i)+"@example.com", "Writer")
			g.Expect(e.do(http.MethodGet, "/v1/me", token, nil).status).To(Equal(http.StatusOK), "the users row")
			send := func(body string) resp {
				var r resp
				if body == "" {
					r = e.do(method, route.path(t, userID), token, nil)
				} else {
					r = e.do(method, route.path(t, userID), token, str(body))
				}
				return r
			}
			for _, bad := range route.invalid {
				r := send(bad)
				g.Expect(r.status).To(Equal(http.StatusBadRequest), "%.40s: %s", bad, r.body)
			}
			for range burst {
				r := send(route.valid)
				g.Expect(r.status).To(BeNumerically("<", 300), string(r.body))
			}
			r := send(route.valid)
			g.Expect(r.status).To(Equal(http.StatusTooManyRequests), string(r.body))
			g.Expect(errorCode(g, r)).To(Equal("rate_limited"))
			retry, err := strconv.Atoi(r.header.Get("Retry-After"))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(retry).To(BeNumerically("~", 60, 2))
			// Over the limit, an invalid request is still the client's error.
			if len(route.invalid) > 0 {
				g.Expect(send(route.invalid[0]).status).To(Equal(http.StatusBadRequest))
			}
		})
	}
}

// TestStreamCapPerReplica: with every stream slot taken, another stream is
// refused with 503 too_many_streams and Retry-After, without spending the
// user's budget; a client that goes away gives its slot back.
func TestStreamCapPerReplica(t *testing.T) {
	g := NewWithT(t)
	oai := openaitest.Start(t)
	// The model stalls between words: a stream lasts until its client leaves.
	oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply {
		return openaitest.Reply{Deltas: openaitest.Deltas(strings.Repeat("slow words ", 200)), Delay: 100 * time.Millisecond}
	})
	// A chat budget of two: the first stream and the one after it.
	e := newEnv(t, withChat(t, oai), withMaxStreams(1), withRateLimit(1, 2))
	_, token := e.user("streamer@example.com", "Streamer")
	conv := e.newConversation(token)
	path := "/v1/conversations/" + conv + "/messages"

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := e.stream(ctx, path, token, `{"content":"keys?"}`)
	g.Expect(first.StatusCode).To(Equal(http.StatusOK))
	sc := bufio.NewScanner(first.Body)
	g.Expect(sc.Scan()).To(BeTrue())
	g.Expect(sc.Text()).To(Equal("event: message_start"))
	g.Expect(streamsOpen(g, e)).To(Equal(1.0), "the open stream is counted")

	refused := e.do(http.MethodPost, path, token, str(`{"content":"again?"}`), "Accept", "text/event-stream")
	g.Expect(refused.status).To(Equal(http.StatusServiceUnavailable), string(refused.body))
	g.Expect(errorCode(g, refused)).To(Equal("too_many_streams"))
	g.Expect(refused.header.Get("Retry-After")).To(Equal(strconv.Itoa(httpapi.RetryAfterStreams)))

	// The client of the first stream goes away: its slot comes back.
	cancel()
	first.Body.Close()
	g.Eventually(func() int {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		res := e.stream(ctx, path, token, `{"content":"third?"}`)
		defer res.Body.Close()
		return res.StatusCode
	}).WithTimeout(10*time.Second).WithPolling(100*time.Millisecond).Should(Equal(http.StatusOK),
		"the slot of the aborted stream is not released (or the refused stream spent the budget)")
	g.Eventually(func() float64 { return streamsOpen(g, e) }).WithTimeout(10*time.Second).Should(BeZero(),
		"a stream that ended is still counted as open")
}

// streamsOpen reads chatbackend_sse_streams_open from the env's registry.
func streamsOpen(g Gomega, e *env) float64 {
	mfs, err := e.reg.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, mf := range mfs {
		if mf.GetName() == "chatbackend_sse_streams_open" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	g.Expect("chatbackend_sse_streams_open").To(BeEmpty(), "the gauge is not registered")
	return -1
}

// replica is a second chat-apiserver router on the env's database: its
// own pool, limiter state and metrics, as another pod of the Deployment has.
func (e *env) replica() http.Handler {
	e.t.Helper()
	pool, err := store.Open(context.Background(), e.db.url, store.Options{ConnectTimeout: 10 * time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(pool.Close)
	d := e.deps
	// The chat service (its engine) is shared: what a replica keeps of the
	// limits is in the router and its store.
	d.Store = store.New(pool)
	d.Registerer = prometheus.NewRegistry()
	h, err := httpapi.New(d)
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

// TestRateLimitIsSharedByReplicas: two replicas behind one address (a
// round-robin proxy, as a Service spreads requests) let a user through the
// limit once, not once per replica.
func TestRateLimitIsSharedByReplicas(t *testing.T) {
	g := NewWithT(t)
	const burst = 3
	e := newEnv(t, withChat(t, nil), withRateLimit(1, burst), withWriteRateLimit(1, burst))
	second := httptest.NewServer(e.replica())
	t.Cleanup(second.Close)
	var targets []*url.URL
	for _, u := range []string{e.url, second.URL} {
		target, err := url.Parse(u)
		g.Expect(err).NotTo(HaveOccurred())
		targets = append(targets, target)
	}
	var next atomic.Uint64
	lb := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(targets[next.Add(1)%uint64(len(targets))])
	}})
	t.Cleanup(lb.Close)
	e.url = lb.URL

	_, token := e.user("everywhere@example.com", "Everywhere")
	for _, call := range []struct{ path, body string }{
		{"/v1/conversations", `{"title":"t"}`},
		{"/agents/run", `{"question":"Which port does Qdrant use?"}`},
	} {
		var statuses []int
		for range 2 * burst {
			statuses = append(statuses, e.do(http.MethodPost, call.path, token, str(call.body)).status)
		}
		ok := 0
		for _, s := range statuses {
			if s < 300 {
				ok++
			} else {
				g.Expect(s).To(Equal(http.StatusTooManyRequests), call.path)
			}
		}
		g.Expect(ok).To(Equal(burst), "%s: %v across two replicas", call.path, statuses)
	}
}

// TestCreateConversationOverTheLimitCreatesNothing: creating a conversation
// takes its token in the insert's own statement; it shares the write budget
// with the other write routes, and refused (429, Retry-After, the error
// body) it stores no conversation.
func TestCreateConversationOverTheLimitCreatesNothing(t *testing.T) {
	g := NewWithT(t)
	e := newEnv(t, withWriteRateLimit(1, 2))
	_, token := e.user("creator@example.com", "Creator")
	list := func() []any {
		r := e.do(http.MethodGet, "/v1/conversations", token, nil)
		g.Expect(r.status).To(Equal(http.StatusOK), string(r.body))
		items, _ := r.json()["items"].([]any)
		return items
	}
	r := e.do(http.MethodPost, "/v1/conversations", token, str(`{"title":"first"}`))
	g.Expect(r.status).To(Equal(http.StatusCreated), string(r.body))
	g.Expect(r.json()["title"]).To(Equal("first"))
	// The second token, spent by another write route (rename).
	r = e.do(http.MethodPatch, "/v1/conversations/"+r.json()["id"].(string), token, str(`{"title":"renamed"}`))
	g.Expect(r.status).To(Equal(http.StatusOK), string(r.body))

	for range 3 {
		r = e.do(http.MethodPost, "/v1/conversations", token, str(`{"title":"over"}`))
		g.Expect(r.status).To(Equal(http.StatusTooManyRequests), string(r.body))
		g.Expect(errorCode(g, r)).To(Equal("rate_limited"))
		g.Expect(r.json()["error"]).To(HaveKeyWithValue("message", MatchRegexp(`^too many write requests; retry in \d+ s$`)))
		retry, err := strconv.Atoi(r.header.Get("Retry-After"))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(retry).To(BeNumerically("~", 60, 2))
	}
	g.Expect(list()).To(HaveLen(1), "refused creates store nothing")

	// Another user's budget is their own.
	_, other := e.user("other@example.com", "Other")
	g.Expect(e.do(http.MethodPost, "/v1/conversations", other, nil).status).To(Equal(http.StatusCreated))
}
