// Package site crawls a published docs site, whatever generated it, and
// extracts each page's main content as Markdown with its heading anchors.
//
// The crawl is polite: robots.txt is honoured (with its Crawl-delay),
// requests are few at a time and paced, carry a User-Agent naming the
// project, stay on the site's host, and are conditional when a Cache
// remembers the page's ETag or Last-Modified.
package site

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/temoto/robotstxt"
	"golang.org/x/time/rate"
)

// Defaults of Options.
const (
	DefaultMaxPages    = 1000
	DefaultConcurrency = 4
	DefaultRate        = 8 // requests per second
	DefaultTimeout     = 30 * time.Second
	// maxBody bounds what is read of one response.
	maxBody = 8 << 20
	// maxRedirects bounds the redirects of one request.
	maxRedirects = 10
)

// Options is one crawl.
type Options struct {
	// URL is the site's base URL (the crawl stays under its path) or its
	// sitemap (a URL ending in .xml; the crawl then takes the pages it
	// lists on its host).
	URL string
	// UserAgent names the crawler; its first word is the robots.txt agent.
	UserAgent string
	// MaxPages caps the pages fetched; Concurrency the requests in flight;
	// Rate the requests per second (robots.txt's Crawl-delay may lower it);
	// Timeout bounds each request. Zero values take the defaults.
	MaxPages    int
	Concurrency int
	Rate        float64
	Timeout     time.Duration
	// Cache, when set, remembers each page between runs for conditional
	// requests.
	Cache Cache
	// Progress, when set, is called after each page with the number done.
	Progress func(done int)
}

// Page is one page of the site.
type Page struct {
	// URL is where the page was found, after redirects.
	URL string
	Extracted
	// Cached says the page came from the Cache: not modified (304), or
	// kept from the last good fetch because this one failed.
	Cached bool
}

// Failure is a page left out of the crawl.
type Failure struct {
	URL    string
	Reason string
	// Unknown says the page may have been indexed by an earlier crawl,
	// which this one cannot tell without a Cache (it failed transiently):
	// its old chunks cannot be told from those of removed pages.
	Unknown bool
}

// Result is what a crawl found.
type Result struct {
	Pages  []Page
	Failed []Failure
	// Capped says MaxPages stopped the crawl before every page was seen.
	Capped bool
}

// Crawl fetches the site's pages: those of its sitemap when it has one
// (the URL itself, a robots.txt Sitemap line, or /sitemap.xml under the
// base), else those reached by links from the base URL. A page that fails
// is a Failure and the crawl goes on; only an unusable start (a bad URL,
// robots.txt or sitemap that cannot be read, no page at all) is an error.
func Crawl(ctx context.Context, o Options) (Result, error) {
	c, err := newCrawler(o)
	if err != nil {
		return Result{}, err
	}
	if err := c.readRobots(ctx); err != nil {
		return Result{}, err
	}
	seeds, follow, err := c.seeds(ctx)
	if err != nil {
		return Result{}, err
	}
	c.follow = follow
	if c.opt.Cache != nil {
		if c.cached, err = c.opt.Cache.Load(ctx); err != nil {
			return Result{}, fmt.Errorf("crawl %s: %w", c.base, err)
		}
	}
	c.run(ctx, seeds)
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("crawl %s: %w", c.base, err)
	}
	if c.cacheErr != nil {
		return Result{}, fmt.Errorf("crawl %s: %w", c.base, c.cacheErr)
	}
	if c.opt.Cache != nil {
		if err := c.opt.Cache.Retain(ctx, c.requested()); err != nil {
			return Result{}, err
		}
	}
	slices.SortFunc(c.res.Pages, func(a, b Page) int { return strings.Compare(a.URL, b.URL) })
	slices.SortFunc(c.res.Failed, func(a, b Failure) int { return strings.Compare(a.URL, b.URL) })
	if len(c.res.Pages) == 0 {
		return c.res, fmt.Errorf("crawl %s: no page could be fetched (%d failed)", c.base, len(c.res.Failed))
	}
	return c.res, nil
}

// crawler is the state of one crawl.
type crawler struct {
	opt     Options
	agent   string
	base    *url.URL
	scope   string // the folder pages must be in (see inScope)
	client  *http.Client
	limiter *rate.Limiter
	robots  *robotstxt.Group
	sitemap []string // from robots.txt
	follow  bool     // follow links (no sitemap)
	// cached is what the Cache remembers, read once and only read after.
	cached map[string]Entry

	mu       sync.Mutex
	wake     *sync.Cond
	queue    []*url.URL
	seen     map[string]bool // URLs queued, before redirects
	found    map[string]bool // pages' final URLs
	pending  int
	done     int
	res      Result
	cacheErr error
}

