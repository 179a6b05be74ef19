package site

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
)

// run fetches the seeds and, when following links, the pages they lead
// to, Concurrency at a time, until none is left or MaxPages were queued.
func (c *crawler) run(ctx context.Context, seeds []*url.URL) {
	c.mu.Lock()
	for _, u := range seeds {
		c.enqueueLocked(u)
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for range c.opt.Concurrency {
		wg.Go(func() { c.work(ctx) })
	}
	// Wake the workers waiting for pages when the run is cancelled.
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.wake.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	wg.Wait()
}

// enqueueLocked queues a page unless it was seen, robots.txt disallows it
// (which is no failure: the site asked for it) or the cap is reached.
func (c *crawler) enqueueLocked(u *url.URL) {
	s := u.String()
	if c.seen[s] || !c.allowed(u) {
		return
	}
	if len(c.seen) >= c.opt.MaxPages {
		c.res.Capped = true
		return
	}
	c.seen[s] = true
	c.queue = append(c.queue, u)
}

// work takes pages from the queue until it is empty and no fetch in flight
// can add to it.
func (c *crawler) work(ctx context.Context) {
	for {
		c.mu.Lock()
		for len(c.queue) == 0 && c.pending > 0 && ctx.Err() == nil {
			c.wake.Wait()
		}
		if len(c.queue) == 0 || ctx.Err() != nil {
			c.wake.Broadcast()
			c.mu.Unlock()
			return
		}
		u := c.queue[0]
		c.queue = c.queue[1:]
		c.pending++
		c.mu.Unlock()

		page, fail := c.fetch(ctx, u)

		c.mu.Lock()
		c.pending--
		c.done++
		if fail != nil {
			c.res.Failed = append(c.res.Failed, *fail)
		}
		// A failed page may come with its last good copy; two URLs may
		// redirect to one page.
		if page.URL != "" && !c.found[page.URL] {
			c.found[page.URL] = true
			c.res.Pages = append(c.res.Pages, page)
		}
		if c.follow {
			for _, l := range page.Links {
				if lu, ok := c.resolve(u, l); ok {
					c.enqueueLocked(lu)
				}
			}
		}
		done := c.done
		c.wake.Broadcast()
		c.mu.Unlock()
		if c.opt.Progress != nil {
			c.opt.Progress(done)
		}
	}
}

// requested lists the URLs fetched (or tried) in this crawl.
func (c *crawler) requested() []string {
	out := make([]string, 0, len(c.seen))
	for s := range c.seen {
		out = append(out, s)
	}
	return out
}

// fetch gets one page, conditionally when the cache knows it. A page that
// fails transiently (not a 404 or a non-HTML answer) keeps its last good
// copy from the cache. The links to follow are the page's.
func (c *crawler) fetch(ctx context.Context, u *url.URL) (Page, *Failure) {
	cached, known := c.cached[u.String()]
	page, err := c.fetchPage(ctx, u, cached, known)
	if err == nil {
		return page, nil
	}
	fail := &Failure{URL: u.String(), Reason: err.Error()}
	var se statusError
	switch {
	case errors.As(err, &se) && se.gone() || errors.Is(err, errNotHTML):
		return Page{}, fail
	case c.opt.Cache == nil:
		fail.Unknown = true
		return Page{}, fail
	case !known:
		return Page{}, fail
	}
	fail.Reason += " (kept its last good copy)"
	return Page{URL: cached.URL, Extracted: cached.Extracted, Cached: true}, fail
}

// storeFailed records the first error of the Cache: the crawl then fails,
// because a page it could not store would have no copy to keep the next
// time it fails.
func (c *crawler) storeFailed(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cacheErr == nil {
		c.cacheErr = err
	}
}

// statusError is an HTTP answer other than 200 and 304.
type statusError struct {
	code   int
	status string
}

func (e statusError) Error() string { return e.status }

// gone says the page is no more (it was not merely unavailable).
func (e statusError) gone() bool {
	return e.code == http.StatusNotFound || e.code == http.StatusGone
}

func (c *crawler) fetchPage(ctx context.Context, u *url.URL, cached Entry, known bool) (Page, error) {
	header := http.Header{}
	if known {
		if cached.ETag != "" {
			header.Set("If-None-Match", cached.ETag)
		}
		if cached.LastModified != "" {
			header.Set("If-Modified-Since", cached.LastModified)
		}
	}
	resp, err := c.get(ctx, u, header)
	if err != nil {
		return Page{}, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && known:
		return Page{URL: cached.URL, Extracted: cached.Extracted, Cached: true}, nil
	case resp.StatusCode != http.StatusOK:
		return Page{}, statusError{code: resp.StatusCode, status: resp.Status}
	case !isHTML(resp.Header.Get("Content-Type")):
		return Page{}, fmt.Errorf("%w: %s", errNotHTML, resp.Header.Get("Content-Type"))
	}
	final := *resp.Request.URL
	final.Fragment, final.RawFragment = "", ""
	ex, err := Extract(&final, limitBody(resp.Body))
	if err != nil {
		return Page{}, err
	}
	page := Page{URL: final.String(), Extracted: ex}
	if c.opt.Cache != nil {
		entry := Entry{URL: page.URL, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"), Extracted: ex}
		if err := c.opt.Cache.Put(ctx, u.String(), entry); err != nil {
			c.storeFailed(err)
			return Page{}, err
		}
	}
	return page, nil
}
