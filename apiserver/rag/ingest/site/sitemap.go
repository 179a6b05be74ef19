package site

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// sitemap is a <urlset> or a <sitemapindex>: Pages or Sitemaps is set.
type sitemap struct {
	Pages    []string `xml:"url>loc"`
	Sitemaps []string `xml:"sitemap>loc"`
}

// maxSitemaps bounds the sitemaps an index may lead to.
const maxSitemaps = 50

// sitemapPages reads the sitemap at u, following sitemap indexes, and
// returns the page URLs it lists on the crawled host. A sitemap that is
// missing yields no pages and no error: the crawl then follows links.
func (c *crawler) sitemapPages(ctx context.Context, u *url.URL) ([]*url.URL, error) {
	var pages []*url.URL
	queue, seen := []*url.URL{u}, map[string]bool{u.String(): true}
	for len(queue) > 0 && len(seen) <= maxSitemaps {
		next := queue[0]
		queue = queue[1:]
		sm, err := c.readSitemap(ctx, next)
		if err != nil {
			return nil, err
		}
		for _, loc := range sm.Sitemaps {
			if s := c.onHost(next, loc); s != nil && !seen[s.String()] {
				seen[s.String()] = true
				queue = append(queue, s)
			}
		}
		for _, loc := range sm.Pages {
			if p, ok := c.resolve(next, loc); ok {
				pages = append(pages, p)
			}
		}
	}
	return pages, nil
}

func (c *crawler) readSitemap(ctx context.Context, u *url.URL) (sitemap, error) {
	if !c.allowed(u) {
		return sitemap{}, nil
	}
	resp, err := c.get(ctx, u, nil)
	if err != nil {
		return sitemap{}, fmt.Errorf("sitemap %s: %w", u, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return sitemap{}, nil
	case resp.StatusCode != http.StatusOK:
		return sitemap{}, fmt.Errorf("sitemap %s: %s", u, resp.Status)
	}
	var sm sitemap
	if err := xml.NewDecoder(limitBody(resp.Body)).Decode(&sm); err != nil {
		return sitemap{}, fmt.Errorf("sitemap %s: %w", u, err)
	}
	return sm, nil
}

// resolve parses a link found at from and says whether it is a page of
// the crawl: on the site's host and under its base path.
func (c *crawler) resolve(from *url.URL, ref string) (*url.URL, bool) {
	u := c.onHost(from, ref)
	return u, u != nil && c.inScope(u.Path)
}

// inScope says whether a path is under the scope's folder: /docs covers
// /docs and /docs/x, not /docsearch.
func (c *crawler) inScope(p string) bool {
	dir := strings.TrimSuffix(c.scope, "/")
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// onHost parses a URL found at from, without fragment or query; nil when
// it is not on the site's host.
func (c *crawler) onHost(from *url.URL, ref string) *url.URL {
	u, err := from.Parse(strings.TrimSpace(ref))
	if err != nil || u.Host != c.base.Host || u.Scheme != c.base.Scheme {
		return nil
	}
	u.Fragment, u.RawFragment, u.RawQuery = "", "", ""
	if u.Path == "" {
		u.Path = "/"
	}
	return u
}
