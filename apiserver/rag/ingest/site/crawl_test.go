package site_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/rag/ingest/site"
)

// memCache is a site.Cache in memory (the real one is a PostgreSQL table,
// exercised by the ingest and CLI tests).
type memCache struct {
	mu      sync.Mutex
	entries map[string]site.Entry
	// loads counts the calls of Load.
	loads int
}

func (m *memCache) Load(context.Context) (map[string]site.Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loads++
	return maps.Clone(m.entries), nil
}

func (m *memCache) Put(_ context.Context, url string, e site.Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries[url] = e
	return nil
}

func (m *memCache) Retain(_ context.Context, urls []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	keep := map[string]bool{}
	for _, u := range urls {
		keep[u] = true
	}
	for u := range m.entries {
		if !keep[u] {
			delete(m.entries, u)
		}
	}
	return nil
}

const indexPage = `<!doctype html><html><head><title>Acme Docs</title></head><body>
<header><a href="/docs/">NAVHEADER</a></header>
<nav class="menu"><a href="/docs/guide">NAVTEXT Guide</a></nav>
<main><article>
<h1>Welcome</h1><p>Acme indexes your docs.</p>
<h2 id="install" class="anchor">Install it<a class="hash-link" href="#install" aria-label="Direct link">&#8203;</a></h2>
<p>Run <code>acme install</code>.</p>
<pre><code>acme install --all
</code></pre>
<section id="configure"><h2>Configure<a class="headerlink" href="#configure">¶</a></h2><p>Edit acme.yaml.</p></section>
<h3>Details without id</h3><p>More words.</p>
<footer>FOOTERTEXT edit this page</footer>
</article><aside>SIDEBARTEXT</aside></main>
<footer>FOOTERTEXT copyright</footer></body></html>`

// testSite is a published docs site: robots.txt, a sitemap index, a page
// answered 304 when unchanged, one that changes between runs, a redirect,
// a 404, a disallowed page and an image.
type testSite struct {
	mu       sync.Mutex
	version  int
	requests map[string]int
	notMod   map[string]int
	agents   map[string]bool
}

