package store

// Per-user request budgets shared by every replica (table rate_limits,
// owned by this file).
//
// Why in PostgreSQL: a limiter in each replica's memory lets a user through
// N times the limit when N replicas serve, and the operator cannot divide
// the limit by N: it knows spec.replicas, but not what a HorizontalPodAutoscaler
// scaled to a minute ago. Every replica already shares the database, and a
// write request already writes to it, so one more statement per write is
// the cheapest correct place (BenchmarkTakeRateToken measures it).

import (
	"context"
	"fmt"
	"math"
	"time"
)

// RateLimit is one budget of a user: a token bucket that refills PerMinute
// tokens a minute and holds at most Burst (both positive).
type RateLimit struct {
	PerMinute float64
	Burst     int
}

// takeRateToken is the generic cell rate algorithm (a token bucket kept as
// one timestamp, tat: when the bucket will be full again) in one statement.
// $3 is the seconds a token takes to refill, $4 the burst. A request is let
// through when the bucket, refilled until now, holds a token:
// tat <= now + (burst-1)*interval; it then moves tat one interval on.
//
// The upsert updates the row only when the request is let through and
// returns it; otherwise the second branch reads how long until a token is
// back. Concurrent requests of one user serialise on the row lock, so no
// two of them spend the same token, on any replica. Zero rows come back
// only when the row was created concurrently and is already empty: refused.
const takeRateToken = `
WITH taken AS (
    INSERT INTO rate_limits AS r (user_id, budget, tat)
    VALUES ($1, $2, now() + make_interval(secs => $3::float8))
    ON CONFLICT (user_id, budget) DO UPDATE
        SET tat = GREATEST(r.tat, now()) + make_interval(secs => $3::float8)
        WHERE r.tat <= now() + make_interval(secs => $3::float8 * ($4::int - 1))
    RETURNING true AS allowed, 0::float8 AS wait
)
SELECT allowed, wait FROM taken
UNION ALL
SELECT false, EXTRACT(EPOCH FROM tat - now())::float8 - $3::float8 * ($4::int - 1)
FROM rate_limits
WHERE user_id = $1 AND budget = $2 AND NOT EXISTS (SELECT 1 FROM taken)`

// TakeRateToken spends one token of userID's budget (a name such as
// "chat"): true when the request may go on; false and how long until a
// token is back when it is over the limit.
func (s *Store) TakeRateToken(ctx context.Context, userID, budget string, limit RateLimit) (bool, time.Duration, error) {
	if limit.PerMinute <= 0 || limit.Burst <= 0 {
		return false, 0, fmt.Errorf("rate limit %q: rate and burst must be positive", budget)
	}
	interval := 60 / limit.PerMinute
	rows, err := s.pool.Query(ctx, takeRateToken, userID, budget, interval, limit.Burst)
	if err != nil {
		return false, 0, fmt.Errorf("take a %s rate token: %w", budget, err)
	}
	defer rows.Close()
	allowed, wait := false, interval
	if rows.Next() {
		if err := rows.Scan(&allowed, &wait); err != nil {
			return false, 0, fmt.Errorf("take a %s rate token: %w", budget, err)
		}
	}
	if err := rows.Err(); err != nil {
		return false, 0, fmt.Errorf("take a %s rate token: %w", budget, err)
	}
	if allowed {
		return true, 0, nil
	}
	// The read may see the row as of the statement's start, a little older
	// than the lock the upsert waited for: never answer "retry now".
	wait = math.Max(wait, math.Min(interval, 1))
	return false, time.Duration(wait * float64(time.Second)), nil
}
