package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chatbackend/chatbackend/apiserver/auth"
	"github.com/chatbackend/chatbackend/apiserver/chat"
	"github.com/chatbackend/chatbackend/apiserver/dependency"
	"github.com/chatbackend/chatbackend/apiserver/httpapi"
	"github.com/chatbackend/chatbackend/apiserver/openapi"
	"github.com/chatbackend/chatbackend/apiserver/rag"
	"github.com/chatbackend/chatbackend/apiserver/store"
	"github.com/chatbackend/chatbackend/apiserver/store/migrations"
	"github.com/chatbackend/chatbackend/internal/betterauthtest"
	"github.com/chatbackend/chatbackend/internal/pgtest"
	"github.com/chatbackend/chatbackend/internal/testutil"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const allowedOrigin = "https://docs.example.com"

// env is a chat-apiserver router wired to a real PostgreSQL and a real
// BetterAuth, served over HTTP.
type env struct {
	t     *testing.T
	url   string
	dbURL string
	db    *proxy
	pool  *pgxpool.Pool
	store *store.Store
	ba    *betterauthtest.Server
	reg   *prometheus.Registry
	logs  *testutil.SyncBuffer
	// stop is the router's ShuttingDown channel.
	stop chan struct{}
	// deps built the router, for a second replica (replica).
	deps httpapi.Deps
}

type option func(*env, *httpapi.Deps)

