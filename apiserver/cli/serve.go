package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/chatbackend/chatbackend/apiserver/auth"
	"github.com/chatbackend/chatbackend/apiserver/chat"
	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/dependency"
	"github.com/chatbackend/chatbackend/apiserver/envvar"
	"github.com/chatbackend/chatbackend/apiserver/httpapi"
	"github.com/chatbackend/chatbackend/apiserver/rag"
	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore/pgstore"
	"github.com/chatbackend/chatbackend/apiserver/store"
	"github.com/chatbackend/chatbackend/internal/version"
)

// ShutdownTimeout leaves in-flight requests (streamed answers included) time
// to finish after SIGTERM. The operator's terminationGracePeriodSeconds is
// built on it (controllers/specs, checked by its lifecycle contract test).
const ShutdownTimeout = 25 * time.Second

const (
	// streamCutMargin is what is left of the drain when the chat turns
	// still running are cut: time for each to store its answer and send
	// its last event before the drain ends.
	streamCutMargin = 5 * time.Second
	// stragglersTimeout bounds the wait for turns whose connection the end
	// of the drain closed; they were cut already and only store their
	// answer. It fits in the operator's margin after ShutdownTimeout.
	stragglersTimeout = 2 * time.Second
)

// drainTiming is when the shutdown cuts the streams (cutAfter) and when it
// gives up on the requests still in flight (total), both from SIGTERM.
type drainTiming struct {
	total, cutAfter time.Duration
}

var productionDrain = drainTiming{total: ShutdownTimeout, cutAfter: ShutdownTimeout - streamCutMargin}

func newServeCmd() *cobra.Command {
	var flags serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the API on LISTEN_ADDR and metrics on METRICS_ADDR",
		Long: "Serves the API on LISTEN_ADDR and Prometheus metrics on METRICS_ADDR. The metrics come up first;\n" +
			"a database that is starting or failing over is then waited for, with backoff, up to --connect-timeout,\n" +
			"and reported down (chatbackend_dependency_up{dependency=\"database\"} 0) meanwhile.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Every setting is parsed here, before anything connects: a typo
			// fails at once instead of after the database wait.
			cfg, err := config.LoadFrom(lookupEnv)
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))
			return serve(cmd.Context(), cfg, flags, logger, productionDrain)
		},
	}
	// The operator's startup probe budget is built on the default
	// (controllers/specs lifecycle contract); the flag is for runs by hand.
	cmd.Flags().DurationVar(&flags.connectTimeout, "connect-timeout", store.DefaultConnectTimeout,
		"how long to wait for the database to answer at start-up before giving up")
	cmd.Flags().BoolVar(&flags.pprof, "pprof", false,
		"also serve Go's profiles (net/http/pprof) on METRICS_ADDR under /debug/pprof/, for profiling under load "+
			"(make bench-http -profile); off by default, since a profile shows what the process holds")
	return cmd
}

// serveFlags are serve's command-line settings (everything else comes from
// the environment).
type serveFlags struct {
	// connectTimeout bounds the wait for the database at start-up.
	connectTimeout time.Duration
	// pprof adds /debug/pprof/ to the metrics listener.
	pprof bool
}

// metricsHandler serves the registry's metrics, and the profiles when
// pprof: never on the API's listener, which the world reaches.
func metricsHandler(reg *prometheus.Registry, pprof bool) http.Handler {
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	if !pprof {
		return metrics
	}
	mux := http.NewServeMux()
	mux.Handle("/", metrics)
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	return mux
}

// errDatabaseNotReached is what the database gauge reports from start-up
// until the first ping succeeds.
var errDatabaseNotReached = errors.New("database not reached since start-up")

// listen opens the API and metrics listeners, each error naming its variable.
func listen(cfg config.Config) (api, metrics net.Listener, err error) {
	api, err = net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", envvar.ListenAddr, err)
	}
	metrics, err = net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		_ = api.Close()
		return nil, nil, fmt.Errorf("%s: %w", envvar.MetricsAddr, err)
	}
	return api, metrics, nil
}

// newVerifier checks tokens as configured: the JWKS, iss, aud and the
// algorithm allowlist.
func newVerifier(ctx context.Context, cfg config.Config, reg prometheus.Registerer, deps *dependency.Gauges, logger *slog.Logger) (*auth.Verifier, error) {
	v, err := auth.New(ctx, auth.Options{
		JWKSURL:         cfg.JWKSURL,
		Issuer:          cfg.BetterAuthURL,
		Audience:        cfg.Audience,
		Algorithms:      cfg.Algorithms,
		RefreshInterval: cfg.JWKSRefreshInterval,
		MaxTokenAge:     cfg.JWTMaxTokenAge,
		Registerer:      reg,
		Dependencies:    deps,
		Logger:          logger,
	})
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return v, nil
}

