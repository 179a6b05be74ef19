-- +goose Up
-- What the RAG chat records about an assistant answer: whether it completed,
-- the model and its token usage.
ALTER TABLE messages
    ADD COLUMN status            TEXT NOT NULL DEFAULT 'complete'
        CHECK (status IN ('complete', 'incomplete', 'failed')),
    ADD COLUMN model             TEXT NOT NULL DEFAULT '',
    ADD COLUMN prompt_tokens     INTEGER NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    ADD COLUMN completion_tokens INTEGER NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0);

-- One rating per user and message; rating again replaces it.
CREATE TABLE message_feedback (
    message_id UUID NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    rating     TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment    TEXT NOT NULL DEFAULT '' CHECK (char_length(comment) <= 2000),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, user_id)
);

-- +goose Down
DROP TABLE message_feedback;
ALTER TABLE messages
    DROP COLUMN completion_tokens,
    DROP COLUMN prompt_tokens,
    DROP COLUMN model,
    DROP COLUMN status;
