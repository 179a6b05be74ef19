package cli

// `chat-apiserver ingest`: index a Docusaurus folder (--docs), a git
// repository (--git), a published site (--site), or the sources the
// operator lists in INGEST_SOURCES.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/envvar"
	"github.com/chatbackend/chatbackend/apiserver/rag"
	"github.com/chatbackend/chatbackend/apiserver/rag/chunk"
	"github.com/chatbackend/chatbackend/apiserver/rag/ingest"
	"github.com/chatbackend/chatbackend/apiserver/rag/ingest/site"
	"github.com/chatbackend/chatbackend/apiserver/rag/ingest/source"
	"github.com/chatbackend/chatbackend/apiserver/store"
	"github.com/chatbackend/chatbackend/internal/version"
)

// defaultTerminationLog is where Kubernetes reads a container's
// termination message.
const defaultTerminationLog = "/dev/termination-log"

// userAgent names the crawler to the sites it visits.
var userAgent = "chatbackend-ingest/" + version.Version + " (+https://github.com/chatbackend/chatbackend)"

type ingestFlags struct {
	docs, git, ref, path, site, name string
	authDir                          string
	siteURL, routeBase               string
	maxPages, maxChars, overlap      int
	strict                           bool
	lockWait                         time.Duration
	termination                      string
}

