// Package rag wires retrieval and generation together: it builds the
// embedder, vector store and generator the configuration asks for, and
// answers a question with cited sources.
package rag

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
	"github.com/chatbackend/chatbackend/apiserver/rag/generate"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore/pgstore"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore/qdrantstore"
)

// Config selects the parts; config.RAGFrom resolves it from the
// environment, defaults included (rag keeps no fallback copies).
type Config = config.RAG

// NewEmbedder returns the configured embedder, on a client of its own.
func NewEmbedder(c Config) (embed.Embedder, error) { return newEmbedder(c, newModelClient(c)) }

func newEmbedder(c Config, client *http.Client) (embed.Embedder, error) {
	if c.Offline() {
		return embed.NewLexical(), nil
	}
	return embed.NewOpenAI(embed.OpenAIOptions{APIKey: c.OpenAIAPIKey, BaseURL: c.OpenAIBaseURL, Model: c.OpenAIEmbeddingModel,
		HTTPClient: client})
}

// NewGenerator returns the configured generator, on a client of its own.
func NewGenerator(c Config) (generate.Generator, error) { return newGenerator(c, newModelClient(c)) }

func newGenerator(c Config, client *http.Client) (generate.Generator, error) {
	if c.ExtractiveAnswers() {
		return generate.Extractive{}, nil
	}
	return generate.NewOpenAI(generate.OpenAIOptions{APIKey: c.OpenAIAPIKey, BaseURL: c.OpenAIBaseURL,
		Model: c.OpenAIChatModel, HistoryTokens: c.HistoryTokens, Temperature: c.Temperature, MaxTokens: int64(c.MaxTokens),
		FirstTokenTimeout: c.FirstTokenTimeout, IdleTimeout: c.IdleTimeout, HTTPClient: client})
}

// NewStore returns Qdrant when configured, else the PostgreSQL store on pool.
// closeStore releases it.
func NewStore(c Config, pool *pgxpool.Pool) (store vectorstore.Store, closeStore func() error, err error) {
	if c.QdrantURL != "" {
		s, err := qdrantstore.New(qdrantstore.Options{URL: c.QdrantURL, APIKey: c.QdrantAPIKey,
			Collection: c.QdrantCollection, Hybrid: c.QdrantHybrid})
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
	}
	if pool == nil {
		return nil, nil, errors.New("rag: without QDRANT_URL the chunks live in PostgreSQL, but no database was given")
	}
	// Offline, questions rank by BM25F alone (Engine.Retrieve): the store
	// need not load the lexical embeddings.
	return pgstore.New(pool, pgstore.Options{Lexical: c.Offline(), DenseWeight: c.DenseWeight}), func() error { return nil }, nil
}

// Source is one citation of an answer.
type Source struct {
	Title   string  `json:"title"`
	URL     string  `json:"url"`
	Snippet string  `json:"snippet"`
	Score   float32 `json:"score"`
}

// Engine answers questions.
type Engine struct {
	Embedder  embed.Embedder
	Store     vectorstore.Store
	Generator generate.Generator
	// TopK is how many sources an answer draws on (positive).
	TopK int
	// MinCoverage is the relevance threshold: a hit whose coverage (the
	// share of the question's IDF weight it contains) is below it is not
	// relevant, and a question with no relevant hit is not answered from
	// the docs. 0 keeps every hit.
	MinCoverage float32
	// MinSimilarity, when positive, is a second way to be relevant: a hit
	// whose Similarity (the embeddings' cosine, which only hybrid search
	// measures) reaches it is relevant whatever its coverage. Why: coverage
	// counts words, so a passage that answers in other words (a synonym, a
	// paraphrase) falls below it; the encoder sees the meaning. It is set
	// per embedding model, high enough that the labelled set's
	// unanswerable questions stay below it (see README, Answer quality).
	MinSimilarity float32
	// Rewriter, when set, turns a follow-up into a standalone search query
	// before retrieval (see query); RewriteTimeout bounds it (positive).
	Rewriter       Rewriter
	RewriteTimeout time.Duration
	// Log receives the rewrites that failed (nil: discarded); Instrument
	// counts them all.
	Log      *slog.Logger
	rewrites *prometheus.CounterVec
}

// DefaultMinCoverage is the relevance threshold (RAG_MIN_RELEVANCE), calibrated with make eval
// on the labelled set in hack/eval: below it the unanswerable questions'
// best hits sit, above it the answerable ones'.
const DefaultMinCoverage = 0.35

