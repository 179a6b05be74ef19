package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
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
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore/pgstore"
	"github.com/chatbackend/chatbackend/apiserver/store"
	"github.com/chatbackend/chatbackend/internal/version"
)

// ShutdownTimeout leaves in-flight requests (streamed answers included) time
// to finish after SIGTERM. The operator's terminationGracePeriodSeconds is
// built on it (controllers/specs, checked by its lifecycle contract test).
const ShutdownTimeout = 25 * time.Second

func newServeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Serve the API on LISTEN_ADDR and metrics on METRICS_ADDR",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Every setting is parsed here, before anything connects: a typo
			// fails at once instead of after the database wait.
			cfg, err := config.LoadFrom(lookupEnv)
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))
			return serve(cmd.Context(), cfg, logger)
		},
	}
}

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

// serve runs until ctx ends (SIGINT/SIGTERM), then shuts down gracefully.
func serve(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	logger.Info("starting chat-apiserver", "version", version.Version)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	deps, err := dependency.New(reg)
	if err != nil {
		return err
	}

	// Listen before the slow parts, so a taken port fails at once.
	apiLn, metricsLn, err := listen(cfg)
	if err != nil {
		return err
	}
	defer apiLn.Close()
	defer metricsLn.Close()

	// Metrics and probes of the process come up first: Prometheus sees a
	// slow start-up (database waking up) instead of a missing target.
	metricsSrv := &http.Server{
		Handler:           promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 2)
	go func() { errc <- serveHTTP(metricsSrv, metricsLn, "metrics") }()
	defer shutdown(metricsSrv, logger, "metrics")

	// One pool for the whole process: the store owns the chat tables, the
	// PostgreSQL vector store its chunk tables.
	pool, err := store.Open(ctx, cfg.DatabaseURL, store.Options{Logger: logger})
	if err != nil {
		return err
	}
	defer pool.Close()
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
	if err := chatSvc.Instrument(reg, deps); err != nil {
		release(closeEngine, logger)
		return err
	}
	handler, err := httpapi.New(httpapi.Deps{
		Store:              db,
		Chat:               chatSvc,
		Auth:               verifier,
		ChatRateLimit:      httpapi.RateLimit{PerMinute: cfg.ChatRatePerMinute, Burst: cfg.ChatBurst},
		CORSAllowedOrigins: cfg.CORSAllowedOrigins,
		TrustedProxies:     cfg.TrustedProxies,
		// The signal context: /readyz turns 503 the moment SIGTERM arrives.
		ShuttingDown: ctx.Done(),
		Logger:       logger,
		Registerer:   reg,
		Dependencies: deps,
	})
	if err != nil {
		release(closeEngine, logger)
		return err
	}
	apiSrv := &http.Server{
		Handler:           handler,
		MaxHeaderBytes:    httpapi.MaxHeaderBytes,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		// No WriteTimeout: answers stream for as long as the model writes.
	}
	go func() { errc <- serveHTTP(apiSrv, apiLn, "api") }()
	logger.Info("serving", "api", apiLn.Addr().String(), "metrics", metricsLn.Addr().String())

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "timeout", ShutdownTimeout.String())
	case runErr = <-errc:
	}
	// Also when the metrics server failed: the API may have requests in
	// flight, and neither the vector store nor the deferred closers may go
	// away under them.
	drainThenRelease(apiSrv, closeEngine, logger)
	return runErr
}

// drainThenRelease shuts srv down gracefully and only then runs closeFn:
// requests still in flight during the drain (an answer being retrieved)
// use what closeFn releases, such as the Qdrant connection.
func drainThenRelease(srv *http.Server, closeFn func() error, logger *slog.Logger) {
	shutdown(srv, logger, "api")
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
		"agent_type", engine.Generator.AgentType(), "offline", cfg.Offline())
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