func newIngestCmd() *cobra.Command {
	var f ingestFlags
	cmd := &cobra.Command{
		Use:   "ingest (--docs DIR | --git URL | --site URL) [flags]",
		Short: "Load docs into the retrieval store: a Docusaurus folder, a git repository or a published site",
		Long: "Reads the pages of one source, chunks them by heading, embeds the chunks whose content changed\n" +
			"since the last run and deletes those of removed pages:\n" +
			"  --docs DIR                 a Docusaurus docs folder (with --site-url)\n" +
			"  --git URL [--ref, --path]  a Docusaurus docs folder in a git repository, cloned shallowly (with --site-url)\n" +
			"  --site URL                 a published site (any generator), crawled from its base URL or sitemap.xml\n" +
			"With none of them, it indexes the sources of " + envvar.IngestSources + " (a JSON array, as the operator\n" +
			"sets it) and removes the chunks of sources no longer listed. A run touches only its sources' chunks.\n" +
			"The store is Qdrant when QDRANT_URL is set, else PostgreSQL (DATABASE_URL, migrated). Embeddings come\n" +
			"from OPENAI_API_KEY's API (OPENAI_BASE_URL, OPENAI_EMBEDDING_MODEL), or the offline lexical embedder\n" +
			"without a key: ingest and serve must use the same settings. With a database, runs take an advisory\n" +
			"lock (one at a time) and remember crawled pages for conditional requests.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			var sum ingest.Summary
			defer func() { writeTermination(cmd.ErrOrStderr(), f.termination, sum, err) }()
			p, err := f.plan(cmd)
			if err != nil {
				return err
			}
			sum, err = runIngest(cmd.Context(), p, f, cmd.OutOrStdout())
			if err == nil && f.strict && (len(sum.Errors) > 0 || sum.Skipped > 0) {
				err = fmt.Errorf("--strict: %d page(s) and %d section(s) were left out (listed above)", len(sum.Errors), sum.Skipped)
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.docs, "docs", "", "a Docusaurus docs folder")
	fl.StringVar(&f.git, "git", "", "a git repository (https://, ssh:// or git@host:path) holding the docs")
	fl.StringVar(&f.ref, "ref", "", "with --git: the branch, tag or commit hash (default: the remote's HEAD)")
	fl.StringVar(&f.path, "path", "", "with --git: the docs folder inside the repository (default: its root)")
	fl.StringVar(&f.authDir, "auth-dir", "", "with --git: a folder of credential files (username and password, bearerToken, or identity and known_hosts)")
	fl.StringVar(&f.site, "site", "", "a published docs site's base URL, or its sitemap.xml URL, to crawl")
	fl.IntVar(&f.maxPages, "max-pages", 0, fmt.Sprintf("with --site: the most pages fetched (default %d)", site.DefaultMaxPages))
	fl.StringVar(&f.name, "name", "", "the source's name, which owns its chunks (default: none for --docs, \"git\" or \"site\")")
	fl.StringVar(&f.siteURL, "site-url", "", "with --docs or --git: the public URL of the site, with its baseUrl (required)")
	fl.StringVar(&f.routeBase, "route-base", "/docs", "with --docs or --git: the docs plugin's routeBasePath")
	fl.IntVar(&f.maxChars, "max-chars", 1500, "the longest chunk, in characters")
	fl.IntVar(&f.overlap, "overlap", 200, "characters shared by consecutive chunks of a long section")
	fl.BoolVar(&f.strict, "strict", false, "exit non-zero when a page or section was left out (the rest is indexed anyway)")
	fl.DurationVar(&f.lockWait, "lock-wait", 2*time.Minute, "how long to wait for another ingest run to finish")
	defTermination := ""
	if _, err := os.Stat(defaultTerminationLog); err == nil {
		defTermination = defaultTerminationLog
	}
	fl.StringVar(&f.termination, "termination-message-path", defTermination,
		"a file to write the run's result to, as one JSON line (empty: none)")
	return cmd
}

// ingestPlan is what a run indexes.
type ingestPlan struct {
	sources       []source.Spec
	docs          *ingest.Source // --docs
	authoritative bool
}

// modes are the flags that pick a source; none is INGEST_SOURCES.
var modes = []string{"--docs", "--git", "--site"}

// modeFlags are the flags that belong to some modes only, by mode ("" is
// INGEST_SOURCES).
var modeFlags = map[string][]string{
	"":       nil,
	"--docs": {"name", "site-url", "route-base"},
	"--git":  {"name", "site-url", "route-base", "ref", "path", "auth-dir"},
	"--site": {"name", "max-pages"},
}

// plan checks the flags: at most one mode, and only the flags it takes.
func (f *ingestFlags) plan(cmd *cobra.Command) (ingestPlan, error) {
	changed := cmd.Flags().Changed
	mode := ""
	for _, m := range modes {
		if !changed(m[2:]) {
			continue
		}
		if mode != "" {
			return ingestPlan{}, fmt.Errorf("%s and %s: give only one of --docs, --git and --site", mode, m)
		}
		mode = m
	}
	// Every mode's flags, in the modes' order: the first one given that
	// this mode does not take is reported.
	for _, m := range modes {
		for _, fl := range modeFlags[m] {
			if changed(fl) && !slices.Contains(modeFlags[mode], fl) {
				return ingestPlan{}, fmt.Errorf("--%s: not with %s", fl, cmp.Or(mode, envvar.IngestSources+" (no --docs, --git or --site)"))
			}
		}
	}
	chunkOpts := chunk.Options{SiteURL: f.siteURL, RouteBase: f.routeBase, MaxChars: f.maxChars, Overlap: f.overlap}
	switch mode {
	case "":
		return sourcesFromEnv()
	case "--docs":
		if f.docs == "" {
			return ingestPlan{}, errors.New("--docs: want a folder")
		}
		docs := ingest.Docs(f.name, f.docs, chunkOpts)
		return ingestPlan{docs: &docs}, f.checkSiteURL()
	case "--git":
		spec := source.Spec{Name: cmp.Or(f.name, "git"), Git: &source.Git{URL: f.git, Ref: f.ref, Path: f.path, SiteURL: f.siteURL, RouteBase: f.routeBase, AuthDir: f.authDir}}
		return ingestPlan{sources: []source.Spec{spec}}, errors.Join(f.checkSiteURL(), spec.Validate())
	default:
		if f.maxPages < 0 {
			return ingestPlan{}, fmt.Errorf("--max-pages: want a positive number, got %d", f.maxPages)
		}
		spec := source.Spec{Name: cmp.Or(f.name, "site"), Site: &source.Site{URL: f.site, MaxPages: f.maxPages}}
		return ingestPlan{sources: []source.Spec{spec}}, errors.Join(checkHTTPURL("--site", f.site), spec.Validate())
	}
}

func (f *ingestFlags) checkSiteURL() error {
	if f.siteURL == "" {
		return errors.New("--site-url: required with --docs and --git (the public URL the pages are cited at)")
	}
	if err := checkHTTPURL("--site-url", f.siteURL); err != nil {
		return err
	}
	if !strings.HasPrefix(f.routeBase, "/") {
		return fmt.Errorf("--route-base: want a path starting with /, got %q", f.routeBase)
	}
	return nil
}

func checkHTTPURL(flag, v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: want the public http(s) URL of the docs site, got %q", flag, v)
	}
	return nil
}

