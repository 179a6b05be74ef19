package site

import "context"

// Cache remembers the pages of one site between crawls, by the URL they
// were requested at, so that a page the server says is unchanged (304) is
// not downloaded again and keeps its chunks.
type Cache interface {
	// Load returns every remembered page by that URL. A crawl calls it
	// once, at its start: a lookup per page would cost a round trip each,
	// and the crawl's result holds every page's content by its end anyway.
	Load(ctx context.Context) (map[string]Entry, error)
	Put(ctx context.Context, url string, e Entry) error
	// Retain forgets every page but those requested in this crawl.
	Retain(ctx context.Context, urls []string) error
}

// Entry is a remembered page: its validators and what was extracted.
type Entry struct {
	// URL is the page's URL after redirects.
	URL          string
	ETag         string
	LastModified string
	Extracted
}
