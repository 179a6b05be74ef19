package ingest

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatbackend/chatbackend/apiserver/rag/ingest/site"
)

// pageCache is a site.Cache on the ingest_pages table, one source's rows.
type pageCache struct {
	pool   *pgxpool.Pool
	source string
}

var _ site.Cache = pageCache{}

func (c pageCache) Load(ctx context.Context) (map[string]site.Entry, error) {
	rows, err := c.pool.Query(ctx, `
SELECT url, final_url, etag, last_modified, title, markdown, links FROM ingest_pages WHERE source = $1`, c.source)
	if err != nil {
		return nil, fmt.Errorf("read the stored pages: %w", err)
	}
	out := map[string]site.Entry{}
	var (
		url string
		e   site.Entry
	)
	if _, err := pgx.ForEachRow(rows, []any{&url, &e.URL, &e.ETag, &e.LastModified, &e.Title, &e.Markdown, &e.Links}, func() error {
		out[url] = e
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read the stored pages: %w", err)
	}
	return out, nil
}

func (c pageCache) Put(ctx context.Context, url string, e site.Entry) error {
	links := e.Links
	if links == nil {
		links = []string{}
	}
	_, err := c.pool.Exec(ctx, `
INSERT INTO ingest_pages (source, url, final_url, etag, last_modified, title, markdown, links, fetched_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
ON CONFLICT (source, url) DO UPDATE SET final_url = EXCLUDED.final_url, etag = EXCLUDED.etag,
  last_modified = EXCLUDED.last_modified, title = EXCLUDED.title, markdown = EXCLUDED.markdown,
  links = EXCLUDED.links, fetched_at = now()`,
		c.source, url, e.URL, e.ETag, e.LastModified, e.Title, e.Markdown, links)
	if err != nil {
		return fmt.Errorf("store the copy of %s: %w", url, err)
	}
	return nil
}

func (c pageCache) Retain(ctx context.Context, urls []string) error {
	if _, err := c.pool.Exec(ctx, `DELETE FROM ingest_pages WHERE source = $1 AND NOT (url = ANY($2))`, c.source, urls); err != nil {
		return fmt.Errorf("forget the pages no longer crawled: %w", err)
	}
	return nil
}

// ForgetSources deletes the stored pages of every source but those listed.
func ForgetSources(ctx context.Context, pool *pgxpool.Pool, keep []string) error {
	if _, err := pool.Exec(ctx, `DELETE FROM ingest_pages WHERE NOT (source = ANY($1))`, keep); err != nil {
		return fmt.Errorf("forget the pages of removed sources: %w", err)
	}
	return nil
}
