// Package envvar is the one declaration of the environment variables that
// chat-apiserver reads. The operator (controllers/specs) writes pods with
// these names and the server (apiserver/config) reads them, both from here:
// a name misspelled on one side cannot compile, and the contract test in
// apiserver/config checks that every name the operator emits is one the
// server reads and validates.
//
// It imports nothing, so both sides can depend on it.
package envvar

// Database.
const (
	// DatabaseURL is the PostgreSQL URL the server serves from (possibly
	// through a pooler).
	DatabaseURL = "DATABASE_URL"
	// DatabaseDirectURL, when set, is used by `migrate` instead of
	// DatabaseURL: migrations take a session advisory lock that a
	// transaction pooler cannot hold.
	DatabaseDirectURL = "DATABASE_DIRECT_URL"
	// DatabaseMaxConns sizes `serve`'s connection pool.
	DatabaseMaxConns = "DATABASE_MAX_CONNS"
	// DatabaseMinConns is how many of those connections the pool opens at
	// start-up and keeps open.
	DatabaseMinConns = "DATABASE_MIN_CONNS"
	// DatabaseAcquireTimeout bounds the wait for a pooled connection, and
	// DatabaseQueryTimeout each statement: past either the request answers
	// 503 instead of waiting on a database that does not answer.
	DatabaseAcquireTimeout = "DATABASE_ACQUIRE_TIMEOUT"
	DatabaseQueryTimeout   = "DATABASE_QUERY_TIMEOUT"
)

// Database TLS: libpq's own variables, which pgx reads as the defaults of
// the connection string's sslmode, sslrootcert, sslcert and sslkey (a
// parameter in DATABASE_URL wins), for `serve`, `migrate` and `ingest`
// alike. apiserver/config validates them first, so a missing or unreadable
// file fails start-up naming its variable.
const (
	DatabaseSSLMode     = "PGSSLMODE"
	DatabaseSSLRootCert = "PGSSLROOTCERT"
	DatabaseSSLCert     = "PGSSLCERT"
	DatabaseSSLKey      = "PGSSLKEY"
)

// TrustedCADir lists directories (colon-separated) of PEM certificates that
// Go's crypto/x509 trusts for outbound HTTPS and gRPC in addition to the
// system's bundle file (see apiserver/config.trustedCADirs).
const TrustedCADir = "SSL_CERT_DIR"

// Authentication (BetterAuth's JWT plugin).
const (
	BetterAuthURL       = "BETTER_AUTH_URL"
	JWKSURL             = "JWKS_URL"
	Audience            = "BETTER_AUTH_AUDIENCE"
	JWTAlgorithms       = "JWT_ALGORITHMS"
	JWKSRefreshInterval = "JWKS_REFRESH_INTERVAL"
	// JWTMaxTokenAge refuses tokens whose lifetime (exp - iat) is longer:
	// a token minted to live for years is a forgery or a misconfiguration.
	JWTMaxTokenAge = "JWT_MAX_TOKEN_AGE"
)

// HTTP.
const (
	CORSAllowedOrigins = "CORS_ALLOWED_ORIGINS"
	ListenAddr         = "LISTEN_ADDR"
	MetricsAddr        = "METRICS_ADDR"
	ChatRatePerMinute  = "CHAT_RATE_LIMIT_PER_MINUTE"
	ChatRateBurst      = "CHAT_RATE_LIMIT_BURST"
	// HTTPReadHeaderTimeout bounds the request line and headers,
	// HTTPReadBodyTimeout the request body, HTTPIdleTimeout a keep-alive
	// connection between requests (both listeners).
	HTTPReadHeaderTimeout = "HTTP_READ_HEADER_TIMEOUT"
	HTTPReadBodyTimeout   = "HTTP_READ_BODY_TIMEOUT"
	HTTPIdleTimeout       = "HTTP_IDLE_TIMEOUT"
	// HTTPRequestTimeout is the deadline of a request to the API, and
	// HTTPChatTimeout that of a chat request (it lasts as long as the
	// model writes).
	HTTPRequestTimeout = "HTTP_REQUEST_TIMEOUT"
	HTTPChatTimeout    = "HTTP_CHAT_TIMEOUT"
	// HTTPStreamWriteTimeout bounds each write of a streamed answer to a
	// client that stopped reading it.
	HTTPStreamWriteTimeout = "HTTP_STREAM_WRITE_TIMEOUT"
	// WriteRatePerMinute and WriteRateBurst: each user's budget of the
	// other write routes (conversations, feedback).
	WriteRatePerMinute = "WRITE_RATE_LIMIT_PER_MINUTE"
	WriteRateBurst     = "WRITE_RATE_LIMIT_BURST"
	// MaxStreams caps the answers one replica streams at once.
	MaxStreams = "CHAT_MAX_STREAMS"
	// TrustedProxies are the peers (IPs or CIDRs, comma-separated) whose
	// X-Forwarded-For / X-Real-IP headers name the client; by default none.
	TrustedProxies = "TRUSTED_PROXIES"
)