func newCrawler(o Options) (*crawler, error) {
	base, err := url.Parse(o.URL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("site URL %q: want an absolute http(s) URL", o.URL)
	}
	base.Fragment, base.RawFragment, base.RawQuery = "", "", ""
	if base.Path == "" {
		base.Path = "/"
	}
	if o.MaxPages <= 0 {
		o.MaxPages = DefaultMaxPages
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Rate <= 0 {
		o.Rate = DefaultRate
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	c := &crawler{
		opt: o, base: base, agent: strings.SplitN(o.UserAgent, "/", 2)[0],
		seen: map[string]bool{}, found: map[string]bool{},
	}
	c.wake = sync.NewCond(&c.mu)
	// The pages under the base URL's folder: /docs/ and /docs (a route,
	// as Docusaurus serves it) both mean /docs and what is below it; a
	// file (/book/index.html) means its folder; a sitemap the whole host.
	c.scope = base.Path
	switch last := path.Base(base.Path); {
	case isSitemap(base):
		c.scope = "/"
	case strings.HasSuffix(base.Path, "/"):
	case strings.Contains(last, "."):
		c.scope = path.Dir(base.Path) + "/"
	}
	c.client = &http.Client{Timeout: o.Timeout, CheckRedirect: c.checkRedirect}
	return c, nil
}

func isSitemap(u *url.URL) bool { return strings.HasSuffix(u.Path, ".xml") }

// checkRedirect follows redirects on the site's host that robots.txt
// allows, and no others.
func (c *crawler) checkRedirect(req *http.Request, via []*http.Request) error {
	switch {
	case len(via) >= maxRedirects:
		return fmt.Errorf("more than %d redirects", maxRedirects)
	case req.URL.Host != c.base.Host:
		return fmt.Errorf("redirected off the site to %s", req.URL.Redacted())
	case !c.allowed(req.URL):
		return fmt.Errorf("redirected to %s, which robots.txt disallows", req.URL.Path)
	}
	return nil
}

// readRobots reads robots.txt: a missing one (4xx) allows everything, one
// that cannot be read (5xx, no answer) stops the crawl, as RFC 9309 asks.
func (c *crawler) readRobots(ctx context.Context) error {
	// The limiter starts at the default rate; Crawl-delay may slow it.
	c.limiter = rate.NewLimiter(rate.Limit(c.opt.Rate), 1)
	u := &url.URL{Scheme: c.base.Scheme, Host: c.base.Host, Path: "/robots.txt"}
	resp, err := c.get(ctx, u, nil)
	if err != nil {
		return fmt.Errorf("robots.txt: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(limitBody(resp.Body))
	if err != nil {
		return fmt.Errorf("robots.txt: %w", err)
	}
	data, err := robotstxt.FromStatusAndBytes(resp.StatusCode, body)
	if err != nil {
		return fmt.Errorf("robots.txt: %w", err)
	}
	if resp.StatusCode >= 500 {
		return fmt.Errorf("robots.txt: %s: the site does not say what may be crawled", resp.Status)
	}
	c.robots = data.FindGroup(c.agent)
	c.sitemap = data.Sitemaps
	if d := c.robots.CrawlDelay; d > 0 && rate.Every(d) < c.limiter.Limit() {
		c.limiter.SetLimit(rate.Every(d))
	}
	return nil
}

func (c *crawler) allowed(u *url.URL) bool {
	return c.robots == nil || c.robots.Test(u.EscapedPath())
}

// seeds are the pages to start from, and whether to follow their links.
func (c *crawler) seeds(ctx context.Context) ([]*url.URL, bool, error) {
	var maps []*url.URL
	if isSitemap(c.base) {
		maps = []*url.URL{c.base}
	} else {
		for _, s := range c.sitemap {
			if u := c.onHost(c.base, s); u != nil {
				maps = append(maps, u)
			}
		}
		if len(maps) == 0 {
			maps = []*url.URL{c.base.JoinPath("sitemap.xml")}
		}
	}
	var pages []*url.URL
	for _, m := range maps {
		ps, err := c.sitemapPages(ctx, m)
		if err != nil {
			return nil, false, err
		}
		pages = append(pages, ps...)
	}
	if len(pages) > 0 {
		return pages, false, nil
	}
	if isSitemap(c.base) {
		return nil, false, fmt.Errorf("sitemap %s lists no page on %s", c.base, c.base.Host)
	}
	return []*url.URL{c.base}, true, nil
}

// get sends one paced GET.
func (c *crawler) get(ctx context.Context, u *url.URL, header http.Header) (*http.Response, error) {
	if err := c.limiter.Wait(ctx); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", c.opt.UserAgent)
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func limitBody(r io.Reader) io.Reader { return io.LimitReader(r, maxBody) }

// isHTML says whether a Content-Type is a web page's.
func isHTML(contentType string) bool {
	t, _, err := mime.ParseMediaType(contentType)
	return err == nil && (t == "text/html" || t == "application/xhtml+xml")
}

var errNotHTML = errors.New("not an HTML page")
