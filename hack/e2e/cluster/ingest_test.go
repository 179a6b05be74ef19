//go:build e2e && linux

package clustere2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The ingestion part of the scenario: a published docs site, served by this
// test on the node's host address, is declared as the ChatBackend's only
// source. Nothing runs `chat-apiserver ingest` by hand: the operator's Job
// crawls the site from a pod, Indexed turns True, and the API answers a
// question only that site can answer, citing its section.

// siteQuestion is answered by the "Quokka relay" section of the test site.
const siteQuestion = "Which port does the quokka relay listen on?"

// docsSite is a small published docs site: a home page, a sitemap, a
// robots.txt, and the page that answers siteQuestion.
func docsSite(base string) http.Handler {
	page := func(title, body string) string {
		return `<!doctype html><html><head><title>` + title + `</title></head><body>` +
			`<nav><a href="/">Home</a> <a href="/guides/relay">Relay</a></nav>` +
			`<main><article>` + body + `</article></main><footer>Footer text</footer></body></html>`
	}
	pages := map[string]string{
		"/": page("Quokka docs", `<h1>Quokka docs</h1><p>Guides for the quokka messaging system.</p>`),
		"/guides/relay": page("Relay guide", `<h1>Relay guide</h1><p>How messages travel.</p>`+
			`<h2 id="quokka-relay">Quokka relay</h2><p>The quokka relay listens on port 7443 and forwards messages between burrows.</p>`),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/robots.txt", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "User-agent: *\nAllow: /\nSitemap: %s/sitemap.xml\n", base)
	})
	mux.HandleFunc("/sitemap.xml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">`+
			`<url><loc>%s/</loc></url><url><loc>%s/guides/relay</loc></url></urlset>`, base, base)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(body))
	})
	return mux
}

func (e *env) indexFromSite(t *testing.T) {
	ln, err := net.Listen("tcp", net.JoinHostPort(e.hostIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	srv := &http.Server{Handler: docsSite(base), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close() }()

	e.patchSpec(t, map[string]any{"ingest": map[string]any{
		"sources": []any{map[string]any{"name": "quokka-site", "site": map[string]any{"url": base + "/"}}},
	}})
	start := time.Now()
	eventually(t, 5*time.Minute, "ChatBackend Indexed=True", func() (bool, string) {
		u := e.chatBackend(t)
		s, r, m := condition(u, "Indexed")
		last, _, _ := unstructured.NestedMap(u.Object, "status", "ingest")
		return s == "True", fmt.Sprintf("Indexed=%s %s: %s (status.ingest %v)", s, r, m, last)
	})
	t.Logf("Indexed after %.1fs", time.Since(start).Seconds())

	api, stop := e.portForward(t)
	defer stop()
	var conv struct{ ID string }
	e.callAPI(t, "POST", api+"/v1/conversations", map[string]string{"title": "ingest e2e"}, http.StatusCreated, &conv)
	var answer struct {
		Grounded bool `json:"grounded"`
		Message  struct {
			Content string `json:"content"`
			Sources []struct {
				URL string `json:"url"`
			} `json:"sources"`
		} `json:"message"`
	}
	e.callAPI(t, "POST", api+"/v1/conversations/"+conv.ID+"/messages", map[string]string{"content": siteQuestion}, http.StatusOK, &answer)
	if !answer.Grounded || !strings.Contains(answer.Message.Content, "7443") || len(answer.Message.Sources) == 0 {
		t.Fatalf("the answer does not come from the site: %+v", answer)
	}
	if want := base + "/guides/relay#quokka-relay"; answer.Message.Sources[0].URL != want {
		t.Fatalf("first source %q, want %q (sources %+v)", answer.Message.Sources[0].URL, want, answer.Message.Sources)
	}
}

// callAPI sends body as JSON with the test user's token and decodes the answer into out.
func (e *env) callAPI(t *testing.T, method, url string, body any, want int, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(e.ctx, method, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != want {
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(res.Body)
		t.Fatalf("%s %s: %d, want %d: %s", method, url, res.StatusCode, want, buf.String())
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		t.Fatalf("%s %s: decode: %v", method, url, err)
	}
}
