// Package openapi holds the OpenAPI 3 document of chat-apiserver and serves
// it, as JSON, at GET /openapi.json.
//
// The document is written by hand in openapi.yaml (YAML reads and reviews
// better than generated JSON) and embedded in the binary; a test in
// apiserver/httpapi compares its paths with the routes the router registers,
// both ways, so the document cannot silently fall behind the server.
package openapi

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
	"sigs.k8s.io/yaml"

	"github.com/chatbackend/chatbackend/apiserver/httperr"
)

// Route is where the document is served.
const Route = "/openapi.json"

//go:embed openapi.yaml
var source []byte

// YAML is the document as written.
func YAML() []byte { return source }

// JSON is the document converted to JSON once, on first use.
var JSON = sync.OnceValues(func() ([]byte, error) {
	b, err := yaml.YAMLToJSON(source)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	return b, nil
})

// Handler serves the document. It needs no authentication: the document
// describes the API, it reveals no data.
func Handler() gin.HandlerFunc {
	return func(c *gin.Context) {
		b, err := JSON()
		if err != nil {
			// Cannot happen with the embedded document (a test parses it),
			// but a broken build must answer in the API's error format.
			httperr.Abort(c, http.StatusInternalServerError, httperr.CodeInternal, "OpenAPI document unavailable")
			return
		}
		c.Header("Cache-Control", "public, max-age=300")
		c.Data(http.StatusOK, "application/json; charset=utf-8", b)
	}
}

// httpMethods are the keys of an OpenAPI path item that are operations.
var httpMethods = map[string]bool{
	"get": true, "put": true, "post": true, "delete": true,
	"options": true, "head": true, "patch": true, "trace": true,
}

// Paths lists the document's operations: path template (OpenAPI style,
// /v1/conversations/{id}) → upper-case methods, sorted.
func Paths() (map[string][]string, error) {
	b, err := JSON()
	if err != nil {
		return nil, err
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: paths: %w", err)
	}
	out := make(map[string][]string, len(doc.Paths))
	for path, item := range doc.Paths {
		var methods []string
		for k := range item {
			if httpMethods[k] {
				methods = append(methods, strings.ToUpper(k))
			}
		}
		sort.Strings(methods)
		out[path] = methods
	}
	return out, nil
}

// GinPath converts a gin route (/v1/conversations/:id, /files/*path) to an
// OpenAPI path template (/v1/conversations/{id}, /files/{path}).
func GinPath(route string) string {
	parts := strings.Split(route, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, ":") || strings.HasPrefix(p, "*") {
			parts[i] = "{" + p[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}
