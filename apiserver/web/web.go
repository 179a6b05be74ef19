// Package web serves the browser files built from this directory's
// TypeScript (npm run build; see README.md here): widget.js, the
// <chatbackend-chat> widget a docs site loads with one script tag, and
// chat-client.js, the typed API client as an ES module. They are committed
// in dist/ and embedded, so chat-apiserver serves the widget that matches
// its own API; `make web-verify` fails when dist/ is not what the sources
// build to.
//
// Each file is served twice: at its plain path (/widget.js) with a short
// max-age and an ETag, so sites pick up a new server's widget within
// minutes and revalidate cheaply, and at a versioned path
// (/web/widget.<hash>.js, named by Content-Location on the plain one)
// cached for a year as immutable, for sites that pin a version.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/chatbackend/chatbackend/apiserver/httperr"
)

//go:embed dist/widget.js dist/chat-client.js
var dist embed.FS

// VersionedRoute serves every file under its content-hashed name.
const VersionedRoute = "/web/:file"

const (
	// ShortCache lets browsers and CDNs reuse /widget.js for five minutes,
	// then revalidate it with its ETag (a 304 while it is unchanged).
	ShortCache = "public, max-age=300"
	// ImmutableCache is for the versioned paths: their content never
	// changes, a new build has a new name.
	ImmutableCache = "public, max-age=31536000, immutable"
	contentType    = "text/javascript; charset=utf-8"
)

// Asset is one embedded file, with its gzip form computed once.
type Asset struct {
	// Path is the plain route, e.g. /widget.js.
	Path string
	// VersionedPath is the content-hashed one, e.g. /web/widget.1a2b3c4d5e6f.js.
	VersionedPath string
	body, gz      []byte
	etag, gzETag  string
}

// Assets are the embedded files, in a fixed order.
var Assets = mustLoad("widget.js", "chat-client.js")

func mustLoad(names ...string) []*Asset {
	out := make([]*Asset, 0, len(names))
	for _, name := range names {
		a, err := load(name)
		if err != nil {
			// The files are embedded at build time: a missing one is a
			// broken build, not a runtime condition.
			panic(err)
		}
		out = append(out, a)
	}
	return out
}

func load(name string) (*Asset, error) {
	body, err := dist.ReadFile("dist/" + name)
	if err != nil {
		return nil, fmt.Errorf("web: embedded %s: %w", name, err)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:6])
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("web: gzip %s: %w", name, err)
	}
	if _, err := zw.Write(body); err != nil {
		return nil, fmt.Errorf("web: gzip %s: %w", name, err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("web: gzip %s: %w", name, err)
	}
	ext := path.Ext(name)
	return &Asset{
		Path:          "/" + name,
		VersionedPath: "/web/" + strings.TrimSuffix(name, ext) + "." + hash + ext,
		body:          body,
		gz:            gz.Bytes(),
		etag:          `"` + hash + `"`,
		gzETag:        `"` + hash + `-gz"`,
	}, nil
}

// Handler serves the asset at its plain path.
func (a *Asset) Handler() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("Content-Location", a.VersionedPath)
		a.serve(c, ShortCache)
	}
}

// VersionedHandler serves GET /web/:file: the asset whose versioned name
// that is, or 404 (an old hash after an upgrade: the page should load the
// plain path again).
func VersionedHandler() gin.HandlerFunc {
	byName := make(map[string]*Asset, len(Assets))
	for _, a := range Assets {
		byName[path.Base(a.VersionedPath)] = a
	}
	return func(c *gin.Context) {
		a, ok := byName[c.Param("file")]
		if !ok {
			httperr.Abort(c, http.StatusNotFound, httperr.CodeNotFound, "no such file: this server serves "+strings.Join(versioned(), ", "))
			return
		}
		a.serve(c, ImmutableCache)
	}
}

func versioned() []string {
	out := make([]string, 0, len(Assets))
	for _, a := range Assets {
		out = append(out, a.VersionedPath)
	}
	return out
}

// serve answers with the gzip form when the client accepts it (the widget
// is text: about a third of its size), each form with its own ETag;
// http.ServeContent answers If-None-Match with 304.
func (a *Asset) serve(c *gin.Context, cacheControl string) {
	h := c.Writer.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", cacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	// Any site may load the widget with a script tag, also one that sets
	// Cross-Origin-Embedder-Policy.
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	h.Add("Vary", "Accept-Encoding")
	body, etag := a.body, a.etag
	if acceptsGzip(c.GetHeader("Accept-Encoding")) {
		body, etag = a.gz, a.gzETag
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", etag)
	http.ServeContent(c.Writer, c.Request, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reads Accept-Encoding: gzip listed without q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
