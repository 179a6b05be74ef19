package ingest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// lockID identifies ingest runs among the database's advisory locks (the
// migrations use another).
const lockID int64 = 0x696e67657374 // "ingest"

// ErrLocked: another ingest run holds the lock for longer than the wait.
var ErrLocked = errors.New("another ingest run is in progress")

// Lock takes the database's ingest advisory lock, so that two runs (the
// CronJob's and a manual one) never update the index at once. It waits up
// to wait for a run in progress to finish: PostgreSQL queues the request
// and grants it the moment the lock is released, and lock_timeout bounds
// the wait. The lock belongs to one connection of pool until unlock is
// called.
func Lock(ctx context.Context, pool *pgxpool.Pool, wait time.Duration) (unlock func(), err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("ingest lock: %w", err)
	}
	// A session lock taken in a transaction outlives it; SET LOCAL's
	// lock_timeout does not. 0 would mean no bound, so at least 1 ms; it
	// is an int of milliseconds, so at most 2^31-1 (24.8 days): beyond,
	// set_config refuses it.
	timeout := min(max(wait.Milliseconds(), 1), math.MaxInt32)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, fmt.Sprintf("%dms", timeout)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockID)
		return err
	})
	if err != nil {
		conn.Release()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available: lock_timeout expired
			return nil, fmt.Errorf("%w: waited %s for it to finish (pg_locks shows it: objid %d)", ErrLocked, wait, lockID&0xffffffff)
		}
		return nil, fmt.Errorf("ingest lock: %w", err)
	}
	return func() {
		// A fresh context: the run's may be cancelled, and the lock must go.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lockID); err != nil {
			// The session ends with the connection, and its lock with it.
			_ = conn.Conn().Close(ctx)
		}
		conn.Release()
	}, nil
}
