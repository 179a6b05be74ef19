package rag

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// ConfigFromEnv reads the retrieval and generation settings:
//
//	QDRANT_URL, QDRANT_API_KEY, QDRANT_COLLECTION, QDRANT_HYBRID (true|false),
//	OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_CHAT_MODEL, OPENAI_EMBEDDING_MODEL,
//	RAG_TOP_K (sources per answer, 1-20), RAG_HISTORY_TOKENS (history budget).
//
// Errors are one line naming the variable. Both `serve` and `ingest` use
// it, so they always agree on the store and the embedding model.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	c := Config{
		QdrantURL:            get("QDRANT_URL"),
		QdrantAPIKey:         get("QDRANT_API_KEY"),
		QdrantCollection:     get("QDRANT_COLLECTION"),
		OpenAIAPIKey:         get("OPENAI_API_KEY"),
		OpenAIBaseURL:        get("OPENAI_BASE_URL"),
		OpenAIChatModel:      get("OPENAI_CHAT_MODEL"),
		OpenAIEmbeddingModel: get("OPENAI_EMBEDDING_MODEL"),
	}
	for name, v := range map[string]string{"QDRANT_URL": c.QdrantURL, "OPENAI_BASE_URL": c.OpenAIBaseURL} {
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Config{}, fmt.Errorf("%s: want an http(s) URL, got %q", name, v)
		}
	}
	var err error
	if v := get("QDRANT_HYBRID"); v != "" {
		if c.QdrantHybrid, err = strconv.ParseBool(v); err != nil {
			return Config{}, fmt.Errorf("QDRANT_HYBRID: want true or false, got %q", v)
		}
	}
	if c.TopK, err = intSetting(get, "RAG_TOP_K", 5, 1, 20); err != nil {
		return Config{}, err
	}
	if c.HistoryTokens, err = intSetting(get, "RAG_HISTORY_TOKENS", 2000, 0, 100000); err != nil {
		return Config{}, err
	}
	return c, nil
}

func intSetting(get func(string) string, name string, def, lo, hi int) (int, error) {
	v := get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s: want a whole number from %d to %d, got %q", name, lo, hi, v)
	}
	return n, nil
}
