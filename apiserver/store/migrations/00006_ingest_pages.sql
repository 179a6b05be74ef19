-- +goose Up
-- The pages `chat-apiserver ingest` crawled from a site source, kept between
-- runs: their validators make the next run's requests conditional, and a
-- page the site answers 304 for (or fails to serve for a while) is chunked
-- again from its stored Markdown, so it keeps its chunks.
CREATE TABLE ingest_pages (
    source        text        NOT NULL,
    url           text        NOT NULL,
    final_url     text        NOT NULL,
    etag          text        NOT NULL DEFAULT '',
    last_modified text        NOT NULL DEFAULT '',
    title         text        NOT NULL DEFAULT '',
    markdown      text        NOT NULL,
    links         text[]      NOT NULL DEFAULT '{}',
    fetched_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, url)
);

-- +goose Down
DROP TABLE ingest_pages;
