package rag

// Defaults and bounds of Config's tuning knobs. The config package parses
// the environment (RAG_TOP_K, RAG_HISTORY_TOKENS) against them; rag only
// defines what the values mean.
const (
	DefaultTopK = 5
	MaxTopK     = 20

	DefaultHistoryTokens = 2000
	MaxHistoryTokens     = 100000
)
