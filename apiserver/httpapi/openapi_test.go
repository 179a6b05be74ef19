package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	legacyrouter "github.com/getkin/kin-openapi/routers/legacy"
	"github.com/gin-gonic/gin"
	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/httpapi"
	"github.com/chatbackend/chatbackend/apiserver/openapi"
)

// noAuth satisfies httpapi.Authenticator for building the router; no request
// is served here, only the registered routes are read.
type noAuth struct{}

func (noAuth) Middleware() gin.HandlerFunc { return func(c *gin.Context) { c.Next() } }
func (noAuth) Ready() error                { return nil }

// The OpenAPI document and the router agree, both ways: every route the
// server registers is documented, and every documented operation exists.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	g := NewWithT(t)
	// Every route `chat-apiserver serve` has: httpapi.New registers them
	// all. No handler runs, so no store or chat service is needed.
	h, err := httpapi.New(httpapi.Deps{Auth: noAuth{}, ChatRateLimit: httpapi.RateLimit{PerMinute: 1, Burst: 1},
		WriteRateLimit: httpapi.RateLimit{PerMinute: 1, Burst: 1}, MaxStreams: 1})
	g.Expect(err).NotTo(HaveOccurred())
	engine, ok := h.(*gin.Engine)
	g.Expect(ok).To(BeTrue(), "httpapi.New should return the *gin.Engine")

	registered := map[string]bool{}
	for _, r := range engine.Routes() {
		registered[r.Method+" "+openapi.GinPath(r.Path)] = true
	}
	paths, err := openapi.Paths()
	g.Expect(err).NotTo(HaveOccurred())
	documented := map[string]bool{}
	for p, methods := range paths {
		for _, m := range methods {
			documented[m+" "+p] = true
		}
	}

	g.Expect(missing(registered, documented)).To(BeEmpty(), "routes the server registers that openapi.yaml does not document")
	g.Expect(missing(documented, registered)).To(BeEmpty(), "operations openapi.yaml documents that the server does not register")
	// Guard against comparing two empty sets.
	g.Expect(registered).To(HaveKey("GET /v1/conversations/{id}"))
	g.Expect(registered).To(HaveKey("POST /agents/run"))
}

