package cli

// Wiring of the RAG chat into `serve` (owned by the rag engineer).

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/httpapi"
	"github.com/chatbackend/chatbackend/apiserver/rag"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore/pgstore"
	"github.com/chatbackend/chatbackend/apiserver/store"
)

// ragRoutes builds the chat routes from the environment (see
// rag.ConfigFromEnv; CHAT_RATE_LIMIT_PER_MINUTE and CHAT_RATE_LIMIT_BURST
// limit each user's chat requests). The store is released when ctx ends.
func ragRoutes(ctx context.Context, _ config.Config, db *store.Store, _ prometheus.Registerer, logger *slog.Logger) ([]func(httpapi.Groups), error) {
	rc, err := rag.ConfigFromEnv(lookupEnv)
	if err != nil {
		return nil, err
	}
	perMinute, err := floatEnv("CHAT_RATE_LIMIT_PER_MINUTE", httpapi.DefaultChatRatePerMinute)
	if err != nil {
		return nil, err
	}
	burst, err := floatEnv("CHAT_RATE_LIMIT_BURST", httpapi.DefaultChatBurst)
	if err != nil {
		return nil, err
	}
	engine, closeStore, err := rag.New(rc, poolOf(db))
	if err != nil {
		return nil, err
	}
	go func() {
		<-ctx.Done()
		_ = closeStore()
	}()
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
		"agent_type", engine.Generator.AgentType(), "offline", rc.Offline())
	return []func(httpapi.Groups){httpapi.ChatRoutes(httpapi.ChatOptions{
		Store: db, Engine: engine, Logger: logger, RatePerMinute: perMinute, Burst: int(burst),
	})}, nil
}

func floatEnv(name string, def float64) (float64, error) {
	v, _ := lookupEnv(name)
	if v = strings.TrimSpace(v); v == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 || f > 1e6 {
		return 0, fmt.Errorf("%s: want a positive number, got %q", name, v)
	}
	return f, nil
}

func poolOf(db *store.Store) *pgxpool.Pool {
	if db == nil {
		return nil
	}
	return db.Pool()
}