// serve runs until ctx ends (SIGINT/SIGTERM), then shuts down gracefully
// (see drainThenRelease). It waits up to flags.connectTimeout for the database
// at start-up.
func serve(ctx context.Context, cfg config.Config, flags serveFlags, logger *slog.Logger, drain drainTiming) error {
	logger.Info("starting chat-apiserver", "version", version.Version)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	deps, err := dependency.New(reg)
	if err != nil {
		return err
	}
	// Down until reached: a pod that cannot reach its database at start-up
	// must show as 0, which the ChatBackendDatabaseUnreachable alert
	// watches, not as a missing series that no alert sees.
	deps.Observe(dependency.Database, errDatabaseNotReached)

	// Listen before the slow parts, so a taken port fails at once.
	apiLn, metricsLn, err := listen(cfg)
	if err != nil {
		return err
	}
	defer apiLn.Close()
	defer metricsLn.Close()

	// Metrics and probes of the process come up first: Prometheus sees a
	// slow start-up (database waking up) instead of a missing target.
	metricsSrv := httpapi.NewServer(metricsHandler(reg, flags.pprof), cfg.HTTP)
	errc := make(chan error, 2)
	go func() { errc <- serveHTTP(metricsSrv, metricsLn, "metrics") }()
	defer shutdown(metricsSrv, logger, "metrics")

	// One pool for the whole process: the store owns the chat tables, the
	// PostgreSQL vector store its chunk tables.
	pool, err := openPool(ctx, cfg, flags, reg, logger)
	if err != nil {
		return err
	}
	defer pool.Close()
	deps.Observe(dependency.Database, nil) // Open pinged it; /readyz keeps it current
	db := store.New(pool)

	verifier, err := newVerifier(ctx, cfg, reg, deps, logger)
	if err != nil {
		return err
	}
	defer verifier.Close()

	engine, closeEngine, err := newEngine(ctx, cfg.RAG, pool, logger)
	if err != nil {
		return err
	}
	chatSvc := chat.New(db, engine, logger)
	if err := errors.Join(chatSvc.Instrument(reg, deps), engine.Instrument(reg)); err != nil {
		release(closeEngine, logger)
		return err
	}
	// The sweep stops before the pool closes (defers run in reverse).
	defer startSweep(ctx, chatSvc, cfg.HTTP.ChatTimeout)()
	handler, err := httpapi.New(httpapi.Deps{
		Store:              db,
		Chat:               chatSvc,
		Auth:               verifier,
		ChatRateLimit:      httpapi.RateLimit{PerMinute: cfg.ChatRatePerMinute, Burst: cfg.ChatBurst},
		WriteRateLimit:     httpapi.RateLimit{PerMinute: cfg.WriteRatePerMinute, Burst: cfg.WriteBurst},
		MaxStreams:         cfg.MaxStreams,
		CORSAllowedOrigins: cfg.CORSAllowedOrigins,
		TrustedProxies:     cfg.TrustedProxies,
		// The signal context: /readyz turns 503 the moment SIGTERM arrives.
		ShuttingDown: ctx.Done(),
		Timeouts:     cfg.HTTP, UserCheckInterval: httpapi.DefaultUserCheckInterval,
		Logger:       logger,
		Registerer:   reg,
		Dependencies: deps,
	})
	if err != nil {
		release(closeEngine, logger)
		return err
	}
	apiSrv := httpapi.NewServer(handler, cfg.HTTP)
	go func() { errc <- serveHTTP(apiSrv, apiLn, "api") }()
	logger.Info("serving", "api", apiLn.Addr().String(), "metrics", metricsLn.Addr().String())
	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "timeout", ShutdownTimeout.String())
	case runErr = <-errc:
	}
	// Also when the metrics server failed: the API may have requests in
	// flight, and neither the vector store nor the deferred closers (the
	// pool) may go away under them.
	drainThenRelease(apiSrv, chatSvc, drain, closeEngine, logger)
	return runErr
}

// openPool opens serve's database pool, waiting for the database up to
// flags.connectTimeout, and registers its metrics on reg.
func openPool(ctx context.Context, cfg config.Config, flags serveFlags, reg prometheus.Registerer, logger *slog.Logger) (*pgxpool.Pool, error) {
	pool, err := store.Open(ctx, cfg.DatabaseURL, store.Options{
		ConnectTimeout: flags.connectTimeout,
		MaxConns:       int32(cfg.Database.MaxConns), //nolint:gosec // config bounds it to MaxDatabaseMaxConns
		// By default every connection is opened at start-up (in the
		// background) and kept, a fixed-size pool, as HikariCP's default
		// and its advice for a steady load: a burst of requests (a rollout, a scale-out, a quiet spell's end) would
		// otherwise wait for connections being opened (TCP, start-up,
		// authentication, and every statement prepared again on each), in
		// the pool's queue (make bench-stream: the slowest starts of the
		// first level waited a third of a second for them). The
		// connections are reserved anyway: replicas × DATABASE_MAX_CONNS
		// must fit the database's max_connections. DATABASE_MIN_CONNS
		// lowers it, to 0 for a tight connection budget (a serverless
		// database's, say): connections are then opened as requests need
		// them.
		MinConns:       int32(cfg.Database.MinConns), //nolint:gosec // config bounds it to MaxConns
		AcquireTimeout: cfg.Database.AcquireTimeout,
		QueryTimeout:   cfg.Database.QueryTimeout,
		Logger:         logger,
	})
	if err != nil {
		return nil, err
	}
	if err := reg.Register(store.NewPoolCollector(pool)); err != nil {
		pool.Close()
		return nil, fmt.Errorf("register the database pool's metrics: %w", err)
	}
	return pool, nil
}

