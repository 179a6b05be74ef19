// Package store is the API server's PostgreSQL access: a pgx pool and typed
// queries, each scoped by the authenticated user's id so one user can never
// read or change another's rows.
//
// The pool is safe behind a transaction-mode pooler (PgBouncer, Neon's pooled
// endpoint): it keeps no session state outside transactions and never uses
// named prepared statements, which such a pooler cannot route.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound: the row does not exist, belongs to another user, or was
// deleted. Callers cannot tell these apart, on purpose.
var ErrNotFound = errors.New("not found")

// ErrBadCursor: a pagination cursor that this server did not issue.
var ErrBadCursor = errors.New("invalid cursor")

// Options tunes Open.
type Options struct {
	// ConnectTimeout bounds the wait for the database to answer at start-up
	// (serverless databases take a few seconds to wake up). Default 60s.
	ConnectTimeout time.Duration
	// MaxConns caps the pool. Default: pgxpool's (max(4, CPUs)).
	MaxConns int32
	Logger   *slog.Logger
}

// Store runs the queries. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// Open creates the pool and waits, with exponential backoff, until the
// database answers or opts.ConnectTimeout (or ctx) runs out.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password included: keep it out.
		return nil, errors.New("parse database URL: malformed connection string")
	}
	// Exec mode sends each statement with the unnamed statement: no
	// server-side prepared statement outlives the call, so a transaction
	// pooler may hand the next statement to another backend.
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create database pool: %w", err)
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 60 * time.Second
	}
	if err := waitForDatabase(ctx, pool, opts.ConnectTimeout, opts.Logger); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{pool: pool}, nil
}

func waitForDatabase(ctx context.Context, pool *pgxpool.Pool, timeout time.Duration, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := pool.Ping(ctx)
		if err == nil {
			return nil
		}
		if permanent(err) {
			return fmt.Errorf("connect to database: %w", err)
		}
		if logger != nil {
			logger.Warn("database not reachable yet, retrying", "attempt", attempt, "retry_in", delay.String(), "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connect to database: gave up after %d attempts within %s: %w", attempt, timeout, err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// permanent reports errors that waiting will not fix: bad credentials, a
// missing database.
func permanent(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "28", "3D": // invalid authorization, invalid catalog name
			return true
		}
	}
	return false
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Close releases the pool's connections.
func (s *Store) Close() { s.pool.Close() }

// Pool exposes the pool for packages that add their own tables (retrieval
// over pgvector, ingestion) without re-opening the database.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }
