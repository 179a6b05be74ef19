-- +goose Up
-- The answers still streaming, oldest first: the sweep that marks the ones a
-- dead replica left behind (store.AbandonStreaming) reads only these rows,
-- however many messages the table holds.
CREATE INDEX messages_streaming_created_idx ON messages (created_at) WHERE status = 'streaming';

-- +goose Down
DROP INDEX messages_streaming_created_idx;
