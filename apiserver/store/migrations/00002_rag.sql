-- +goose Up
-- Chunks of the docs for retrieval without Qdrant: the API servers load the
-- embeddings into memory and search them there (no pgvector needed, so any
-- managed PostgreSQL works).
CREATE TABLE rag_chunks (
    -- UUIDv5 of doc path + heading anchor + window index (see rag/chunk).
    id           UUID PRIMARY KEY,
    doc_path     TEXT NOT NULL,
    url          TEXT NOT NULL,
    title        TEXT NOT NULL DEFAULT '',
    heading      TEXT NOT NULL DEFAULT '',
    text         TEXT NOT NULL,
    -- Hash of the embedded text and the embedding model.
    content_hash TEXT NOT NULL,
    dims         INTEGER NOT NULL CHECK (dims > 0),
    -- dims little-endian float32s, L2-normalized.
    embedding    BYTEA NOT NULL CHECK (octet_length(embedding) = 4 * dims),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX rag_chunks_doc_path_idx ON rag_chunks (doc_path);

-- One row whose generation every change of rag_chunks increments in the same
-- transaction: API servers compare it with the generation they loaded to
-- know when to reload (LISTEN/NOTIFY does not pass a transaction pooler).
CREATE TABLE rag_index_state (
    singleton  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    generation BIGINT NOT NULL DEFAULT 0
);
INSERT INTO rag_index_state (singleton, generation) VALUES (TRUE, 0);

-- +goose Down
DROP TABLE rag_index_state;
DROP TABLE rag_chunks;