func (s *testSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests[r.URL.Path]++
	s.agents[r.UserAgent()] = true
	version := s.version
	s.mu.Unlock()
	host := "http://" + r.Host
	html := func(body string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, body)
	}
	switch r.URL.Path {
	case "/robots.txt":
		fmt.Fprintf(w, "User-agent: *\nDisallow: /docs/private\nSitemap: %s/sitemap.xml\n", host)
	case "/sitemap.xml":
		fmt.Fprintf(w, `<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>%s/sitemap-docs.xml</loc></sitemap></sitemapindex>`, host)
	case "/sitemap-docs.xml":
		var b strings.Builder
		for _, p := range []string{"/docs/", "/docs/guide", "/docs/old", "/docs/missing", "/docs/private/secret", "/docs/logo.png"} {
			fmt.Fprintf(&b, "<url><loc>%s%s</loc></url>", host, p)
		}
		fmt.Fprintf(&b, "<url><loc>https://elsewhere.example/docs/x</loc></url>")
		fmt.Fprintf(w, `<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">%s</urlset>`, b.String())
	case "/docs/":
		if r.Header.Get("If-None-Match") == `"index-v1"` {
			s.mu.Lock()
			s.notMod[r.URL.Path]++
			s.mu.Unlock()
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"index-v1"`)
		html(indexPage)
	case "/docs/guide":
		switch version {
		case 3:
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		case 4:
			// Removed, said with a reason phrase of the server's own.
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_, _ = buf.WriteString("HTTP/1.1 404 No Such Page\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
				_ = buf.Flush()
				_ = conn.Close()
			}
			return
		}
		w.Header().Set("Last-Modified", fmt.Sprintf("Mon, 0%d Nov 2026 10:00:00 GMT", version))
		html(fmt.Sprintf(`<html><body><div role="main"><h1>Guide</h1><h2 id="steps">Steps</h2><p>guide version %d</p></div></body></html>`, version))
	case "/docs/old":
		http.Redirect(w, r, "/docs/new", http.StatusMovedPermanently)
	case "/docs/new":
		html(`<html><body><main><h1>New home</h1><p>moved here</p></main></body></html>`)
	case "/docs/logo.png":
		w.Header().Set("Content-Type", "image/png")
		fmt.Fprint(w, "\x89PNG")
	default:
		http.NotFound(w, r)
	}
}

func TestCrawlSitemapSite(t *testing.T) {
	g := NewWithT(t)
	ts := &testSite{version: 1, requests: map[string]int{}, notMod: map[string]int{}, agents: map[string]bool{}}
	srv := httptest.NewServer(ts)
	defer srv.Close()
	cache := &memCache{entries: map[string]site.Entry{}}
	opt := site.Options{URL: srv.URL + "/docs/", UserAgent: "chatbackend-ingest/test (+https://github.com/chatbackend/chatbackend)", Cache: cache, Rate: 1000}

	res, err := site.Crawl(context.Background(), opt)
	g.Expect(err).NotTo(HaveOccurred())
	var urls []string
	for _, p := range res.Pages {
		urls = append(urls, strings.TrimPrefix(p.URL, srv.URL))
		g.Expect(p.Cached).To(BeFalse())
	}
	g.Expect(urls).To(Equal([]string{"/docs/", "/docs/guide", "/docs/new"}), "%v", res.Failed)
	var failed []string
	for _, f := range res.Failed {
		failed = append(failed, strings.TrimPrefix(f.URL, srv.URL)+": "+f.Reason)
	}
	g.Expect(failed).To(ConsistOf("/docs/logo.png: not an HTML page: image/png", "/docs/missing: 404 Not Found"))
	g.Expect(ts.requests).NotTo(HaveKey("/docs/private/secret"), "robots.txt disallows it")
	g.Expect(ts.agents).To(Equal(map[string]bool{opt.UserAgent: true}))

	// The main content only, with its headings' anchors.
	index := res.Pages[0]
	g.Expect(index.Title).To(Equal("Welcome"))
	g.Expect(index.Markdown).To(ContainSubstring("## Install it {#install}"))
	g.Expect(index.Markdown).To(ContainSubstring("## Configure {#configure}"))
	g.Expect(index.Markdown).To(ContainSubstring("**Details without id**"))
	g.Expect(index.Markdown).To(ContainSubstring("acme install --all"))
	g.Expect(index.Markdown).NotTo(ContainSubstring("¶"))
	for _, chrome := range []string{"NAVTEXT", "NAVHEADER", "FOOTERTEXT", "SIDEBARTEXT"} {
		g.Expect(index.Markdown).NotTo(ContainSubstring(chrome))
	}
	g.Expect(res.Pages[1].Markdown).To(ContainSubstring("guide version 1"))

	// Second run: the index is unchanged (304, from the cache), the guide
	// changed.
	ts.mu.Lock()
	ts.version = 2
	ts.mu.Unlock()
	res, err = site.Crawl(context.Background(), opt)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Pages).To(HaveLen(3))
	g.Expect(ts.notMod["/docs/"]).To(Equal(1))
	g.Expect(res.Pages[0].Cached).To(BeTrue())
	g.Expect(res.Pages[0].Markdown).To(Equal(index.Markdown))
	g.Expect(res.Pages[1].Cached).To(BeFalse())
	g.Expect(res.Pages[1].Markdown).To(ContainSubstring("guide version 2"))

	// Third run: the guide fails for a while; it keeps its last good copy
	// (and so its chunks), and is listed as failed.
	ts.mu.Lock()
	ts.version = 3
	ts.mu.Unlock()
	res, err = site.Crawl(context.Background(), opt)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Pages).To(HaveLen(3))
	g.Expect(res.Pages[1].Cached).To(BeTrue())
	g.Expect(res.Pages[1].Markdown).To(ContainSubstring("guide version 2"))
	g.Expect(res.Failed).To(ContainElement(site.Failure{URL: srv.URL + "/docs/guide", Reason: "503 Service Unavailable (kept its last good copy)"}))

	// Without a cache the same failure hides whether the guide had chunks.
	opt.Cache = nil
	res, err = site.Crawl(context.Background(), opt)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Failed).To(ContainElement(site.Failure{URL: srv.URL + "/docs/guide", Reason: "503 Service Unavailable", Unknown: true}))

	// A 404 is gone whatever its reason phrase: no last good copy.
	opt.Cache = cache
	ts.mu.Lock()
	ts.version = 4
	ts.mu.Unlock()
	res, err = site.Crawl(context.Background(), opt)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Pages).To(HaveLen(2))
	g.Expect(res.Failed).To(ContainElement(site.Failure{URL: srv.URL + "/docs/guide", Reason: "404 No Such Page"}))
	g.Expect(cache.loads).To(Equal(4), "one Load per crawl with the cache")

	// A cache that fails fails the crawl, rather than lose pages: when it
	// cannot load, and when it loads but cannot store a page fetched (a
	// page not stored would have no copy to keep the next time it fails).
	opt.Cache = brokenCache{}
	_, err = site.Crawl(context.Background(), opt)
	g.Expect(err).To(MatchError(ContainSubstring("cache down")))
	opt.Cache = brokenCache{loads: true}
	_, err = site.Crawl(context.Background(), opt)
	g.Expect(err).To(MatchError(ContainSubstring("cache full")))
}

// brokenCache cannot store a page; it cannot load either unless loads is
// set, when it loads empty.
type brokenCache struct{ loads bool }

func (c brokenCache) Load(context.Context) (map[string]site.Entry, error) {
	if c.loads {
		return map[string]site.Entry{}, nil
	}
	return nil, errors.New("cache down")
}
func (brokenCache) Put(context.Context, string, site.Entry) error { return errors.New("cache full") }
func (brokenCache) Retain(context.Context, []string) error        { return nil }

// Without a sitemap the crawl follows links from the base URL, on its
// host and under its path, up to MaxPages.
func TestCrawlFollowsLinks(t *testing.T) {
	g := NewWithT(t)
	mux := http.NewServeMux()
	page := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, body)
		}
	}
	mux.HandleFunc("/book/", page(`<main><h1>Book</h1><a href="a.html">A</a> <a href="/book/b.html#x">B</a> <a href="/blog/">out of scope</a> <a href="https://elsewhere.example/">away</a></main>`))
	mux.HandleFunc("/book/a.html", page(`<main><h1>A</h1><a href="c.html">C</a></main>`))
	mux.HandleFunc("/book/b.html", page(`<main><h1>B</h1></main>`))
	mux.HandleFunc("/book/c.html", page(`<main><h1>C</h1></main>`))
	mux.HandleFunc("/blog/", page(`<main><h1>Blog</h1></main>`))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	res, err := site.Crawl(context.Background(), site.Options{URL: srv.URL + "/book/", UserAgent: "chatbackend-ingest/test", Rate: 1000})
	g.Expect(err).NotTo(HaveOccurred())
	var urls []string
	for _, p := range res.Pages {
		urls = append(urls, strings.TrimPrefix(p.URL, srv.URL))
	}
	g.Expect(urls).To(Equal([]string{"/book/", "/book/a.html", "/book/b.html", "/book/c.html"}))
	g.Expect(res.Capped).To(BeFalse())

	res, err = site.Crawl(context.Background(), site.Options{URL: srv.URL + "/book/", UserAgent: "chatbackend-ingest/test", Rate: 1000, MaxPages: 2})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Pages).To(HaveLen(2))
	g.Expect(res.Capped).To(BeTrue())

	// "/book" is the folder too; "/book/index.html" is in it.
	for _, base := range []string{"/book", "/book/index.html"} {
		res, err = site.Crawl(context.Background(), site.Options{URL: srv.URL + base, UserAgent: "chatbackend-ingest/test", Rate: 1000})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(len(res.Pages)).To(BeNumerically(">=", 4), base)
		for _, p := range res.Pages {
			g.Expect(p.URL).NotTo(ContainSubstring("/blog"))
		}
	}

	_, err = site.Crawl(context.Background(), site.Options{URL: srv.URL + "/nothing/", UserAgent: "chatbackend-ingest/test", Rate: 1000})
	g.Expect(err).To(MatchError(ContainSubstring("no page could be fetched")))
}
