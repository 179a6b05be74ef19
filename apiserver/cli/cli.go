// Package cli is chat-apiserver's command line (cobra): serve, migrate,
// version.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/chatbackend/chatbackend/internal/version"
)

// Main runs the command line and returns the process exit code. Errors are
// printed as one line on stderr.
func Main(args []string, stdout, stderr io.Writer) int {
	root := NewRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	// SIGINT/SIGTERM cancel the context: serve shuts down gracefully,
	// migrate stops between statements.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "chat-apiserver: %s\n", oneLine(err.Error()))
		return 1
	}
	return 0
}

// NewRoot builds the command tree.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "chat-apiserver",
		Short: "Authenticated RAG chat API for documentation sites",
		Long: "chat-apiserver verifies BetterAuth JWTs, keeps users, conversations and messages in PostgreSQL,\n" +
			"and answers questions from the documentation. Configuration comes from the environment.",
		SilenceUsage:  true, // a runtime error is not a usage error
		SilenceErrors: true, // Main prints the one-line error
		// --version prints cobra's default "chat-apiserver version X": a
		// custom SetVersionTemplate would run text/template, whose
		// reflective method calls make the linker keep every exported
		// method of every type in the binary (tens of MB, paged in at
		// start-up). The version subcommand prints the bare version.
		Version: version.Version,
	}
	root.AddCommand(newServeCmd(), newMigrateCmd(), newVersionCmd())
	root.AddCommand(newIngestCmd()) // rag engineer
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), version.Version)
			return err
		},
	}
}

// oneLine keeps an error on one line: multi-line messages from libraries
// would otherwise break log parsing and the "one clear line" promise.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// lookupEnv is the environment the commands read; tests replace nothing,
// they set real environment variables with t.Setenv.
var lookupEnv = os.LookupEnv
