package openapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/openapi"
)

func load(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openapi.YAML())
	if err != nil {
		t.Fatalf("openapi.yaml does not load: %v", err)
	}
	return doc
}

// The document is valid OpenAPI 3: references resolve, schemas are
// well-formed, examples match their schemas.
func TestDocumentIsValidOpenAPI3(t *testing.T) {
	doc := load(t)
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("openapi.yaml is not valid OpenAPI 3: %v", err)
	}
}

// Authentication is documented as the server enforces it: /v1 and /agents
// need the bearer token, the probes and the document itself do not.
func TestSecurityMatchesTheServer(t *testing.T) {
	g := NewWithT(t)
	doc := load(t)
	g.Expect(doc.Components.SecuritySchemes).To(HaveKey("bearerAuth"))
	g.Expect(doc.Components.SecuritySchemes["bearerAuth"].Value.Scheme).To(Equal("bearer"))
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			authed := strings.HasPrefix(path, "/v1/") || strings.HasPrefix(path, "/agents/")
			sec := doc.Security
			if op.Security != nil {
				sec = *op.Security
			}
			if authed {
				g.Expect(sec).To(ContainElement(HaveKey("bearerAuth")), "%s %s must require the bearer token", method, path)
				g.Expect(op.Responses.Map()).To(HaveKey("401"), "%s %s must document 401", method, path)
			} else {
				g.Expect(sec).To(BeEmpty(), "%s %s needs no authentication", method, path)
			}
		}
	}
}

// Every error status is documented with the one error envelope.
func TestErrorsUseTheEnvelope(t *testing.T) {
	g := NewWithT(t)
	doc := load(t)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status, ref := range op.Responses.Map() {
				if status[0] != '4' && status[0] != '5' {
					continue
				}
				mt := ref.Value.Content.Get("application/json")
				g.Expect(mt).NotTo(BeNil(), "%s %s %s has no JSON body", method, path, status)
				g.Expect(mt.Schema.Ref).To(Equal("#/components/schemas/Error"), "%s %s %s", method, path, status)
			}
		}
	}
}

func TestHandlerServesTheDocumentAsJSON(t *testing.T) {
	g := NewWithT(t)
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.GET(openapi.Route, openapi.Handler())
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	g.Expect(rec.Code).To(Equal(http.StatusOK))
	g.Expect(rec.Header().Get("Content-Type")).To(HavePrefix("application/json"))

	// The JSON served is the YAML written: same document, both loaded.
	served, err := openapi3.NewLoader().LoadFromData(rec.Body.Bytes())
	g.Expect(err).NotTo(HaveOccurred())
	written := load(t)
	a, _ := json.Marshal(served)
	b, _ := json.Marshal(written)
	g.Expect(a).To(MatchJSON(b))
	g.Expect(served.OpenAPI).To(HavePrefix("3."))
}

func TestPathsListsOperations(t *testing.T) {
	g := NewWithT(t)
	paths, err := openapi.Paths()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(paths).To(HaveKeyWithValue("/v1/conversations/{id}", []string{"DELETE", "GET", "PATCH"}))
	g.Expect(paths).To(HaveKeyWithValue("/v1/conversations/{id}/messages", []string{"GET", "POST"}))
	// "parameters" at path level is not an operation.
	for p, methods := range paths {
		g.Expect(methods).NotTo(BeEmpty(), p)
		g.Expect(methods).NotTo(ContainElement("PARAMETERS"), p)
	}
}

func TestGinPath(t *testing.T) {
	for in, want := range map[string]string{
		"/healthz":                          "/healthz",
		"/v1/conversations/:id":             "/v1/conversations/{id}",
		"/v1/conversations/:id/messages":    "/v1/conversations/{id}/messages",
		"/static/*filepath":                 "/static/{filepath}",
		"/v1/messages/:message_id/feedback": "/v1/messages/{message_id}/feedback",
	} {
		if got := openapi.GinPath(in); got != want {
			t.Errorf("GinPath(%q) = %q, want %q", in, got, want)
		}
	}
}
