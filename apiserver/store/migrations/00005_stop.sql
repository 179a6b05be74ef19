-- +goose Up
-- An answer is stored when it starts streaming (status 'streaming') so that
-- its owner can stop it from any replica: the stop marks the row 'stopped',
-- the replica streaming it sees that and ends the answer, keeping the text
-- streamed so far.
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check
    CHECK (status IN ('complete', 'incomplete', 'failed', 'streaming', 'stopped'));

-- +goose Down
UPDATE messages SET status = 'incomplete' WHERE status IN ('streaming', 'stopped');
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check
    CHECK (status IN ('complete', 'incomplete', 'failed'));
