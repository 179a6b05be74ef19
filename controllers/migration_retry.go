package controllers

import "time"

// The backoff between automatic retries of a failed migration.
const (
	// MigrationRetryInitialDelay follows the first failure: long enough
	// for a database failover to finish.
	MigrationRetryInitialDelay = time.Minute
	// MigrationRetryMaxDelay caps the doubling: a migration that keeps
	// failing is retried hourly, not hammered, and still heals by itself
	// once its cause is gone.
	MigrationRetryMaxDelay = time.Hour
)

// MigrationRetryDelay is the wait after the failedAttempts-th failure of
// a migration before it is retried: one minute, doubling, at most an hour.
func MigrationRetryDelay(failedAttempts int32) time.Duration {
	d := MigrationRetryInitialDelay
	for i := int32(1); i < failedAttempts && d < MigrationRetryMaxDelay; i++ {
		d *= 2
	}
	return min(d, MigrationRetryMaxDelay)
}