// Retrieval and generation.
const (
	QdrantURL            = "QDRANT_URL"
	QdrantAPIKey         = "QDRANT_API_KEY"
	QdrantCollection     = "QDRANT_COLLECTION"
	QdrantHybrid         = "QDRANT_HYBRID"
	OpenAIAPIKey         = "OPENAI_API_KEY"
	OpenAIBaseURL        = "OPENAI_BASE_URL"
	OpenAIChatModel      = "OPENAI_CHAT_MODEL"
	OpenAIEmbeddingModel = "OPENAI_EMBEDDING_MODEL"
	RAGTopK              = "RAG_TOP_K"
	RAGHistoryTokens     = "RAG_HISTORY_TOKENS"
	// OpenAIFirstTokenTimeout bounds the wait for the model's first token,
	// OpenAIIdleTimeout the silence between two tokens.
	OpenAIFirstTokenTimeout = "OPENAI_FIRST_TOKEN_TIMEOUT"
	OpenAIIdleTimeout       = "OPENAI_IDLE_TIMEOUT"
	// OpenAITemperature and OpenAIMaxTokens tune the model's answers
	// (unset: the model server's defaults).
	OpenAITemperature = "OPENAI_TEMPERATURE"
	OpenAIMaxTokens   = "OPENAI_MAX_TOKENS"
	// RAGMinRelevance is the relevance threshold: the share of a question's
	// term weight a passage must hold to be cited.
	RAGMinRelevance = "RAG_MIN_RELEVANCE"
	// RAGMinSimilarity is the second relevance threshold, with embeddings
	// on PostgreSQL: a passage whose cosine similarity to the question
	// reaches it is cited whatever its term weight. Unset: off.
	RAGMinSimilarity = "RAG_MIN_SIMILARITY"
	// RAGDenseWeight is the dense ranking's share (0-1) of the hybrid
	// score on PostgreSQL with embeddings; BM25F has the rest.
	RAGDenseWeight = "RAG_DENSE_WEIGHT"
	// RAGQueryRewrite (true|false): with a model, a follow-up is rewritten
	// into a standalone search query before retrieval.
	RAGQueryRewrite = "RAG_QUERY_REWRITE"
	// RAGAnswers (model|extractive) says who writes the answers: the chat
	// model, or extractive quotes of the docs while OPENAI_API_KEY still
	// brings embeddings (a local embeddings server and no LLM).
	RAGAnswers = "RAG_ANSWERS"
)

// Ingestion (`chat-apiserver ingest` in the operator's ingest Job).
const (
	// IngestSources is a JSON array of source.Spec
	// (apiserver/rag/ingest/source): the docs a run indexes.
	IngestSources = "INGEST_SOURCES"
)

// All lists every variable the server reads, for the contract tests.
var All = []string{
	DatabaseURL, DatabaseDirectURL, DatabaseMaxConns, DatabaseMinConns, DatabaseAcquireTimeout, DatabaseQueryTimeout,
	DatabaseSSLMode, DatabaseSSLRootCert, DatabaseSSLCert, DatabaseSSLKey, TrustedCADir,
	BetterAuthURL, JWKSURL, Audience, JWTAlgorithms, JWKSRefreshInterval, JWTMaxTokenAge,
	CORSAllowedOrigins, ListenAddr, MetricsAddr, ChatRatePerMinute, ChatRateBurst, TrustedProxies,
	HTTPReadHeaderTimeout, HTTPReadBodyTimeout, HTTPIdleTimeout, HTTPRequestTimeout, HTTPChatTimeout,
	HTTPStreamWriteTimeout, WriteRatePerMinute, WriteRateBurst, MaxStreams,
	QdrantURL, QdrantAPIKey, QdrantCollection, QdrantHybrid,
	OpenAIAPIKey, OpenAIBaseURL, OpenAIChatModel, OpenAIEmbeddingModel,
	RAGTopK, RAGHistoryTokens, OpenAIFirstTokenTimeout, OpenAIIdleTimeout,
	OpenAITemperature, OpenAIMaxTokens, RAGMinRelevance, RAGMinSimilarity, RAGDenseWeight, RAGQueryRewrite, RAGAnswers,
}
