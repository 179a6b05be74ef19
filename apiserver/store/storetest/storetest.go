// Package storetest gives tests a fresh, migrated PostgreSQL database and a
// pool on it: the set-up every suite that reads or writes the store needs.
// The server comes from internal/pgtest (the suite's TestMain must call
// pgtest.Main).
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatbackend/chatbackend/apiserver/store"
	"github.com/chatbackend/chatbackend/apiserver/store/migrations"
	"github.com/chatbackend/chatbackend/internal/pgtest"
)

// Open creates a database, applies every migration and returns the pool
// (closed when t ends).
func Open(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	url := pgtest.New(t)
	if _, err := migrations.Migrate(ctx, url, nil, nil); err != nil {
		t.Fatalf("migrate the test database: %v", err)
	}
	pool, err := store.Open(ctx, url, store.Options{ConnectTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("open the test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}