func newEnv(t *testing.T, opts ...option) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, dbURL: pgtest.New(t), reg: prometheus.NewRegistry(), logs: &testutil.SyncBuffer{}, stop: make(chan struct{})}
	if _, err := migrations.Migrate(ctx, e.dbURL, nil, nil); err != nil {
		t.Fatal(err)
	}
	var err error
	// Through a proxy the test can cut, to see the server without its database.
	e.db = startProxy(t, e.dbURL)
	e.pool, err = store.Open(ctx, e.db.url, store.Options{ConnectTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.pool.Close)
	e.store = store.New(e.pool)
	e.ba = betterauthtest.Start(t)
	logger := slog.New(slog.NewJSONHandler(e.logs, nil))
	v, err := auth.New(ctx, auth.Options{JWKSURL: e.ba.JWKSURL, Issuer: e.ba.URL, Registerer: e.reg, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	NewWithT(t).Eventually(v.Ready).WithTimeout(10 * time.Second).Should(Succeed())
	// The offline chat with no docs ingested; withChat replaces it.
	engine, closeEngine, err := rag.New(rag.Config{TopK: 3}, e.pool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeEngine() })
	deps := httpapi.Deps{
		Store: e.store, Chat: chat.New(e.store, engine, logger), Auth: v,
		ChatRateLimit: httpapi.RateLimit{PerMinute: 6000, Burst: 100}, ShuttingDown: e.stop,
		WriteRateLimit: httpapi.RateLimit{PerMinute: 6000, Burst: 1000}, MaxStreams: 100,
		Logger: logger, Registerer: e.reg, CORSAllowedOrigins: []string{allowedOrigin},
	}
	for _, o := range opts {
		o(e, &deps)
	}
	e.deps = deps
	h, err := httpapi.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// user signs a new user up with BetterAuth and returns their id and a token.
func (e *env) user(email, name string) (id, token string) {
	e.t.Helper()
	id = e.ba.SignUp(e.t, email, name, "correct horse battery staple")
	return id, e.ba.Token(e.t, email, "correct horse battery staple")
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json() map[string]any {
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		panic(string(r.body))
	}
	return m
}

func (e *env) do(method, path, token string, body io.Reader, headers ...string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func str(s string) io.Reader { return strings.NewReader(s) }

// errorCode checks the error envelope and returns its code.
func errorCode(g Gomega, r resp) string {
	g.ExpectWithOffset(1, r.header.Get("Content-Type")).To(HavePrefix("application/json"))
	var b struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	g.ExpectWithOffset(1, json.Unmarshal(r.body, &b)).To(Succeed(), string(r.body))
	g.ExpectWithOffset(1, b.Error.Message).NotTo(BeEmpty())
	return b.Error.Code
}

func TestBetterAuthTokenCreatesAndSyncsTheUser(t *testing.T) {
	g := NewWithT(t)
	e := newEnv(t)
	ctx := context.Background()
	id, token := e.user("alice@example.com", "Alice")

	r := e.do("GET", "/v1/me", token, nil)
	g.Expect(r.status).To(Equal(200), string(r.body))
	g.Expect(r.body).To(MatchJSON(`{"id":"` + id + `","email":"alice@example.com","name":"Alice"}`))
	u, err := e.store.GetUser(ctx, id)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(u.Email).To(Equal("alice@example.com"))

	// With unchanged claims the server does not write the row again: a value
	// changed behind its back stays.
	pool := e.pool
	_, err = pool.Exec(ctx, `UPDATE users SET name = 'edited' WHERE id = $1`, id)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(e.do("GET", "/v1/me", token, nil).status).To(Equal(200))
	u, _ = e.store.GetUser(ctx, id)
	g.Expect(u.Name).To(Equal("edited"))

	// When BetterAuth's claims change, the row follows.
	renamed := renameInBetterAuth(t, e.ba.URL, "alice@example.com", "correct horse battery staple", "Alice B.")
	r = e.do("GET", "/v1/me", renamed, nil)
	g.Expect(r.status).To(Equal(200), string(r.body))
	g.Expect(r.json()["name"]).To(Equal("Alice B."))
	u, _ = e.store.GetUser(ctx, id)
	g.Expect(u.Name).To(Equal("Alice B."))
}

// renameInBetterAuth changes the user's name through BetterAuth's own
// update-user endpoint, as the account page of a site would, and returns a
// fresh token carrying the new name.
func renameInBetterAuth(t *testing.T, baseURL, email, password, name string) string {
	t.Helper()
	// post returns the response's cookies: the body is read and closed here.
	post := func(path string, body any, cookies []*http.Cookie) []*http.Cookie {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", baseURL+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", baseURL)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("BetterAuth %s: %d %s", path, res.StatusCode, out)
		}
		return res.Cookies()
	}
	cookies := post("/api/auth/sign-in/email", map[string]string{"email": email, "password": password}, nil)
	post("/api/auth/update-user", map[string]string{"name": name}, cookies)
	req, _ := http.NewRequest("GET", baseURL+"/api/auth/token", nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct{ Token string }
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || out.Token == "" {
		t.Fatalf("BetterAuth /api/auth/token: status %d, %v", res.StatusCode, err)
	}
	return out.Token
}

func TestRoutes(t *testing.T) {
	e := newEnv(t)
	aliceID, alice := e.user("alice@example.com", "Alice")
	_, bob := e.user("bob@example.com", "Bob")

	t.Run("probes", func(t *testing.T) {
		g := NewWithT(t)
		r := e.do("GET", "/healthz", "", nil)
		g.Expect(r.status).To(Equal(200))
		r = e.do("GET", "/readyz", "", nil)
		g.Expect(r.status).To(Equal(200), string(r.body))
		g.Expect(r.body).To(MatchJSON(`{"status":"ok","checks":{"database":"ok","schema":"ok"}}`))
	})

	t.Run("authentication is required under /v1 and /agents", func(t *testing.T) {
		g := NewWithT(t)
		for _, route := range [][2]string{{"GET", "/v1/me"}, {"GET", "/v1/conversations"}, {"POST", "/agents/run"}} {
			method, path := route[0], route[1]
			r := e.do(method, path, "", nil)
			g.Expect(r.status).To(Equal(401), path)
			g.Expect(errorCode(g, r)).To(Equal("unauthorized"))
			g.Expect(r.header.Get("WWW-Authenticate")).To(HavePrefix("Bearer"))
			r = e.do(method, path, "not-a-jwt", nil)
			g.Expect(r.status).To(Equal(401), path)
			g.Expect(r.header.Get("WWW-Authenticate")).To(Equal(`Bearer error="invalid_token"`))
			g.Expect(string(r.body)).NotTo(ContainSubstring("not-a-jwt"))
		}
	})

	t.Run("conversation lifecycle", func(t *testing.T) {
		g := NewWithT(t)
		// No body, an empty object and a title are all fine.
		r := e.do("POST", "/v1/conversations", alice, nil)
		g.Expect(r.status).To(Equal(201), string(r.body))
		g.Expect(r.json()).To(HaveKeyWithValue("title", ""))
		r = e.do("POST", "/v1/conversations", alice, str(`{}`), "Content-Type", "application/json")
		g.Expect(r.status).To(Equal(201), string(r.body))
		r = e.do("POST", "/v1/conversations", alice, str(`{"title":"Install guide"}`), "Content-Type", "application/json")
		g.Expect(r.status).To(Equal(201), string(r.body))
		created := r.json()
		g.Expect(created).To(HaveKeyWithValue("title", "Install guide"))
		g.Expect(created).To(HaveLen(4)) // id, title, created_at, updated_at
		id := created["id"].(string)
		for _, k := range []string{"created_at", "updated_at"} {
			_, err := time.Parse(time.RFC3339, created[k].(string))
			g.Expect(err).NotTo(HaveOccurred(), "%s is RFC 3339", k)
		}

		r = e.do("GET", "/v1/conversations/"+id, alice, nil)
		g.Expect(r.status).To(Equal(200))
		g.Expect(r.body).To(MatchJSON(mustJSON(created)))

		r = e.do("PATCH", "/v1/conversations/"+id, alice, str(`{"title":"Upgrade guide"}`))
		g.Expect(r.status).To(Equal(200), string(r.body))
		g.Expect(r.json()).To(HaveKeyWithValue("title", "Upgrade guide"))
		g.Expect(r.json()["updated_at"]).NotTo(Equal(created["updated_at"]))

		r = e.do("GET", "/v1/conversations", alice, nil)
		g.Expect(r.status).To(Equal(200))
		list := r.json()
		g.Expect(list).To(HaveKeyWithValue("next_cursor", BeNil()))
		g.Expect(list["items"]).To(HaveLen(3))
		g.Expect(list["items"].([]any)[0]).To(HaveKeyWithValue("id", id), "the renamed one is the most recent")

		r = e.do("DELETE", "/v1/conversations/"+id, alice, nil)
		g.Expect(r.status).To(Equal(204))
		g.Expect(r.body).To(BeEmpty())
		for _, m := range []string{"GET", "DELETE"} {
			r = e.do(m, "/v1/conversations/"+id, alice, nil)
			g.Expect(r.status).To(Equal(404), m)
			g.Expect(errorCode(g, r)).To(Equal("not_found"))
		}
		r = e.do("PATCH", "/v1/conversations/"+id, alice, str(`{"title":"x"}`))
		g.Expect(r.status).To(Equal(404))
		r = e.do("GET", "/v1/conversations/"+id+"/messages", alice, nil)
		g.Expect(r.status).To(Equal(404))
		r = e.do("GET", "/v1/conversations", alice, nil)
		g.Expect(r.json()["items"]).To(HaveLen(2))
		g.Expect(string(r.body)).NotTo(ContainSubstring(id))
	})

	t.Run("messages oldest first with paging", func(t *testing.T) {
		g := NewWithT(t)
		ctx := context.Background()
		conv, err := e.store.CreateConversation(ctx, aliceID, "with messages")
		g.Expect(err).NotTo(HaveOccurred())
		var want []string
		for i := range 5 {
			added, err := e.store.AddMessages(ctx, aliceID, conv.ID,
				store.NewMessage{Role: "user", Content: "question " + string(rune('0'+i))},
				store.NewMessage{Role: "assistant", Content: "answer", AgentType: "docs",
					Sources: json.RawMessage(`[{"title":"Install","url":"https://docs.example.com/install"}]`)})
			g.Expect(err).NotTo(HaveOccurred())
			want = append(want, added[0].ID, added[1].ID)
		}
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			g.Expect(pages).To(BeNumerically("<", 10))
			r := e.do("GET", "/v1/conversations/"+conv.ID+"/messages?limit=3&cursor="+cursor, alice, nil)
			g.Expect(r.status).To(Equal(200), string(r.body))
			var page struct {
				Items []struct {
					ID, Role, Content, AgentType string
					Sources                      json.RawMessage
					CreatedAt                    time.Time `json:"created_at"`
				}
				NextCursor *string `json:"next_cursor"`
			}
			g.Expect(json.Unmarshal(r.body, &page)).To(Succeed())
			for _, m := range page.Items {
				got = append(got, m.ID)
				g.Expect(m.CreatedAt).NotTo(BeZero())
				if m.Role == "assistant" {
					g.Expect(m.Sources).To(MatchJSON(`[{"title":"Install","url":"https://docs.example.com/install"}]`))
				} else {
					g.Expect(m.Sources).To(MatchJSON(`[]`))
				}
			}
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
		}
		g.Expect(got).To(Equal(want))
		r := e.do("GET", "/v1/conversations/"+conv.ID+"/messages", alice, nil)
		g.Expect(r.json()["items"].([]any)[1]).To(And(
			HaveKeyWithValue("role", "assistant"), HaveKeyWithValue("content", "answer"),
			HaveKeyWithValue("agent_type", "docs"), HaveKeyWithValue("conversation_id", conv.ID),
			HaveKeyWithValue("status", "complete"), HaveKeyWithValue("model", ""),
			HaveKeyWithValue("usage", map[string]any{"prompt_tokens": 0.0, "completion_tokens": 0.0, "total_tokens": 0.0}),
			HaveKey("created_at"), HaveKey("id"), HaveKey("sources")))
	})

	t.Run("another user's conversation is not found", func(t *testing.T) {
		g := NewWithT(t)
		r := e.do("POST", "/v1/conversations", alice, str(`{"title":"private"}`))
		g.Expect(r.status).To(Equal(201))
		id := r.json()["id"].(string)
		_, err := e.store.AddMessages(context.Background(), aliceID, id, store.NewMessage{Role: "user", Content: "secret"})
		g.Expect(err).NotTo(HaveOccurred())

		missing := e.do("GET", "/v1/conversations/00000000-0000-4000-8000-000000000000", bob, nil)
		g.Expect(missing.status).To(Equal(404))
		for _, req := range []struct{ method, path, body string }{
			{"GET", "/v1/conversations/" + id, ""},
			{"PATCH", "/v1/conversations/" + id, `{"title":"bob's now"}`},
			{"DELETE", "/v1/conversations/" + id, ""},
			{"GET", "/v1/conversations/" + id + "/messages", ""},
		} {
			r := e.do(req.method, req.path, bob, str(req.body))
			g.Expect(r.status).To(Equal(404), "%s %s", req.method, req.path)
			g.Expect(r.body).To(MatchJSON(missing.body), "indistinguishable from a missing one")
		}
		r = e.do("GET", "/v1/conversations", bob, nil)
		g.Expect(r.body).To(MatchJSON(`{"items":[],"next_cursor":null}`))

		r = e.do("GET", "/v1/conversations/"+id, alice, nil)
		g.Expect(r.status).To(Equal(200))
		g.Expect(r.json()["title"]).To(Equal("private"))
		r = e.do("GET", "/v1/conversations/"+id+"/messages", alice, nil)
		g.Expect(r.json()["items"]).To(HaveLen(1))
	})

	t.Run("malformed ids are not found", func(t *testing.T) {
		g := NewWithT(t)
		for _, id := range []string{"nope", "123", "00000000-0000-4000-8000-00000000000g", "%27%20OR%201=1--"} {
			for _, m := range []string{"GET", "DELETE"} {
				r := e.do(m, "/v1/conversations/"+id, alice, nil)
				g.Expect(r.status).To(Equal(404), "%s %s", m, id)
				g.Expect(errorCode(g, r)).To(Equal("not_found"))
			}
			g.Expect(e.do("PATCH", "/v1/conversations/"+id, alice, str(`{"title":"x"}`)).status).To(Equal(404))
			g.Expect(e.do("GET", "/v1/conversations/"+id+"/messages", alice, nil).status).To(Equal(404))
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		g := NewWithT(t)
		r := e.do("POST", "/v1/conversations", alice, str(`{"title":"t"}`))
		g.Expect(r.status).To(Equal(201))
		id := r.json()["id"].(string)
		cases := []struct{ name, method, path, body string }{
			{"bad JSON", "POST", "/v1/conversations", `{"title":`},
			{"not JSON", "POST", "/v1/conversations", `title=x`},
			{"unknown field", "POST", "/v1/conversations", `{"title":"x","owner":"bob"}`},
			{"two objects", "POST", "/v1/conversations", `{"title":"x"}{"title":"y"}`},
			{"array", "POST", "/v1/conversations", `[{"title":"x"}]`},
			{"wrong type", "POST", "/v1/conversations", `{"title":5}`},
			{"long title", "POST", "/v1/conversations", `{"title":"` + strings.Repeat("a", 256) + `"}`},
			{"long title rename", "PATCH", "/v1/conversations/" + id, `{"title":"` + strings.Repeat("ü", 256) + `"}`},
			{"rename without title", "PATCH", "/v1/conversations/" + id, `{}`},
			{"rename without body", "PATCH", "/v1/conversations/" + id, ``},
			{"rename unknown field", "PATCH", "/v1/conversations/" + id, `{"title":"x","is_active":false}`},
			{"bad limit", "GET", "/v1/conversations?limit=abc", ``},
			{"zero limit", "GET", "/v1/conversations?limit=0", ``},
			{"bad cursor", "GET", "/v1/conversations?cursor=bm90LWEtY3Vyc29y", ``},
			{"bad messages cursor", "GET", "/v1/conversations/" + id + "/messages?cursor=%21%21", ``},
		}
		for _, tc := range cases {
			r := e.do(tc.method, tc.path, alice, str(tc.body), "Content-Type", "application/json")
			g.Expect(r.status).To(Equal(400), "%s: %s", tc.name, r.body)
			g.Expect(errorCode(g, r)).To(Equal("bad_request"), tc.name)
		}
		// 255 characters (not bytes) is the limit.
		r = e.do("PATCH", "/v1/conversations/"+id, alice, str(`{"title":"`+strings.Repeat("ü", 255)+`"}`))
		g.Expect(r.status).To(Equal(200), string(r.body))
		// The failed requests changed nothing.
		r = e.do("GET", "/v1/conversations/"+id, alice, nil)
		g.Expect(r.json()["title"]).To(Equal(strings.Repeat("ü", 255)))
		// A limit above the maximum is capped, not refused.
		g.Expect(e.do("GET", "/v1/conversations?limit=1000", alice, nil).status).To(Equal(200))
	})

	t.Run("bodies over 1 MiB", func(t *testing.T) {
		g := NewWithT(t)
		big := `{"title":"` + strings.Repeat("a", 1<<20) + `"}`
		r := e.do("POST", "/v1/conversations", alice, str(big))
		g.Expect(r.status).To(Equal(413))
		g.Expect(errorCode(g, r)).To(Equal("request_too_large"))
		// Without a Content-Length (chunked), the limit applies while reading.
		r = e.do("POST", "/v1/conversations", alice, io.MultiReader(str(big)))
		g.Expect(r.status).To(Equal(413))
		g.Expect(errorCode(g, r)).To(Equal("request_too_large"))
		// Padding with whitespace below the limit is just JSON.
		r = e.do("POST", "/v1/conversations", alice, str(`{"title":"ok"}`+strings.Repeat(" ", 1<<19)))
		g.Expect(r.status).To(Equal(201))
	})

	t.Run("unknown routes and methods", func(t *testing.T) {
		g := NewWithT(t)
		r := e.do("GET", "/v2/nothing", alice, nil)
		g.Expect(r.status).To(Equal(404))
		g.Expect(errorCode(g, r)).To(Equal("not_found"))
		r = e.do("GET", "/v1/conversations/", alice, nil)
		g.Expect(r.status).To(Equal(404))
		r = e.do("PUT", "/v1/conversations", alice, str(`{}`))
		g.Expect(r.status).To(Equal(405))
		g.Expect(errorCode(g, r)).To(Equal("method_not_allowed"))
	})

	t.Run("CORS", func(t *testing.T) {
		g := NewWithT(t)
		r := e.do("GET", "/v1/me", alice, nil, "Origin", allowedOrigin)
		g.Expect(r.status).To(Equal(200))
		g.Expect(r.header.Get("Access-Control-Allow-Origin")).To(Equal(allowedOrigin))
		g.Expect(r.header.Values("Vary")).To(ContainElement("Origin"))
		// Errors carry the header too, so the page can read them.
		r = e.do("GET", "/v1/me", "", nil, "Origin", allowedOrigin)
		g.Expect(r.status).To(Equal(401))
		g.Expect(r.header.Get("Access-Control-Allow-Origin")).To(Equal(allowedOrigin))
		// ...and may read the challenge, and Retry-After on a 429.
		g.Expect(r.header.Get("WWW-Authenticate")).NotTo(BeEmpty())
		exposed := strings.Split(r.header.Get("Access-Control-Expose-Headers"), ",")
		for i := range exposed {
			exposed[i] = strings.ToLower(strings.TrimSpace(exposed[i]))
		}
		g.Expect(exposed).To(ContainElements("retry-after", "www-authenticate"))

		r = e.do("GET", "/v1/me", alice, nil, "Origin", "https://evil.example.com")
		g.Expect(r.header.Get("Access-Control-Allow-Origin")).To(BeEmpty())
		g.Expect(r.header.Get("Access-Control-Expose-Headers")).To(BeEmpty())
		g.Expect(r.header.Values("Vary")).To(ContainElement("Origin"))

		r = e.do("OPTIONS", "/v1/conversations/123", "", nil, "Origin", allowedOrigin,
			"Access-Control-Request-Method", "PATCH", "Access-Control-Request-Headers", "authorization,content-type")
		g.Expect(r.status).To(Equal(204))
		g.Expect(r.header.Get("Access-Control-Allow-Origin")).To(Equal(allowedOrigin))
		g.Expect(r.header.Get("Access-Control-Allow-Methods")).To(ContainSubstring("PATCH"))
		allowed := strings.ToLower(r.header.Get("Access-Control-Allow-Headers"))
		g.Expect(allowed).To(And(ContainSubstring("authorization"), ContainSubstring("content-type")))

		r = e.do("OPTIONS", "/v1/conversations", "", nil, "Origin", "https://evil.example.com",
			"Access-Control-Request-Method", "POST")
		g.Expect(r.header.Get("Access-Control-Allow-Origin")).To(BeEmpty())
		g.Expect(r.header.Get("Access-Control-Allow-Headers")).To(BeEmpty())
		g.Expect(r.status).To(Equal(403))
	})

	t.Run("metrics are labelled with the route template", func(t *testing.T) {
		g := NewWithT(t)
		r := e.do("POST", "/v1/conversations", alice, nil)
		id := r.json()["id"].(string)
		e.do("GET", "/v1/conversations/"+id, alice, nil)
		e.do("GET", "/this/does/not/exist", "", nil)
		counts := map[string]float64{}
		mfs, err := e.reg.Gather()
		g.Expect(err).NotTo(HaveOccurred())
		var sawHistogram bool
		for _, mf := range mfs {
			switch mf.GetName() {
			case "chatbackend_http_request_duration_seconds":
				sawHistogram = true
			case "chatbackend_http_requests_total":
				for _, m := range mf.GetMetric() {
					labels := map[string]string{}
					for _, l := range m.GetLabel() {
						labels[l.GetName()] = l.GetValue()
					}
					g.Expect(labels["route"]).NotTo(ContainSubstring(id), "raw path leaked into a label")
					counts[labels["method"]+" "+labels["route"]+" "+labels["code"]] += m.GetCounter().GetValue()
				}
			}
		}
		g.Expect(sawHistogram).To(BeTrue())
		g.Expect(counts).To(HaveKey("GET /v1/conversations/:id 200"))
		g.Expect(counts).To(HaveKey("GET /v1/conversations/:id 404"))
		g.Expect(counts).To(HaveKey("GET /v1/conversations/:id/messages 404"))
		g.Expect(counts).To(HaveKey("GET unmatched 404"))
		g.Expect(counts["POST /v1/conversations 201"]).To(BeNumerically(">=", 1))
	})

	t.Run("the access log has no token", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(e.logs.String()).To(ContainSubstring(`"route":"/v1/conversations/:id"`))
		g.Expect(e.logs.String()).NotTo(ContainSubstring(alice))
		g.Expect(e.logs.String()).NotTo(ContainSubstring(bob))
	})
}

func TestPagingThrough250Conversations(t *testing.T) {
	g := NewWithT(t)
	e := newEnv(t)
	ctx := context.Background()
	id, token := e.user("pager@example.com", "Pager")
	// The user row exists once the first request synced it.
	g.Expect(e.do("GET", "/v1/me", token, nil).status).To(Equal(200))
	want := map[string]bool{}
	for range 250 {
		c, err := e.store.CreateConversation(ctx, id, "")
		g.Expect(err).NotTo(HaveOccurred())
		want[c.ID] = true
	}
	for _, limit := range []string{"", "33", "100"} {
		seen := map[string]int{}
		var last time.Time
		cursor, pages := "", 0
		for {
			q := "/v1/conversations?limit=" + limit
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			r := e.do("GET", q, token, nil)
			g.Expect(r.status).To(Equal(200), string(r.body))
			pages++
			var page struct {
				Items []struct {
					ID        string
					UpdatedAt time.Time `json:"updated_at"`
				}
				NextCursor *string `json:"next_cursor"`
			}
			g.Expect(json.Unmarshal(r.body, &page)).To(Succeed())
			for _, c := range page.Items {
				seen[c.ID]++
				if !last.IsZero() {
					g.Expect(c.UpdatedAt).To(BeTemporally("<=", last))
				}
				last = c.UpdatedAt
			}
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
			g.Expect(pages).To(BeNumerically("<", 20))
		}
		g.Expect(seen).To(HaveLen(250), "limit=%s", limit)
		for cid, n := range seen {
			g.Expect(want).To(HaveKey(cid))
			g.Expect(n).To(Equal(1), "limit=%s: %s returned %d times", limit, cid, n)
		}
		wantPages := map[string]int{"": 13, "33": 8, "100": 3}[limit]
		g.Expect(pages).To(Equal(wantPages), "limit=%s", limit)
	}
}

// /readyz fails only for what is wrong with this pod (JWKS never loaded,
// shutting down). An unreachable database is reported in the body but
// leaves the pod ready: requests that need it answer 503 with Retry-After.
func TestReadyzFailsOnlyForPodLocalProblems(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	// A JWKS endpoint that does not answer: nothing listens there any more.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	v, err := auth.New(ctx, auth.Options{JWKSURL: deadURL + "/api/auth/jwks", Issuer: deadURL})
	g.Expect(err).NotTo(HaveOccurred())
	defer v.Close()
	// Nothing listens on the database's port either; the pool connects lazily.
	pool, err := pgxpool.New(ctx, "postgres://u@"+testutil.FreeAddr(t)+"/db?sslmode=disable&connect_timeout=1")
	g.Expect(err).NotTo(HaveOccurred())
	defer pool.Close()
	var logs testutil.SyncBuffer
	reg := prometheus.NewRegistry()
	deps, err := dependency.New(reg)
	g.Expect(err).NotTo(HaveOccurred())
	newRouter := func(a httpapi.Authenticator) http.Handler {
		h, err := httpapi.New(httpapi.Deps{Store: store.New(pool), Auth: a, ChatRateLimit: httpapi.RateLimit{PerMinute: 1, Burst: 1},
			WriteRateLimit: httpapi.RateLimit{PerMinute: 1, Burst: 1}, MaxStreams: 1,
			Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Dependencies: deps})
		g.Expect(err).NotTo(HaveOccurred())
		return h
	}
	get := func(h http.Handler, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		return w
	}

	h := newRouter(v)
	w := get(h, "/readyz")
	g.Expect(w.Code).To(Equal(503))
	g.Expect(w.Body.String()).To(ContainSubstring("JWKS"))
	g.Expect(get(h, "/healthz").Code).To(Equal(200), "liveness does not depend on dependencies")

	start := time.Now()
	w = get(newRouter(noAuth{}), "/readyz")
	g.Expect(w.Code).To(Equal(200), "a database every replica shares does not make this pod unready")
	g.Expect(w.Body.String()).To(MatchJSON(`{"status":"ok","checks":{"database":"unreachable","schema":"unknown"}}`))
	// ... but the outage shows in chatbackend_dependency_up, which the
	// ChatBackendDependencyDown alert watches.
	g.Expect(promtestutil.GatherAndCompare(reg, strings.NewReader(`
# HELP chatbackend_dependency_up 1 if the last check of the dependency (database, jwks, vector_store, llm) succeeded, 0 if it failed.
# TYPE chatbackend_dependency_up gauge
chatbackend_dependency_up{dependency="database"} 0
`), dependency.MetricName)).To(Succeed())
	g.Expect(time.Since(start)).To(BeNumerically("<", httpapi.ReadyzTimeout+time.Second))
}

// A pod started against a database nobody migrated for its binary (a new
// or restored database) is not ready: every data route would fail. It says
// why in the body, and logs it once, not on every probe; migrating the
// database makes it ready.
func TestReadyzNotReadyOnAnOlderSchema(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	dbURL := pgtest.New(t) // a real, empty database: schema version 0
	pool, err := store.Open(ctx, dbURL, store.Options{ConnectTimeout: 10 * time.Second})
	g.Expect(err).NotTo(HaveOccurred())
	defer pool.Close()
	var logs testutil.SyncBuffer
	h, err := httpapi.New(httpapi.Deps{Store: store.New(pool), Auth: noAuth{}, ChatRateLimit: httpapi.RateLimit{PerMinute: 1, Burst: 1},
		WriteRateLimit: httpapi.RateLimit{PerMinute: 1, Burst: 1}, MaxStreams: 1,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	g.Expect(err).NotTo(HaveOccurred())
	readyz := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
		return w
	}

	latest := migrations.Latest()
	g.Expect(latest).To(BeNumerically(">=", 3))
	for range 3 {
		w := readyz()
		g.Expect(w.Code).To(Equal(503))
		g.Expect(w.Body.String()).To(ContainSubstring(fmt.Sprintf("schema is at version 0, this server needs version %d", latest)))
		g.Expect(w.Body.String()).To(ContainSubstring(`"code":"unavailable"`))
	}
	g.Expect(strings.Count(logs.String(), "readiness: not ready: the database schema")).To(Equal(1), logs.String())

	_, err = migrations.Migrate(ctx, dbURL, nil, nil)
	g.Expect(err).NotTo(HaveOccurred())
	w := readyz()
	g.Expect(w.Code).To(Equal(200))
	g.Expect(w.Body.String()).To(MatchJSON(`{"status":"ok","checks":{"database":"ok","schema":"ok"}}`))
	g.Expect(logs.String()).To(ContainSubstring("the database schema is current again"))
}

// Probes answered 2xx are not access-logged (they were every line of an idle
// pod's log); failing ones are, like every other request.
func TestSuccessfulProbesAreNotLogged(t *testing.T) {
	g := NewWithT(t)
	e := newEnv(t)
	_, token := e.user("probe@example.com", "Probe")
	for range 3 {
		g.Expect(e.do("GET", "/healthz", "", nil).status).To(Equal(200))
		g.Expect(e.do("GET", "/readyz", "", nil).status).To(Equal(200))
	}
	g.Expect(e.do("GET", "/v1/me", token, nil).status).To(Equal(200))
	g.Expect(e.logs.String()).To(ContainSubstring(`"route":"/v1/me"`), "other requests are logged")
	g.Expect(e.logs.String()).NotTo(ContainSubstring(`"path":"/healthz"`))
	g.Expect(e.logs.String()).NotTo(ContainSubstring(`"path":"/readyz"`))

	// Shutting down: /readyz turns 503 at once, so the endpoints drop the
	// pod while it drains; that failing probe is logged.
	close(e.stop)
	r := e.do("GET", "/readyz", "", nil)
	g.Expect(r.status).To(Equal(503))
	g.Expect(errorCode(g, r)).To(Equal("unavailable"))
	g.Expect(e.logs.String()).To(ContainSubstring(`"path":"/readyz"`))
	g.Expect(e.do("GET", "/healthz", "", nil).status).To(Equal(200), "still alive while draining")
	g.Expect(e.do("GET", "/v1/me", token, nil).status).To(Equal(200), "still serving while draining")
}

// While the database cannot be reached, every route that needs it answers
// 503 with Retry-After in the error JSON, never a 500: connections the pool
// holds are cut mid-flight (EOF on the next query), new ones are refused,
// and the server's own sessions are killed by PostgreSQL (57P01, as on a
// shutdown). Once the database is back, the same server serves again.
func TestUnreachableDatabaseAnswers503WithRetryAfter(t *testing.T) {
	g := NewWithT(t)
	e := newEnv(t, withChat(t, nil))
	uid, token := e.user("outage@example.com", "Outage")
	conv := e.newConversation(token)
	r := e.do("POST", "/agents/run", token, str(`{"question":"How do I install with Helm?","conversation_id":"`+conv+`"}`))
	g.Expect(r.status).To(Equal(200), string(r.body))
	answer := r.json()["message_id"].(string)
	// An answer still streaming, for the stop route to succeed once the
	// database is back.
	streaming, err := e.store.AddMessages(context.Background(), uid, conv,
		store.NewMessage{Role: store.RoleAssistant, Status: store.StatusStreaming})
	g.Expect(err).NotTo(HaveOccurred())
	routes := userRoutes(t, conv, answer, streaming[0].ID, "anyone there?")
	expect503 := func(why string) {
		for _, req := range routes {
			for _, accept := range []string{"application/json", "text/event-stream"} {
				r := e.do(req.method, req.path, token, str(req.body), "Accept", accept)
				g.Expect(r.status).To(Equal(503), "%s: %s %s (%s): %s", why, req.method, req.path, accept, r.body)
				g.Expect(errorCode(g, r)).To(Equal("unavailable"))
				g.Expect(r.header.Get("Retry-After")).To(Equal(strconv.Itoa(httpapi.RetryAfterUnavailable)))
			}
		}
	}

	// PostgreSQL ends the server's sessions (what clients of a database
	// that shuts down get), and accepts no new connection meanwhile.
	ctx := context.Background()
	admin, err := pgxpool.New(ctx, e.dbURL)
	g.Expect(err).NotTo(HaveOccurred())
	defer admin.Close()
	e.db.cut()
	_, err = admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	g.Expect(err).NotTo(HaveOccurred())
	expect503("database down")

	_, other := e.user("newcomer@example.com", "Newcomer")
	r = e.do("GET", "/v1/me", other, nil)
	g.Expect(r.status).To(Equal(503), "syncing a new user needs the database too")
	g.Expect(r.header.Get("Retry-After")).NotTo(BeEmpty())
	g.Expect(e.logs.String()).NotTo(ContainSubstring(`"status":500`))

	// Back: the same server and pool recover without a restart.
	e.db.resume()
	g.Eventually(func() int { return e.do("GET", "/v1/me", other, nil).status }).
		WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Equal(200))
	for _, req := range routes {
		r := e.do(req.method, req.path, token, str(req.body))
		g.Expect(r.status).To(BeNumerically("<", 300), "after recovery: %s %s: %s", req.method, req.path, r.body)
	}
}

// proxy forwards loopback TCP connections to PostgreSQL until cut, and
// again once resumed.
type proxy struct {
	url    string
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func startProxy(t *testing.T, dbURL string) *proxy {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), target: u.Host}
	u.Host = p.addr
	p.url = u.String()
	t.Cleanup(p.cut)
	p.serve(ln)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// cut stops accepting (connections are refused from now on) and closes
// every forwarded connection.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// resume accepts connections again, on the same address.
func (p *proxy) resume() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		panic(err)
	}
	p.serve(ln)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// userRoute is one request to an authenticated route of the API.
