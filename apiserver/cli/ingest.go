package cli

// `chat-apiserver ingest` (owned by the rag engineer).

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/envvar"
	"github.com/chatbackend/chatbackend/apiserver/rag"
	"github.com/chatbackend/chatbackend/apiserver/rag/chunk"
	"github.com/chatbackend/chatbackend/apiserver/rag/ingest"
	"github.com/chatbackend/chatbackend/apiserver/store"
)

func newIngestCmd() *cobra.Command {
	var (
		docs, siteURL, routeBase string
		maxChars, overlap        int
		strict                   bool
	)
	cmd := &cobra.Command{
		Use:   "ingest --docs DIR --site-url URL",
		Short: "Load a Docusaurus docs folder into the retrieval store",
		Long: "Parses the Markdown and MDX pages under --docs, chunks them by heading, embeds the chunks whose\n" +
			"content changed since the last run and deletes those of removed pages. The store is Qdrant when\n" +
			"QDRANT_URL is set, else PostgreSQL (DATABASE_URL, migrated). Embeddings come from OPENAI_API_KEY's\n" +
			"API (OPENAI_BASE_URL, OPENAI_EMBEDDING_MODEL), or the offline lexical embedder without a key:\n" +
			"ingest and serve must use the same settings.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := url.Parse(siteURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("--site-url: want the public http(s) URL of the docs site, got %q", siteURL)
			}
			if !strings.HasPrefix(routeBase, "/") {
				return fmt.Errorf("--route-base: want a path starting with /, got %q", routeBase)
			}
			cfg, err := config.RAGFrom(lookupEnv)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var pool *pgxpool.Pool
			if cfg.QdrantURL == "" {
				dsn, _ := lookupEnv(envvar.DatabaseURL)
				if strings.TrimSpace(dsn) == "" {
					return fmt.Errorf("%s: not set (the chunks live in PostgreSQL when %s is unset)", envvar.DatabaseURL, envvar.QdrantURL)
				}
				logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
				if pool, err = store.Open(ctx, strings.TrimSpace(dsn), store.Options{Logger: logger}); err != nil {
					return err
				}
				defer pool.Close()
			}
			embedder, err := rag.NewEmbedder(cfg)
			if err != nil {
				return err
			}
			vs, closeStore, err := rag.NewStore(cfg, pool)
			if err != nil {
				return err
			}
			defer func() { _ = closeStore() }()
			sum, err := ingest.Run(ctx, ingest.Options{
				DocsDir:  docs,
				Chunk:    chunk.Options{SiteURL: siteURL, RouteBase: routeBase, MaxChars: maxChars, Overlap: overlap},
				Embedder: embedder,
				Store:    vs,
				Out:      cmd.OutOrStdout(),
			})
			if err == nil && strict && (len(sum.Errors) > 0 || sum.Skipped > 0) {
				return fmt.Errorf("--strict: %d page(s) and %d section(s) were left out (listed above)", len(sum.Errors), sum.Skipped)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&docs, "docs", "", "the Docusaurus docs folder (required)")
	f.StringVar(&siteURL, "site-url", "", "the public URL of the site, with its baseUrl (required)")
	f.StringVar(&routeBase, "route-base", "/docs", "the docs plugin's routeBasePath")
	f.IntVar(&maxChars, "max-chars", 1500, "the longest chunk, in characters")
	f.IntVar(&overlap, "overlap", 200, "characters shared by consecutive chunks of a long section")
	f.BoolVar(&strict, "strict", false, "exit non-zero when a page or section was left out (the rest is indexed anyway)")
	_ = cmd.MarkFlagRequired("docs")
	_ = cmd.MarkFlagRequired("site-url")
	return cmd
}
