package cli

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/spf13/cobra"

	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/store"
	"github.com/chatbackend/chatbackend/apiserver/store/migrations"
)

func newMigrateCmd() *cobra.Command {
	var connectTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations",
		Long: "Applies the pending schema migrations embedded in this binary and prints each one applied.\n" +
			"Safe to run several times at once: an advisory lock serialises the runs, so it connects to\n" +
			"DATABASE_DIRECT_URL when set (a transaction pooler would drop the lock), else to DATABASE_URL.\n" +
			"A database that is starting or failing over is waited for, with backoff, up to --connect-timeout.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, err := config.MigrateURL(lookupEnv)
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			// Waits like serve does: a migrations Job started during a
			// database failover succeeds once the database is back,
			// instead of failing and waiting for the operator's backoff.
			pool, err := store.Open(cmd.Context(), url, store.Options{ConnectTimeout: connectTimeout, Logger: logger})
			if err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
			defer pool.Close()
			db := stdlib.OpenDBFromPool(pool)
			defer func() { _ = db.Close() }() // leaves the pool open: closed above
			out := cmd.OutOrStdout()
			applied, err := migrations.MigrateDB(cmd.Context(), db, out, logger)
			if err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
			if len(applied) == 0 {
				fmt.Fprintln(out, "no pending migrations: the schema is up to date")
			} else {
				fmt.Fprintf(out, "applied %d migration(s)\n", len(applied))
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&connectTimeout, "connect-timeout", store.DefaultConnectTimeout,
		"how long to wait for the database to answer before giving up")
	return cmd
}
