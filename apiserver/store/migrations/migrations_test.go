package migrations_test

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/store/migrations"
	"github.com/chatbackend/chatbackend/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestMigrateTwiceAppliesNothingTheSecondTime(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	url := pgtest.New(t)

	var out bytes.Buffer
	first, err := migrations.Migrate(ctx, url, &out, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(first).NotTo(BeEmpty())
	g.Expect(first[0].File).To(Equal("00001_init.sql"))
	g.Expect(out.String()).To(ContainSubstring("applied 00001_init.sql"))

	out.Reset()
	second, err := migrations.Migrate(ctx, url, &out, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(second).To(BeEmpty())
	g.Expect(out.String()).To(BeEmpty())

	conn, err := pgx.Connect(ctx, url)
	g.Expect(err).NotTo(HaveOccurred())
	defer conn.Close(ctx)
	var tables []string
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('users','conversations','messages') ORDER BY 1`)
	g.Expect(err).NotTo(HaveOccurred())
	tables, err = pgx.CollectRows(rows, pgx.RowTo[string])
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(tables).To(Equal([]string{"conversations", "messages", "users"}))
}

func TestConcurrentMigrateAppliesOnce(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	url := pgtest.New(t)

	const runs = 3
	var wg sync.WaitGroup
	results := make([][]migrations.Applied, runs)
	errs := make([]error, runs)
	for i := range runs {
		wg.Go(func() { results[i], errs[i] = migrations.Migrate(ctx, url, nil, nil) })
	}
	wg.Wait()
	total := 0
	for i := range runs {
		g.Expect(errs[i]).NotTo(HaveOccurred(), "run %d", i)
		total += len(results[i])
	}
	all, err := migrations.FS.ReadDir(".")
	g.Expect(err).NotTo(HaveOccurred())
	sqlFiles := 0
	for _, e := range all {
		if !e.IsDir() {
			sqlFiles++
		}
	}
	// Every migration was applied by exactly one of the runs.
	g.Expect(total).To(Equal(sqlFiles))

	conn, err := pgx.Connect(ctx, url)
	g.Expect(err).NotTo(HaveOccurred())
	defer conn.Close(ctx)
	var n int
	g.Expect(conn.QueryRow(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&n)).To(Succeed())
	g.Expect(n).To(Equal(sqlFiles))
}