// startSweep runs the sweep that marks answers a replica that died left
// streaming incomplete, until the returned function stops it (and waits).
func startSweep(ctx context.Context, chatSvc *chat.Service, chatTimeout time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		chatSvc.SweepAbandoned(ctx, chat.AbandonedAfter(chatTimeout), chat.SweepEvery)
	}()
	return func() { cancel(); <-swept }
}

// drainThenRelease shuts the API down in the order that loses nothing:
//
//  1. stop accepting connections (at once) and let the requests in flight
//     finish;
//  2. at d.cutAfter, cut the chat turns still running: each stores its
//     answer as incomplete with what was streamed and tells its client so
//     in a last event, then its request ends;
//  3. at d.total, close the connections of requests still in flight;
//  4. wait (bounded) for the turns to have stored their answers;
//  5. only then run closeFn (the vector store) and return, after which
//     serve closes the database pool.
//
// Before, an answer still streaming when the drain ended found the pool
// closed and was lost.
func drainThenRelease(srv *http.Server, chatSvc *chat.Service, d drainTiming, closeFn func() error, logger *slog.Logger) {
	cut := time.AfterFunc(d.cutAfter, func() {
		logger.Warn("shutdown: cutting the chat answers still streaming", "after", d.cutAfter.String())
		chatSvc.Cut()
	})
	defer cut.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), d.total)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		logger.Warn("shutdown incomplete; closing the remaining connections", "server", "api", "error", err.Error())
		_ = srv.Close()
	}
	chatSvc.Cut() // a turn that survived the closed connection stops now
	waitCtx, cancelWait := context.WithTimeout(context.Background(), stragglersTimeout)
	defer cancelWait()
	if err := chatSvc.Wait(waitCtx); err != nil {
		logger.Error("shutdown: answers not stored", "error", err.Error())
	}
	release(closeFn, logger)
}

func release(closeFn func() error, logger *slog.Logger) {
	if err := closeFn(); err != nil {
		logger.Warn("closing the vector store failed", "error", err.Error())
	}
}

// newEngine builds retrieval and generation from cfg. closeFn releases the
// vector store; serve calls it only after the API server has drained, since
// in-flight answers still search it during shutdown.
func newEngine(ctx context.Context, cfg config.RAG, pool *pgxpool.Pool, logger *slog.Logger) (*rag.Engine, func() error, error) {
	engine, closeFn, err := rag.New(cfg, pool)
	if err != nil {
		return nil, nil, err
	}
	engine.Log = logger
	if oe, ok := engine.Embedder.(*embed.OpenAI); ok {
		oe.Log = logger // it says when the server makes it ask for floats
	}
	backend := "qdrant"
	if ps, ok := engine.Store.(*pgstore.Store); ok {
		backend = "postgres"
		// Load the chunks now rather than on the first question.
		go func() {
			if err := ps.Load(ctx); err != nil {
				logger.Warn("loading the docs chunks failed; retrying on the first question", "error", err.Error())
			}
		}()
	}
	logger.Info("rag chat", "store", backend, "embedding_model", engine.Embedder.Model(),
		"agent_type", engine.Generator.AgentType(), "offline", cfg.Offline(), "answers", cfg.Answers, "query_rewrite", engine.Rewriter != nil,
		"min_relevance", engine.MinCoverage, "min_similarity", engine.MinSimilarity, "dense_weight", denseWeight(cfg))
	if cfg.Offline() || cfg.QdrantURL != "" {
		// Only pgstore's hybrid search measures a similarity and fuses with
		// a weight; say so rather than let a tuned setting silently do
		// nothing.
		for name, set := range map[string]bool{envvar.RAGMinSimilarity: cfg.MinSimilarity != nil, envvar.RAGDenseWeight: cfg.DenseWeight != nil} {
			if set {
				logger.Warn(name+" has no effect: only hybrid search on PostgreSQL (an embedding model, no Qdrant) applies it",
					"offline", cfg.Offline(), "qdrant", cfg.QdrantURL != "")
			}
		}
	}
	return engine, closeFn, nil
}

func serveHTTP(srv *http.Server, ln net.Listener, name string) error {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s server: %w", name, err)
	}
	return nil
}

func shutdown(srv *http.Server, logger *slog.Logger, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		logger.Warn("shutdown incomplete", "server", name, "error", err.Error())
		_ = srv.Close()
	}
}

// denseWeight is the hybrid search's dense share as configured (pgstore's
// default when unset).
func denseWeight(cfg config.RAG) float64 {
	if cfg.DenseWeight != nil {
		return *cfg.DenseWeight
	}
	return pgstore.DefaultDenseWeight
}
