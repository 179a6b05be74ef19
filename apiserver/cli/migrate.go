package cli

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/store/migrations"
)

func newMigrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations",
		Long: "Applies the pending schema migrations embedded in this binary and prints each one applied.\n" +
			"Safe to run several times at once: an advisory lock serialises the runs, so it connects to\n" +
			"DATABASE_DIRECT_URL when set (a transaction pooler would drop the lock), else to DATABASE_URL.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, err := config.MigrateURL(lookupEnv)
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			out := cmd.OutOrStdout()
			applied, err := migrations.Migrate(cmd.Context(), url, out, logger)
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
}
