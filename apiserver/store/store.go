// Package store is the API server's PostgreSQL access: typed queries, each
// scoped by the authenticated user's id so one user can never read or change
// another's rows.
//
// Who owns which table (see migrations/): store is the only package that
// reads or writes users, conversations, messages, message_feedback and
// rate_limits.
// rag_chunks and rag_index_state belong to the PostgreSQL vector store
// (rag/vectorstore/pgstore). Both get the one pool Open returns, so the
// server keeps a single set of connections, yet no package runs SQL on a
// table it does not own.
//
// Statements are prepared once per connection (pgx's default exec mode,
// cache_statement): PostgreSQL then parses and plans each statement once
// instead of on every call, which is half its CPU per write. Apart from
// those, the pool keeps no session state outside transactions, so a
// transaction-mode pooler that routes protocol-level prepared statements
// (PgBouncer 1.21+ with max_prepared_statements above 0, its default since
// 1.24) works; for one that cannot, DATABASE_URL takes
// default_query_exec_mode=exec and nothing is left on a backend.
package store

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatbackend/chatbackend/apiserver/store/migrations"
)

// ErrNotFound: the row does not exist, belongs to another user, or was
// deleted. Callers cannot tell these apart, on purpose.
var ErrNotFound = errors.New("not found")

// ErrBadCursor: a pagination cursor that this server did not issue.
var ErrBadCursor = errors.New("invalid cursor")

// Options tunes Open.
type Options struct {
	// ConnectTimeout bounds the wait for the database to answer at start-up
	// (serverless databases take a few seconds to wake up). Default
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// MaxConns caps the pool. Default: pgxpool's (max(4, CPUs)).
	MaxConns int32
	// MinConns is how many connections the pool opens at once, in the
	// background, and keeps open (pgxpool's MinConns). Default: none, each
	// opened on demand.
	MinConns int32
	// AcquireTimeout bounds the wait for a pooled connection, QueryTimeout
	// each statement (zero: only the caller's context bounds them). `serve`
	// sets both; `migrate` leaves them zero, its statements may be long.
	AcquireTimeout time.Duration
	QueryTimeout   time.Duration
	Logger         *slog.Logger
}

// Store runs the queries. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// New returns the store on pool (from Open). The caller owns the pool and
// closes it once nothing uses it any more.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// DefaultConnectTimeout is how long Open waits for the database by default.
const DefaultConnectTimeout = 60 * time.Second

// Open creates the pool and waits, with exponential backoff, until the
// database answers or opts.ConnectTimeout (or ctx) runs out. The pool is
// shared by the store and the PostgreSQL vector store.
func Open(ctx context.Context, dsn string, opts Options) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password included: keep it out.
		return nil, errors.New("parse database URL: malformed connection string")
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if opts.MinConns > 0 {
		cfg.MinConns = min(opts.MinConns, cfg.MaxConns)
	}
	if cfg.MaxConnLifetimeJitter == 0 {
		// Connections opened together (all of them at start-up, with
		// MinConns) would otherwise reach MaxConnLifetime together and be
		// closed together, and the requests of that moment would all wait
		// for new ones: spread their ends over a fifth of the lifetime.
		// pool_max_conn_lifetime_jitter in the URL sets it instead.
		cfg.MaxConnLifetimeJitter = cfg.MaxConnLifetime / 5
	}
	if cfg.ConnConfig.ConnectTimeout <= 0 {
		cfg.ConnConfig.ConnectTimeout = connectAttemptTimeout
	}
	if opts.AcquireTimeout > 0 || opts.QueryTimeout > 0 {
		cfg.ConnConfig.Tracer = waitBounds{acquire: opts.AcquireTimeout, query: opts.QueryTimeout}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create database pool: %w", err)
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if err := waitForDatabase(ctx, pool, opts.ConnectTimeout, opts.Logger); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
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
// missing database, a server certificate the configured CA does not vouch
// for (or not for this host name). A migrations Job or a pod then fails at
// once saying so, instead of after the connect timeout.
func permanent(err error) bool {
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	var invalid x509.CertificateInvalidError
	if errors.As(err, &unknownCA) || errors.As(err, &badHost) || errors.As(err, &invalid) {
		return true
	}
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

// SchemaVersions are the version of the database's schema and the newest
// migration this binary embeds (what its queries expect). current below
// latest means the database has not been migrated for this binary.
func (s *Store) SchemaVersions(ctx context.Context) (current, latest int64, err error) {
	current, err = migrations.DatabaseVersion(ctx, s.pool)
	return current, migrations.Latest(), err
}

// ErrUnavailable marks errors of a database that cannot be reached right
// now (connection refused or reset, server shutting down or starting up, no
// answer within the pool's acquire or query timeout):
// the request may succeed if retried later, so handlers
// answer 503 with Retry-After instead of 500.
var ErrUnavailable = errors.New("database unavailable")

// IsUnavailable reports whether err means the database cannot be reached
// (or did not answer in time), as opposed to a query that failed on a
// reachable database. It is the one classification of connection errors:
// every handler maps it to 503.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	// A deadline that ran out: the database did not answer in time (the
	// pool's bounds, see waitBounds, or the request's deadline).
	if errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// A query or pool acquisition that ran out of time: the database is too
	// slow or unreachable right now. (A client that went away is
	// context.Canceled, which the handlers tell apart before asking.)
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return true
	}
	// pgx marks errors that happened before anything was sent: connecting,
	// a dead connection taken from the pool.
	if pgconn.SafeToRetry(err) {
		return true
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	// A connection cut mid-query (the server was killed, a proxy dropped it)
	// surfaces as an EOF from the wire, not as a net.Error.
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"): // connection exception
			return true
		case pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", pgErr.Code == "53300":
			// admin/crash shutdown, cannot connect now, too many connections
			return true
		}
	}
	return false
}
