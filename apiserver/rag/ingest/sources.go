package ingest

import (
	"context"
	"fmt"
	"io"
	"net/url"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatbackend/chatbackend/apiserver/rag/chunk"
	"github.com/chatbackend/chatbackend/apiserver/rag/ingest/gitsource"
	"github.com/chatbackend/chatbackend/apiserver/rag/ingest/site"
	"github.com/chatbackend/chatbackend/apiserver/rag/ingest/source"
)

// SpecOptions is what the sources of source.Specs share.
type SpecOptions struct {
	// Chunk sizes the chunks; the spec gives the site URL and route base.
	Chunk chunk.Options
	// UserAgent is the crawler's.
	UserAgent string
	// Pool, when set, holds the pages crawled from sites between runs
	// (ingest_pages), which makes the next run's requests conditional.
	Pool *pgxpool.Pool
	// Out receives progress lines.
	Out io.Writer
}

// progressEvery is how many pages a crawl fetches between progress lines.
const progressEvery = 50

// FromSpec is the source a spec describes.
func FromSpec(s source.Spec, o SpecOptions) Source {
	if o.Out == nil {
		o.Out = io.Discard
	}
	switch {
	case s.Git != nil:
		return Source{Name: s.Name, Load: func(ctx context.Context) (Loaded, error) { return loadGit(ctx, s.Name, *s.Git, o) }}
	case s.Site != nil:
		return Source{Name: s.Name, Load: func(ctx context.Context) (Loaded, error) { return loadSite(ctx, s.Name, *s.Site, o) }}
	}
	return Source{Name: s.Name, Load: func(context.Context) (Loaded, error) { return Loaded{}, s.Validate() }}
}

func loadGit(ctx context.Context, name string, g source.Git, o SpecOptions) (Loaded, error) {
	co, err := gitsource.Clone(ctx, g)
	if err != nil {
		return Loaded{}, err
	}
	defer func() { _ = co.Remove() }()
	fmt.Fprintf(o.Out, "ingest: source %q: cloned commit %.12s\n", name, co.Commit)
	opt := o.Chunk
	opt.SiteURL, opt.RouteBase = g.SiteURL, g.RouteBase
	return Load(co.Dir, opt)
}

func loadSite(ctx context.Context, name string, s source.Site, o SpecOptions) (Loaded, error) {
	opt := site.Options{URL: s.URL, MaxPages: s.MaxPages, UserAgent: o.UserAgent, Progress: func(done int) {
		if done%progressEvery == 0 {
			fmt.Fprintf(o.Out, "ingest: source %q: %d pages fetched\n", name, done)
		}
	}}
	if o.Pool != nil {
		opt.Cache = pageCache{pool: o.Pool, source: name}
	}
	res, err := site.Crawl(ctx, opt)
	if err != nil {
		return Loaded{}, err
	}
	set := newPages(o.Chunk)
	for _, f := range res.Failed {
		e := PageError{Path: f.URL, Reason: f.Reason}
		if f.Unknown {
			// Hidden, not Errors: the page's chunks were stored under the
			// path of the URL it redirected to when it was last fetched
			// (often another: /docs/x to /docs/x/), which a failed fetch
			// cannot tell, so its URL does not say which chunks are its.
			set.Hidden = append(set.Hidden, e)
		} else {
			set.Missed = append(set.Missed, e)
		}
	}
	if res.Capped {
		set.Warnings = append(set.Warnings, PageError{Path: s.URL,
			Reason: fmt.Sprintf("stopped at %d pages (maxPages): the pages beyond are not indexed", len(res.Pages)+len(res.Failed))})
	}
	for _, p := range res.Pages {
		page, err := sitePage(p, o.Chunk)
		if err != nil {
			set.Missed = append(set.Missed, PageError{Path: p.URL, Reason: err.Error()})
			continue
		}
		set.add(page)
	}
	return set.Loaded, nil
}

// sitePage chunks a crawled page's Markdown as the Docusaurus pages are,
// but cited at the URL it was found at, under its path.
func sitePage(p site.Page, opt chunk.Options) (chunk.Page, error) {
	u, err := url.Parse(p.URL)
	if err != nil {
		return chunk.Page{}, fmt.Errorf("page URL: %w", err)
	}
	page, err := chunk.Parse(u.Path, []byte(p.Markdown), opt)
	if err != nil {
		return chunk.Page{}, err
	}
	page.Path, page.URL = u.Path, p.URL
	if p.Title != "" {
		page.Title = p.Title
	}
	return page, nil
}
