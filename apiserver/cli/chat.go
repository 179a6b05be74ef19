package cli

// Wiring of the RAG chat into `serve` (owned by the rag engineer).

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/httpapi"
	"github.com/chatbackend/chatbackend/apiserver/rag"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore/pgstore"
	"github.com/chatbackend/chatbackend/apiserver/store"
)

// ragRoutes builds the chat routes from cfg.RAG and the chat rate limits.
// The caller runs closeStore once the HTTP server has drained: in-flight
// answers still search the vector store during shutdown.
func ragRoutes(ctx context.Context, cfg config.Config, db *store.Store, _ prometheus.Registerer, logger *slog.Logger) (routes []func(httpapi.Groups), closeStore func() error, err error) {
	engine, closeStore, err := rag.New(cfg.RAG, poolOf(db))
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
		"agent_type", engine.Generator.AgentType(), "offline", cfg.RAG.Offline())
	return []func(httpapi.Groups){httpapi.ChatRoutes(httpapi.ChatOptions{
		Store: db, Engine: engine, Logger: logger, RatePerMinute: cfg.ChatRatePerMinute, Burst: cfg.ChatBurst,
	})}, closeStore, nil
}

func poolOf(db *store.Store) *pgxpool.Pool {
	if db == nil {
		return nil
	}
	return db.Pool()
}
