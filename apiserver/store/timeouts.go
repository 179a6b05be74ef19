package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// connectAttemptTimeout bounds one attempt to open a connection when the
// URL sets no connect_timeout. Without it a database that accepts TCP but
// never answers (frozen, or behind a black hole) would hold the attempt,
// and the pool slot it reserves, forever.
const connectAttemptTimeout = 10 * time.Second

// waitBounds puts a deadline on every wait for the database that goes
// through the pool: acquiring a connection, and each statement (inside
// transactions too). pgxpool has no such settings of its own; its tracer
// hooks are where the context of each acquisition and statement is made,
// so every user of the pool (the store and the PostgreSQL vector store) is
// bounded without wrapping each call.
//
// A wait that runs out returns an error wrapping context.DeadlineExceeded,
// which IsUnavailable reports: the request answers 503 with Retry-After.
type waitBounds struct {
	acquire time.Duration
	query   time.Duration
}

type cancelKey struct{}

// bound derives a context with timeout d (none when d is zero) that carries
// its cancel function for release.
func bound(ctx context.Context, d time.Duration) context.Context {
	if d <= 0 {
		return ctx
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	return context.WithValue(ctx, cancelKey{}, cancel)
}

// release cancels the context made by bound, freeing its timer as soon as
// the wait is over.
func release(ctx context.Context) {
	if cancel, ok := ctx.Value(cancelKey{}).(context.CancelFunc); ok {
		cancel()
	}
}

func (w waitBounds) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	return bound(ctx, w.acquire)
}

func (w waitBounds) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireEndData) {
	release(ctx)
}

func (w waitBounds) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return bound(ctx, w.query)
}

// TraceQueryEnd runs when the statement's result has been read (rows
// closed), so a query's deadline covers reading its rows.
func (w waitBounds) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	release(ctx)
}

// TraceBatchStart bounds a batch (one round trip of several statements,
// see appendMessages) as one statement: the whole batch, its results read,
// within the query timeout.
func (w waitBounds) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return bound(ctx, w.query)
}

// TraceBatchQuery: each statement of a batch is under the batch's bound.
func (waitBounds) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

// TraceBatchEnd runs when the batch's results are closed.
func (w waitBounds) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) {
	release(ctx)
}
