// Package migrations holds the database schema as versioned goose SQL files,
// embedded in the binary, and applies them.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	// Registers the "pgx" database/sql driver goose runs on.
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// FS holds the migration files (00001_init.sql, ...).
//
//go:embed *.sql
var FS embed.FS

// lockID identifies this schema's migrations among advisory locks; any
// constant works as long as every migrate run uses the same one.
const lockID int64 = 0x636861746264 // "chatbd"

// ErrSchemaNewer: the database was migrated by a newer binary than this one.
var ErrSchemaNewer = errors.New("schema newer than this binary")

// Applied is one migration applied by Migrate.
type Applied struct {
	Version int64
	File    string
}

// Migrate applies pending migrations to the database at dsn and returns what
// it applied (empty when the schema is current). Concurrent runs are safe: a
// session advisory lock serialises them, so dsn must not be a
// transaction-mode pooler (use the direct endpoint). Progress lines go to out
// when it is not nil.
func Migrate(ctx context.Context, dsn string, out io.Writer, logger *slog.Logger) ([]Applied, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return MigrateDB(ctx, db, out, logger)
}

// MigrateDB is Migrate on an open database handle, for a caller that has
// already waited for the database to answer (chat-apiserver migrate).
func MigrateDB(ctx context.Context, db *sql.DB, out io.Writer, logger *slog.Logger) ([]Applied, error) {
	// Probe the lock every second for up to 5 minutes: a concurrent run holds
	// it only as long as its migrations take.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID), lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, fmt.Errorf("create migration lock: %w", err)
	}
	opts := []goose.ProviderOption{goose.WithSessionLocker(locker)}
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger))
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, FS, opts...)
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	// goose ignores versions it has no file for: without this check a
	// binary older than the schema would report "up to date" and its
	// server would run queries against tables it does not know.
	current, err := p.GetDBVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the schema version: %w", err)
	}
	if current > Latest() {
		return nil, fmt.Errorf("%w: the database schema is at version %d, newer than this binary's %d "+
			"(a newer release migrated it): run that release, or its migrate", ErrSchemaNewer, current, Latest())
	}
	results, err := p.Up(ctx)
	applied := make([]Applied, 0, len(results))
	for _, r := range results {
		if r.Error != nil {
			continue
		}
		applied = append(applied, Applied{Version: r.Source.Version, File: r.Source.Path})
		if out != nil {
			fmt.Fprintf(out, "applied %s\n", r.Source.Path)
		}
	}
	if err != nil {
		return applied, fmt.Errorf("apply migrations: %w", err)
	}
	return applied, nil
}

// Latest is the version of the newest migration embedded in this binary:
// the schema version this binary's code expects.
func Latest() int64 { return latest() }

var latest = sync.OnceValue(func() int64 {
	names, err := fs.Glob(FS, "*.sql")
	if err != nil {
		panic(err) // a constant pattern on an embedded FS cannot fail
	}
	var v int64
	for _, name := range names {
		n, err := goose.NumericComponent(name)
		if err != nil {
			panic(fmt.Sprintf("migration %s: %v", name, err)) // caught by every test that migrates
		}
		v = max(v, n)
	}
	return v
})

// Querier runs one query; *pgxpool.Pool and *pgx.Conn are Queriers.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// DatabaseVersion is the version of the newest migration applied to the
// database q is connected to, 0 when none has been (goose's version table
// does not exist yet).
func DatabaseVersion(ctx context.Context, q Querier) (int64, error) {
	var v int64
	err := q.QueryRow(ctx, "SELECT COALESCE(max(version_id), 0) FROM goose_db_version WHERE is_applied").Scan(&v)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the schema version: %w", err)
	}
	return v, nil
}
