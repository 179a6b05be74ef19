package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/httpapi"
	"github.com/chatbackend/chatbackend/apiserver/web"
)

// The widget and the client module are served by the router itself, to any
// page without a token: JavaScript, an ETag that makes a revalidation a
// 304, a short cache on the plain path that names the versioned one, and
// the versioned path cached as immutable.
func TestBrowserFilesAreServedWithCaching(t *testing.T) {
	g := NewWithT(t)
	h, err := httpapi.New(httpapi.Deps{Auth: noAuth{}, ChatRateLimit: httpapi.RateLimit{PerMinute: 1, Burst: 1},
		WriteRateLimit: httpapi.RateLimit{PerMinute: 1, Burst: 1}, MaxStreams: 1})
	g.Expect(err).NotTo(HaveOccurred())
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	// No transparent gzip: the test reads Content-Encoding itself.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	// got is an answer, read and closed.
	type got struct {
		StatusCode int
		Header     http.Header
	}
	get := func(p string, header ...string) (got, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL+p, nil)
		g.Expect(err).NotTo(HaveOccurred())
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := client.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		g.Expect(err).NotTo(HaveOccurred())
		return got{StatusCode: res.StatusCode, Header: res.Header}, b
	}

	g.Expect(web.Assets).To(HaveLen(2))
	for _, a := range web.Assets {
		res, body := get(a.Path)
		g.Expect(res.StatusCode).To(Equal(http.StatusOK), a.Path)
		g.Expect(res.Header.Get("Content-Type")).To(Equal("text/javascript; charset=utf-8"))
		g.Expect(res.Header.Get("Cache-Control")).To(Equal("public, max-age=300"))
		g.Expect(res.Header.Get("X-Content-Type-Options")).To(Equal("nosniff"))
		g.Expect(res.Header.Get("Content-Encoding")).To(BeEmpty())
		g.Expect(res.Header.Get("Content-Location")).To(Equal(a.VersionedPath))
		g.Expect(path.Base(a.VersionedPath)).To(MatchRegexp(`^(widget|chat-client)\.[0-9a-f]{12}\.js$`))
		etag := res.Header.Get("ETag")
		g.Expect(etag).To(MatchRegexp(`^"[0-9a-f]{12}"$`))
		g.Expect(len(body)).To(BeNumerically(">", 1000))

		// Revalidation: unchanged, so 304 with no body.
		res, b := get(a.Path, "If-None-Match", etag)
		g.Expect(res.StatusCode).To(Equal(http.StatusNotModified), a.Path)
		g.Expect(b).To(BeEmpty())
		g.Expect(res.Header.Get("ETag")).To(Equal(etag))
		res, _ = get(a.Path, "If-None-Match", `"stale"`)
		g.Expect(res.StatusCode).To(Equal(http.StatusOK))

		// Gzip when accepted, under its own ETag, same bytes once inflated.
		res, gz := get(a.Path, "Accept-Encoding", "br, gzip")
		g.Expect(res.Header.Get("Content-Encoding")).To(Equal("gzip"))
		g.Expect(res.Header.Get("Vary")).To(ContainSubstring("Accept-Encoding"))
		g.Expect(res.Header.Get("ETag")).NotTo(Equal(etag))
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		g.Expect(err).NotTo(HaveOccurred())
		inflated, err := io.ReadAll(zr)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(inflated).To(Equal(body))
		res, _ = get(a.Path, "Accept-Encoding", "gzip;q=0")
		g.Expect(res.Header.Get("Content-Encoding")).To(BeEmpty())

		// The versioned path: the same bytes, cached for good.
		res, vb := get(a.VersionedPath)
		g.Expect(res.StatusCode).To(Equal(http.StatusOK), a.VersionedPath)
		g.Expect(res.Header.Get("Cache-Control")).To(Equal("public, max-age=31536000, immutable"))
		g.Expect(res.Header.Get("ETag")).To(Equal(etag))
		g.Expect(vb).To(Equal(body))
	}

	// An unknown or outdated version is the API's 404, never a script.
	res, body := get("/web/widget.000000000000.js")
	g.Expect(res.StatusCode).To(Equal(http.StatusNotFound))
	g.Expect(res.Header.Get("Content-Type")).To(HavePrefix("application/json"))
	g.Expect(string(body)).To(ContainSubstring(`"code":"not_found"`))
}