// missing lists the keys of a that are not in b, sorted.
func missing(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// The document's schemas describe what the server really sends: a user's
// session against a real PostgreSQL and a real BetterAuth, with the offline
// chat, checks every request against the document and every response
// against its documented status and schema. Response objects are made
// strict here (no undocumented fields), so a field added to a handler but
// not to openapi.yaml fails this test.
func TestOpenAPIResponsesMatchTheDocument(t *testing.T) {
	g := NewWithT(t)
	doc, err := openapi3.NewLoader().LoadFromData(openapi.YAML())
	g.Expect(err).NotTo(HaveOccurred())
	doc.Servers = nil // match paths on any host
	for _, s := range doc.Components.Schemas {
		strictObjects(s.Value, map[*openapi3.Schema]bool{})
	}
	openapi3.DefineStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC4122))
	router, err := legacyrouter.NewRouter(doc)
	g.Expect(err).NotTo(HaveOccurred())

	e := newEnv(t, withChat(t, nil))
	_, token := e.user("openapi@example.com", "Open API")

	// call sends a request, validates it and its response against the
	// document, and returns the decoded JSON body (nil when there is none).
	call := func(method, path, tok, body string, wantStatus int, headers ...string) map[string]any {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, e.url+path, rd)
		g.Expect(err).NotTo(HaveOccurred())
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		route, params, err := router.FindRoute(req)
		g.Expect(err).NotTo(HaveOccurred(), "%s %s is not in openapi.yaml", method, path)
		in := &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		}
		if wantStatus < 400 {
			// Requests meant to succeed must be valid per the document.
			g.Expect(openapi3filter.ValidateRequest(context.Background(), in)).To(Succeed(), "%s %s request", method, path)
		}
		if body != "" {
			req.Body = io.NopCloser(strings.NewReader(body))
		}
		res, err := http.DefaultClient.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(res.StatusCode).To(Equal(wantStatus), "%s %s: %s", method, path, b)
		sse := strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream")
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
			Options: &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: sse, MultiError: true},
		}
		out.SetBodyBytes(b)
		g.Expect(openapi3filter.ValidateResponse(context.Background(), out)).To(Succeed(), "%s %s → %d %s", method, path, res.StatusCode, b)
		var m map[string]any
		if len(b) > 0 && !sse {
			g.Expect(json.Unmarshal(b, &m)).To(Succeed())
		}
		return m
	}

	call(http.MethodGet, "/healthz", "", "", http.StatusOK)
	call(http.MethodGet, "/readyz", "", "", http.StatusOK)
	call(http.MethodGet, "/openapi.json", "", "", http.StatusOK) // no token needed
	call(http.MethodGet, "/v1/me", token, "", http.StatusOK)
	call(http.MethodGet, "/v1/me", "", "", http.StatusUnauthorized)
	conv := call(http.MethodPost, "/v1/conversations", token, `{"title":"Keys"}`, http.StatusCreated)["id"].(string)
	call(http.MethodPost, "/v1/conversations", token, `{"title":`, http.StatusBadRequest)
	call(http.MethodPost, "/v1/conversations", token, `{"title":"\u0000"}`, http.StatusBadRequest)
	call(http.MethodGet, "/v1/conversations?limit=1", token, "", http.StatusOK)
	call(http.MethodGet, "/v1/conversations/"+conv, token, "", http.StatusOK)
	call(http.MethodPatch, "/v1/conversations/"+conv, token, `{"title":"Signing keys"}`, http.StatusOK)

	sent := call(http.MethodPost, "/v1/conversations/"+conv+"/messages", token, `{"content":"How do I rotate the signing keys?"}`, http.StatusOK)
	answerID := sent["message"].(map[string]any)["id"].(string)
	call(http.MethodPost, "/v1/conversations/"+conv+"/messages", token, `{"content":"And the port?"}`, http.StatusOK,
		"Accept", "text/event-stream")
	call(http.MethodGet, "/v1/conversations/"+conv+"/messages", token, "", http.StatusOK)
	call(http.MethodPost, "/v1/messages/"+answerID+"/feedback", token, `{"rating":"up","comment":"clear"}`, http.StatusOK)
	call(http.MethodPost, "/v1/messages/"+answerID+"/feedback", token, `{"rating":"sideways"}`, http.StatusBadRequest)
	call(http.MethodPost, "/agents/run", token, `{"question":"Which port does Qdrant use?"}`, http.StatusOK)
	call(http.MethodPost, "/agents/run", token, `{"question":"x","conversation_id":"`+conv+`"}`, http.StatusOK)

	call(http.MethodDelete, "/v1/conversations/"+conv, token, "", http.StatusNoContent)
	call(http.MethodGet, "/v1/conversations/"+conv, token, "", http.StatusNotFound)
	call(http.MethodGet, "/v1/conversations/"+conv+"/messages", token, "", http.StatusNotFound)

	_, err = e.pool.Exec(context.Background(), `UPDATE users SET is_active = FALSE`)
	g.Expect(err).NotTo(HaveOccurred())
	call(http.MethodGet, "/v1/me", token, "", http.StatusForbidden)
}

// strictObjects forbids undocumented properties in every object schema
// that lists its properties, recursively.
func strictObjects(s *openapi3.Schema, seen map[*openapi3.Schema]bool) {
	if s == nil || seen[s] {
		return
	}
	seen[s] = true
	if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
		no := false
		s.AdditionalProperties.Has = &no
	}
	for _, p := range s.Properties {
		strictObjects(p.Value, seen)
	}
	if s.Items != nil {
		strictObjects(s.Items.Value, seen)
	}
}
