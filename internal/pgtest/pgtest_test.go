package pgtest_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/chatbackend/chatbackend/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Each call yields a distinct, empty, writable database.
func TestNewGivesIsolatedDatabases(t *testing.T) {
	ctx := context.Background()
	a, b := pgtest.New(t), pgtest.New(t)
	if a == b {
		t.Fatalf("two calls returned the same database %s", a)
	}
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	var n int
	if err := cb.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("table created in database a is visible in database b")
	}
}

// With DATABASE_URL set, databases are created on that server instead of a
// throwaway cluster, and dropped again when the test ends.
func TestNewHonoursDatabaseURL(t *testing.T) {
	ctx := context.Background()
	server, err := url.Parse(pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	server.Path = "/postgres"
	t.Setenv("DATABASE_URL", server.String())

	var created string
	t.Run("inner", func(t *testing.T) {
		u, err := url.Parse(pgtest.New(t))
		if err != nil {
			t.Fatal(err)
		}
		if u.Host != server.Host {
			t.Fatalf("database on %s, want the DATABASE_URL server %s", u.Host, server.Host)
		}
		created = strings.TrimPrefix(u.Path, "/")
		if created == "postgres" || created == "" {
			t.Fatalf("got the DATABASE_URL database itself, want a new one")
		}
	})
	conn, err := pgx.Connect(ctx, server.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", created).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("database %s still exists after its test ended", created)
	}
}
