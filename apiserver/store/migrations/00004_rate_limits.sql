-- +goose Up
-- Each user's request budgets, shared by every replica of the API server
-- (store/ratelimit.go). One row per user and budget holds the GCRA's
-- theoretical arrival time: a row whose tat is in the past means a full
-- bucket, exactly like no row, so nothing needs sweeping: the table holds at
-- most two small rows per user ever seen, like users itself, and any row may
-- be deleted at any time. No foreign key to users: a user row removed while
-- the server still has it cached must not turn every write into an error
-- here.
--
-- UNLOGGED: every allowed write request updates its row, and this state is
-- worth no WAL. After a crash or on a promoted standby the table starts
-- empty, which only refills every bucket once.
CREATE UNLOGGED TABLE rate_limits (
    user_id TEXT NOT NULL,
    budget  TEXT NOT NULL,
    tat     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, budget)
);

-- +goose Down
DROP TABLE rate_limits;