type userRoute struct{ method, path, body string }

// userRoutes is one request to each authenticated operation of
// openapi.yaml (everything but the probes and the document itself), on
// conversation conv, answer message and the answer still streaming
// streaming, asking text: the tests that must hold on every route (an
// outage, a deactivated user) use it, and it fails
// when openapi.yaml gains an operation it does not cover.
func userRoutes(t *testing.T, conv, message, streaming, text string) []userRoute {
	t.Helper()
	routes := []userRoute{
		{"GET", "/v1/me", ""},
		{"POST", "/v1/conversations", `{"title":"x"}`},
		{"GET", "/v1/conversations", ""},
		{"GET", "/v1/conversations/" + conv, ""},
		{"PATCH", "/v1/conversations/" + conv, `{"title":"y"}`},
		{"GET", "/v1/conversations/" + conv + "/messages", ""},
		{"POST", "/v1/conversations/" + conv + "/messages", `{"content":"` + text + `"}`},
		{"POST", "/v1/conversations/" + conv + "/messages/" + streaming + "/stop", ""},
		{"POST", "/v1/conversations/" + conv + "/messages/" + message + "/regenerate", ""},
		{"POST", "/v1/messages/" + message + "/feedback", `{"rating":"up"}`},
		{"POST", "/agents/run", `{"question":"` + text + `"}`},
		// Last: the conversation is gone afterwards.
		{"DELETE", "/v1/conversations/" + conv, ""},
	}
	paths, err := openapi.Paths()
	if err != nil {
		t.Fatal(err)
	}
	ops := 0
	for p, methods := range paths {
		if strings.HasPrefix(p, "/v1/") || p == "/agents/run" {
			ops += len(methods)
		}
	}
	if ops != len(routes) {
		t.Fatalf("openapi.yaml has %d authenticated operations, userRoutes covers %d: add the new one", ops, len(routes))
	}
	return routes
}
