package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// lockID identifies ingest runs among the database's advisory locks (the
// migrations use another).
const lockID int64 = 0x696e67657374 // "ingest"

// ErrLocked: another ingest run holds the lock for longer than the wait.
var ErrLocked = errors.New("another ingest run is in progress")

// Lock takes the database's ingest advisory lock, so that two runs (the
// CronJob's and a manual one) never update the index at once. It waits up
// to wait for a run in progress to finish, probing every second. The lock
// belongs to one connection of pool until unlock is called.
func Lock(ctx context.Context, pool *pgxpool.Pool, wait time.Duration) (unlock func(), err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("ingest lock: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockID).Scan(&ok); err != nil {
			conn.Release()
			return nil, fmt.Errorf("ingest lock: %w", err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			conn.Release()
			return nil, fmt.Errorf("%w: waited %s for it to finish (pg_locks shows it: objid %d)", ErrLocked, wait, lockID&0xffffffff)
		}
		select {
		case <-ctx.Done():
			conn.Release()
			return nil, fmt.Errorf("ingest lock: %w", ctx.Err())
		case <-time.After(min(time.Second, max(time.Until(deadline), 0)+time.Millisecond)):
		}
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