// New builds an engine from the configuration. With a model and
// c.QueryRewrite (and a history budget: RAG_HISTORY_TOKENS=0 sends the
// model no history at all), follow-ups are rewritten by the chat model.
func New(c Config, pool *pgxpool.Pool) (*Engine, func() error, error) {
	// One client for the embedder, the generator and the rewrites: one
	// pool of connections to the model server (see newModelClient).
	client := newModelClient(c)
	e, err := newEmbedder(c, client)
	if err != nil {
		return nil, nil, err
	}
	g, err := newGenerator(c, client)
	if err != nil {
		return nil, nil, err
	}
	var rw Rewriter
	if m, ok := g.(*generate.OpenAI); ok && c.QueryRewrite && c.HistoryTokens > 0 {
		rw = m
	}
	s, closeStore, err := NewStore(c, pool)
	if err != nil {
		return nil, nil, err
	}
	minCoverage := float32(DefaultMinCoverage)
	if c.MinRelevance != nil {
		minCoverage = float32(*c.MinRelevance)
	}
	var minSimilarity float32
	if c.MinSimilarity != nil {
		minSimilarity = float32(*c.MinSimilarity)
	}
	return &Engine{Embedder: e, Store: s, Generator: g, TopK: c.TopK, MinCoverage: minCoverage, MinSimilarity: minSimilarity,
		Rewriter: rw, RewriteTimeout: DefaultRewriteTimeout}, closeStore, nil
}

// Retrieved is a retrieval result: sources to show, passages for the model.
type Retrieved struct {
	Sources  []Source
	Passages []generate.Passage
	// Weights is the IDF of the question's words, when the store knows it.
	Weights map[string]float64
	// NoDocuments: the store holds no chunk at all (nothing ingested yet),
	// as opposed to none being relevant.
	NoDocuments bool
}

// Retrieve finds the passages that best answer question; history is the
// conversation before it, oldest first, which a follow-up ("and on
// macOS?") leans on (see query).
func (e *Engine) Retrieve(ctx context.Context, question string, history []generate.Turn) (Retrieved, error) {
	text, previous := e.query(ctx, question, history)
	vecs, err := e.Embedder.Embed(ctx, []string{text})
	if err != nil {
		return Retrieved{}, fmt.Errorf("embed question: %w", err)
	}
	_, lexical := e.Embedder.(*embed.Lexical)
	hits, err := e.Store.Search(ctx, vectorstore.Query{Vector: vecs[0], Text: text, Previous: previous, Limit: e.TopK, Lexical: lexical})
	if err != nil {
		return Retrieved{}, fmt.Errorf("search docs: %w", err)
	}
	var r Retrieved
	if len(hits) == 0 {
		// Only a question that found nothing pays for the check.
		if r.NoDocuments, err = e.Store.Empty(ctx); err != nil {
			return Retrieved{}, fmt.Errorf("check whether any docs are indexed: %w", err)
		}
	}
	for _, h := range hits {
		// A hit below the threshold shares only common words with the
		// question (the product's name, "configure"); citing it would only
		// mislead, unless the encoder finds it close in meaning. A hit with
		// no positive score (Qdrant's dense lexical vectors) shares nothing
		// at all, unless the encoder measured it close (pgstore's hybrid
		// score is 0 for a passage sharing no word at RAG_DENSE_WEIGHT 0).
		if (h.Score <= 0 && h.Similarity <= 0) || !e.relevant(h) {
			continue
		}
		title := h.Title
		if h.Heading != "" && h.Heading != h.Title {
			title += " › " + h.Heading
		}
		r.Sources = append(r.Sources, Source{Title: title, URL: h.URL, Snippet: Snippet(h.Text, 240), Score: h.Score})
		r.Passages = append(r.Passages, generate.Passage{Title: title, URL: h.URL, Text: h.Text, Score: h.Score,
			Similar: h.Coverage < e.MinCoverage})
	}
	if w, ok := e.Store.(vectorstore.Weigher); ok && len(r.Passages) > 0 {
		if r.Weights, err = w.Weights(ctx, question); err != nil {
			return Retrieved{}, fmt.Errorf("weigh question words: %w", err)
		}
	}
	return r, nil
}

// relevant reports whether h passes the relevance thresholds: enough of
// the question's term weight, or, with MinSimilarity, enough similarity.
func (e *Engine) relevant(h vectorstore.Hit) bool {
	return h.Coverage >= e.MinCoverage || (e.MinSimilarity > 0 && h.Similarity >= e.MinSimilarity)
}

// Snippet shortens text to about n characters on a word boundary.
func Snippet(text string, n int) string {
	text = strings.Join(strings.Fields(text), " ")
	if utf8.RuneCountInString(text) <= n {
		return text
	}
	r := []rune(text)[:n]
	s := string(r)
	if i := strings.LastIndexByte(s, ' '); i > n/2 {
		s = s[:i]
	}
	return s + "…"
}
