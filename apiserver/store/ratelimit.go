package store

// Per-user request budgets shared by every replica (table rate_limits,
// owned by this file).
//
// Why in PostgreSQL: a limiter in each replica's memory lets a user through
// N times the limit when N replicas serve, and the operator cannot divide
// the limit by N: it knows spec.replicas, but not what a HorizontalPodAutoscaler
// scaled to a minute ago. Every replica already shares the database, and a
// write request already writes to it, so one more statement per write is
// the cheapest correct place (BenchmarkTakeRateToken measures it); a write
// that is one statement takes its token in that statement
// (CreateConversationLimited, BenchmarkCreateConversation), and a chat
// turn's start in its transaction (StartTurn, Charge): no round trip or
// commit more than the write's own.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// RateLimit is one budget of a user: a token bucket that refills PerMinute
// tokens a minute and holds at most Burst (both positive).
type RateLimit struct {
	PerMinute float64
	Burst     int
}

// Charge is a token of a user's budget that a write spends in its own
// transaction (StartTurn) instead of a TakeRateToken of its own: one round
// trip and commit fewer.
type Charge struct {
	Budget string
	Limit  RateLimit
}

// takeRateToken is the generic cell rate algorithm (a token bucket kept as
// one timestamp, tat: when the bucket will be full again) in one statement.
// $1 is the user, $2 the budget, $3 the seconds a token takes to refill,
// $4 the burst. A request is let through when the bucket, refilled until
// now, holds a token: tat <= now + (burst-1)*interval; it then moves tat
// one interval on.
//
// The upsert writes the row only when the request is let through, and then
// returns one row; none when it is refused (rateWait then says how long
// to wait: refusals are rare, so the statement every request runs does
// not carry that read, and costs PostgreSQL less to plan). Concurrent
// requests of one user serialise on the row lock, so no two of them spend
// the same token, on any replica.
const takeRateToken = `
INSERT INTO rate_limits AS r (user_id, budget, tat)
VALUES ($1, $2, now() + make_interval(secs => $3::float8))
ON CONFLICT (user_id, budget) DO UPDATE
    SET tat = GREATEST(r.tat, now()) + make_interval(secs => $3::float8)
    WHERE r.tat <= now() + make_interval(secs => $3::float8 * ($4::int - 1))
RETURNING true`

// rateWait is the seconds until the next token of a budget ($1 to $4 as in
// takeRateToken).
const rateWait = `
SELECT EXTRACT(EPOCH FROM tat - now())::float8 - $3::float8 * ($4::int - 1)
FROM rate_limits WHERE user_id = $1 AND budget = $2`

// RateLimitedError is a request refused because its user's budget is
// spent: it wrote nothing. Wait is how long until a token is back.
type RateLimitedError struct {
	Budget string
	Wait   time.Duration
}

// RetryAfter is Wait in whole seconds, rounded up, at least 1.
func (e *RateLimitedError) RetryAfter() int { return max(int(math.Ceil(e.Wait.Seconds())), 1) }

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("too many %s requests; retry in %d s", e.Budget, e.RetryAfter())
}

// rateArgs checks limit and returns a token's refill time in seconds.
func rateArgs(budget string, limit RateLimit) (float64, error) {
	if limit.PerMinute <= 0 || limit.Burst <= 0 {
		return 0, fmt.Errorf("rate limit %q: rate and burst must be positive", budget)
	}
	return 60 / limit.PerMinute, nil
}

// refusal reads how long a refused request of userID must wait, as a
// *RateLimitedError.
func (s *Store) refusal(ctx context.Context, userID, budget string, interval float64, burst int) (*RateLimitedError, error) {
	// No row: removed since (the rows are disposable), so a token is a
	// refill away at most.
	wait := interval
	err := s.pool.QueryRow(ctx, rateWait, userID, budget, interval, burst).Scan(&wait)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("read the %s rate limit: %w", budget, err)
	}
	// A token may have come back since the refusal: never answer "retry
	// now".
	wait = math.Max(wait, math.Min(interval, 1))
	return &RateLimitedError{Budget: budget, Wait: time.Duration(wait * float64(time.Second))}, nil
}

// TakeRateToken spends one token of userID's budget (a name such as
// "chat"): nil when the request may go on; a *RateLimitedError (how long
// until a token is back) when it is over the limit, as
// CreateConversationLimited answers.
func (s *Store) TakeRateToken(ctx context.Context, userID, budget string, limit RateLimit) error {
	interval, err := rateArgs(budget, limit)
	if err != nil {
		return err
	}
	var allowed bool
	err = s.pool.QueryRow(ctx, takeRateToken, userID, budget, interval, limit.Burst).Scan(&allowed)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("take a %s rate token: %w", budget, err)
	}
	refused, err := s.refusal(ctx, userID, budget, interval, limit.Burst)
	if err != nil {
		return err
	}
	return refused
}
