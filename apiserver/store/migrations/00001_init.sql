-- +goose Up
-- gen_random_uuid() is built in since PostgreSQL 13; pgcrypto covers older servers.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE users (
    -- BetterAuth's `sub`: an opaque string, not necessarily a UUID.
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL DEFAULT '',
    name       TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    is_active  BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE conversations (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      TEXT NOT NULL DEFAULT '' CHECK (char_length(title) <= 255),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    is_active  BOOLEAN NOT NULL DEFAULT TRUE
);

-- A user's active conversations, most recently updated first, in the exact
-- order of the keyset pagination (updated_at DESC, id DESC).
CREATE INDEX conversations_user_updated_idx
    ON conversations (user_id, updated_at DESC, id DESC)
    WHERE is_active;

CREATE TABLE messages (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content         TEXT NOT NULL,
    sources         JSONB NOT NULL DEFAULT '[]'::jsonb,
    agent_type      TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A conversation's messages, oldest first, in keyset order (created_at, id).
CREATE INDEX messages_conversation_created_idx
    ON messages (conversation_id, created_at, id);

-- +goose Down
DROP TABLE messages;
DROP TABLE conversations;
DROP TABLE users;