// sourcesFromEnv is the authoritative list of the operator.
func sourcesFromEnv() (ingestPlan, error) {
	v, _ := lookupEnv(envvar.IngestSources)
	if strings.TrimSpace(v) == "" {
		return ingestPlan{}, fmt.Errorf("nothing to ingest: give --docs, --git or --site, or set %s", envvar.IngestSources)
	}
	specs, err := source.Parse(v)
	if err != nil {
		return ingestPlan{}, fmt.Errorf("%s: %w", envvar.IngestSources, err)
	}
	return ingestPlan{sources: specs, authoritative: true}, nil
}

// runIngest opens the stores, takes the lock and runs the plan.
func runIngest(ctx context.Context, p ingestPlan, f ingestFlags, out io.Writer) (ingest.Summary, error) {
	cfg, err := config.RAGFrom(lookupEnv)
	if err != nil {
		return ingest.Summary{}, err
	}
	pool, err := openIngestDatabase(ctx, cfg.QdrantURL != "")
	if err != nil {
		return ingest.Summary{}, err
	}
	if pool != nil {
		defer pool.Close()
		unlock, err := ingest.Lock(ctx, pool, f.lockWait)
		if err != nil {
			return ingest.Summary{}, err
		}
		defer unlock()
	}
	embedder, err := rag.NewEmbedder(cfg)
	if err != nil {
		return ingest.Summary{}, err
	}
	vs, closeStore, err := rag.NewStore(cfg, pool)
	if err != nil {
		return ingest.Summary{}, err
	}
	defer func() { _ = closeStore() }()
	o := ingest.Options{Authoritative: p.authoritative, Embedder: embedder, Store: vs, Out: out}
	if p.docs != nil {
		o.Sources = append(o.Sources, *p.docs)
	}
	so := ingest.SpecOptions{Chunk: chunk.Options{MaxChars: f.maxChars, Overlap: f.overlap}, UserAgent: userAgent, Pool: pool, Out: out}
	names := make([]string, 0, len(p.sources))
	for _, s := range p.sources {
		o.Sources = append(o.Sources, ingest.FromSpec(s, so))
		names = append(names, s.Name)
	}
	sum, err := ingest.Run(ctx, o)
	if err == nil && p.authoritative && pool != nil {
		err = ingest.ForgetSources(ctx, pool, names)
	}
	return sum, err
}

// openIngestDatabase opens the database: required when the chunks live in
// it, optional with Qdrant (then it serves the lock and the crawled pages;
// without it the CronJob's Forbid policy is the only guard against two
// runs). The direct endpoint is preferred, as for migrate: a session
// advisory lock does not survive a transaction pooler.
func openIngestDatabase(ctx context.Context, qdrant bool) (*pgxpool.Pool, error) {
	direct, _ := lookupEnv(envvar.DatabaseDirectURL)
	dsn, _ := lookupEnv(envvar.DatabaseURL)
	if strings.TrimSpace(direct+dsn) == "" {
		if qdrant {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: not set (the chunks live in PostgreSQL when %s is unset)", envvar.DatabaseURL, envvar.QdrantURL)
	}
	u, err := config.MigrateURL(lookupEnv)
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return store.Open(ctx, u, store.Options{Logger: logger})
}

// writeTermination writes the run's result where Kubernetes reads the
// container's termination message, for the operator's status.
func writeTermination(stderr io.Writer, path string, sum ingest.Summary, runErr error) {
	if path == "" {
		return
	}
	res := source.Result{Pages: sum.Pages, Chunks: sum.Chunks, Added: sum.Added, Updated: sum.Updated,
		Removed: sum.Removed, Errors: len(sum.Errors), Message: sum.String()}
	if runErr != nil {
		res.Message = oneLine(runErr.Error())
	}
	if len(res.Message) > source.MaxMessageBytes {
		res.Message = strings.ToValidUTF8(res.Message[:source.MaxMessageBytes], "") + "…"
	}
	line, err := json.Marshal(res)
	if err == nil {
		err = os.WriteFile(path, append(line, '\n'), 0o600)
	}
	if err != nil {
		fmt.Fprintf(stderr, "chat-apiserver: termination message: %v\n", err)
	}
}
