// Package config reads chat-apiserver's settings from the environment.
//
// Every error is a single line that starts with the variable's name, so a
// misconfigured pod says exactly what to fix.
//
// Why config owns the defaults: config is the one place where an
// environment variable (named in envvar) becomes a value, so the default
// and the bounds of every setting are declared here, next to their parsing,
// as named constants. The components (httpapi, rag, generate, auth) receive
// resolved values and keep no fallback copies of them. That keeps config a
// leaf: it imports envvar and the PostgreSQL URL parser only, never the HTTP
// or RAG stacks, so the operator's contract test can load it cheaply, and
// the components import it (rag.Config is config.RAG) rather than the
// reverse.
package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chatbackend/chatbackend/apiserver/envvar"
)

// Defaults and bounds of the settings.
const (
	DefaultListenAddr  = ":8080"
	DefaultMetricsAddr = ":9090"

	// DefaultChatRatePerMinute and DefaultChatBurst are each user's chat
	// budget: 20 requests a minute, bursts of 5.
	DefaultChatRatePerMinute = 20
	DefaultChatBurst         = 5
	MaxRateBurst             = 1_000_000
	// DefaultWriteRatePerMinute and DefaultWriteBurst are each user's
	// budget of the other writes (creating, renaming and deleting
	// conversations, feedback): 60 a minute, bursts of 20. Generous for a
	// person clicking, tight for a script filling the database.
	DefaultWriteRatePerMinute = 60
	DefaultWriteBurst         = 20
	// DefaultMaxStreams answers are streamed at once by one replica, at
	// most MaxMaxStreams.
	DefaultMaxStreams = 100
	MaxMaxStreams     = 100_000

	// DefaultJWTMaxTokenAge is the longest token lifetime accepted by
	// default: generous next to BetterAuth's 15 minutes, yet it refuses a
	// token minted to live for years.
	DefaultJWTMaxTokenAge = 24 * time.Hour

	// DefaultTopK sources per answer, at most MaxTopK.
	DefaultTopK = 5
	MaxTopK     = 20
	// DefaultHistoryTokens of conversation history sent to the model, at
	// most MaxHistoryTokens (0: none).
	DefaultHistoryTokens = 2000
	MaxHistoryTokens     = 100000
)

// Defaults of the bounded waits: how long the server waits on a client, the
// database or the model before it gives up on them. A wait on a client
// closes its connection; a wait on the database answers 503 with
// Retry-After; a wait on the model stores the answer as failed.
const (
	// DefaultDatabaseMaxConns sizes the connection pool of one replica;
	// PostgreSQL's own default max_connections is 100.
	DefaultDatabaseMaxConns = 10
	MaxDatabaseMaxConns     = 1000
	// DefaultDatabaseAcquireTimeout is the wait for a pooled connection
	// (all busy, or a new one being opened); DefaultDatabaseQueryTimeout
	// bounds each statement. Together they stay under
	// DefaultHTTPRequestTimeout, so a database that hangs answers 503 from
	// the store before the request's own deadline.
	DefaultDatabaseAcquireTimeout = 3 * time.Second
	DefaultDatabaseQueryTimeout   = 10 * time.Second

	// DefaultHTTPReadHeaderTimeout bounds a request's line and headers;
	// DefaultHTTPReadBodyTimeout its body (at most 1 MiB), counted from the
	// end of the headers; DefaultHTTPIdleTimeout a keep-alive connection
	// waiting for its next request.
	DefaultHTTPReadHeaderTimeout = 10 * time.Second
	DefaultHTTPReadBodyTimeout   = 30 * time.Second
	DefaultHTTPIdleTimeout       = 120 * time.Second
	// DefaultHTTPRequestTimeout is the deadline of every API request but
	// the chat routes, which get DefaultHTTPChatTimeout: they last as long
	// as the model writes, bounded more tightly by the model timeouts.
	DefaultHTTPRequestTimeout = 30 * time.Second
	DefaultHTTPChatTimeout    = 5 * time.Minute
	// DefaultHTTPStreamWriteTimeout bounds each write of a streamed answer:
	// a client that reads nothing for that long (once the socket's buffers
	// are full) loses the stream, and its answer is stored as incomplete.
	// Twice the heartbeat interval, so a reading client never hits it.
	DefaultHTTPStreamWriteTimeout = 30 * time.Second

	// DefaultOpenAIFirstTokenTimeout is the wait for the model's first
	// token (a long prompt takes a while to read); DefaultOpenAIIdleTimeout
	// the longest silence between two tokens once it writes.
	DefaultOpenAIFirstTokenTimeout = 60 * time.Second
	DefaultOpenAIIdleTimeout       = 30 * time.Second
)

// DefaultJWTAlgorithms are the algorithms accepted when JWT_ALGORITHMS is
// unset: what BetterAuth's jwt plugin can be configured to sign with.
var DefaultJWTAlgorithms = []string{"EdDSA", "ES256", "ES512", "RS256", "PS256"}

// SupportedJWTAlgorithms are the asymmetric algorithms an allowlist may
// name. Symmetric ones (HS*) and "none" are refused: a JWKS-verified token
// must be signed with a private key only the issuer holds.
var SupportedJWTAlgorithms = []string{
	"EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
}

// RAG selects retrieval and generation. Empty QdrantURL keeps the chunks in
// PostgreSQL; empty OpenAIAPIKey uses the offline embedder and extractive
// answers; Answers AnswersExtractive keeps the API's embeddings but answers
// extractively.
type RAG struct {
	QdrantURL        string
	QdrantAPIKey     string
	QdrantCollection string
	// QdrantHybrid adds sparse lexical vectors and RRF fusion.
	QdrantHybrid bool

	OpenAIAPIKey         string
	OpenAIBaseURL        string
	OpenAIChatModel      string
	OpenAIEmbeddingModel string

	// TopK is how many sources an answer draws on.
	TopK int
	// HistoryTokens bounds the conversation history sent to the model.
	HistoryTokens int
	// FirstTokenTimeout and IdleTimeout bound the model's silence before
	// its first token and between two tokens (0: unbounded).
	FirstTokenTimeout time.Duration
	IdleTimeout       time.Duration
	// Temperature (nil: the model server's default) and MaxTokens (0: its
	// default) tune the model's answers.
	Temperature *float64
	MaxTokens   int
	// MinRelevance is the relevance threshold (rag.DefaultMinCoverage when
	// RAG_MIN_RELEVANCE is unset).
	MinRelevance *float64
	// MinSimilarity is the relevance threshold on the embeddings' cosine
	// similarity (RAG_MIN_SIMILARITY; nil: off). No default: each
	// embedding model has its own scale of similarity.
	MinSimilarity *float64
	// DenseWeight is the dense ranking's share of the hybrid score
	// (RAG_DENSE_WEIGHT; nil: pgstore.DefaultDenseWeight).
	DenseWeight *float64
	// QueryRewrite: with a model, a follow-up is rewritten into a
	// standalone search query before retrieval (RAG_QUERY_REWRITE, on
	// unless set to false).
	QueryRewrite bool
	// Answers is who writes the answers (RAG_ANSWERS): AnswersModel, the
	// chat model (the default with an API key), or AnswersExtractive,
	// quotes of the docs (the only choice without one).
	Answers string
	// ModelConns is how many idle connections to the model server are
	// kept for the next requests: LoadFrom sets serve's to CHAT_MAX_STREAMS,
	// the answers it streams at once (0: Go's default, 2; enough for
	// ingest's one batch at a time).
	ModelConns int
}

// Offline reports whether no model API is configured.
func (c RAG) Offline() bool { return c.OpenAIAPIKey == "" }

// The values of RAG_ANSWERS.
const (
	AnswersModel      = "model"
	AnswersExtractive = "extractive"
)

// ExtractiveAnswers reports whether answers are quoted from the docs rather
// than written by the chat model: offline, or asked for by RAG_ANSWERS.
// Why a setting of its own: an OpenAI-compatible server that only embeds
// (a local sentence encoder) makes retrieval hybrid, and with no LLM to
// write the answers the extractive answer is the one left.
func (c RAG) ExtractiveAnswers() bool { return c.Offline() || c.Answers == AnswersExtractive }

// Database sizes and bounds `serve`'s connection pool (DATABASE_MAX_CONNS,
// DATABASE_MIN_CONNS, DATABASE_ACQUIRE_TIMEOUT, DATABASE_QUERY_TIMEOUT).
type Database struct {
	MaxConns int
	// MinConns of the MaxConns are opened at start-up and kept open; by
	// default all of them (a fixed-size pool), 0 opens each on demand.
	MinConns       int
	AcquireTimeout time.Duration
	QueryTimeout   time.Duration
}

// HTTP bounds what the server waits for on its listeners (HTTP_*_TIMEOUT).
// Zero durations are unbounded.
type HTTP struct {
	ReadHeaderTimeout time.Duration
	ReadBodyTimeout   time.Duration
	IdleTimeout       time.Duration
	// RequestTimeout is the deadline of an API request; ChatTimeout that of
	// the chat routes.
	RequestTimeout time.Duration
	ChatTimeout    time.Duration
	// StreamWriteTimeout bounds each write of a streamed answer.
	StreamWriteTimeout time.Duration
}

// Config is what `serve` needs.
type Config struct {
	DatabaseURL string
	// BetterAuthURL is the expected `iss` of tokens, exactly as BetterAuth
	// writes it (its baseURL).
	BetterAuthURL      string
	JWKSURL            string
	Audience           string
	Algorithms         []string
	CORSAllowedOrigins []string
	ListenAddr         string
	MetricsAddr        string
	// JWKSRefreshInterval is how often the JWKS is refetched in the
	// background (0: the verifier's default). The JWKS alert assumes it is
	// well under its 10-minute limit.
	JWKSRefreshInterval time.Duration
	// JWTMaxTokenAge is the longest lifetime (exp - iat) a token may claim
	// (JWT_MAX_TOKEN_AGE; DefaultJWTMaxTokenAge when unset).
	JWTMaxTokenAge time.Duration
	// TrustedProxies are the IPs and CIDRs (TRUSTED_PROXIES) whose
	// X-Forwarded-For and X-Real-IP are believed for the client address in
	// the access log; empty: none, the TCP peer is the client.
	TrustedProxies []string

	// RAG selects retrieval and generation (QDRANT_*, OPENAI_*, RAG_*);
	// see RAGFrom.
	RAG RAG
	// ChatRatePerMinute and ChatBurst limit each user's chat requests
	// (CHAT_RATE_LIMIT_PER_MINUTE, CHAT_RATE_LIMIT_BURST).
	ChatRatePerMinute float64
	ChatBurst         int
	// WriteRatePerMinute and WriteBurst limit each user's other writes
	// (WRITE_RATE_LIMIT_PER_MINUTE, WRITE_RATE_LIMIT_BURST).
	WriteRatePerMinute float64
	WriteBurst         int
	// MaxStreams caps the answers streamed at once (CHAT_MAX_STREAMS).
	MaxStreams int

	// Database sizes the pool and bounds its waits.
	Database Database
	// HTTP bounds the waits on clients and the requests' deadlines.
	HTTP HTTP
}

// Lookup reads one variable; os.LookupEnv in production, a map in tests.
type Lookup func(name string) (string, bool)

// FromMap adapts a map to Lookup.
func FromMap(m map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// Load reads the process environment.
func Load() (Config, error) { return LoadFrom(os.LookupEnv) }

// LoadFrom reads and validates every setting of `serve`.
func LoadFrom(env Lookup) (Config, error) {
	get := func(k string) string { v, _ := env(k); return strings.TrimSpace(v) }
	var c Config
	var err error

	// Before DATABASE_URL, whose parsing reads the files they name.
	if err = checkDatabaseTLS(get); err != nil {
		return Config{}, err
	}
	if err = checkTrustedCADirs(get(envvar.TrustedCADir)); err != nil {
		return Config{}, err
	}
	if c.DatabaseURL, err = databaseURL(envvar.DatabaseURL, get(envvar.DatabaseURL), true); err != nil {
		return Config{}, err
	}
	if c.BetterAuthURL, err = httpURL(envvar.BetterAuthURL, get(envvar.BetterAuthURL), true); err != nil {
		return Config{}, err
	}
	if c.JWKSURL, err = httpURL(envvar.JWKSURL, get(envvar.JWKSURL), false); err != nil {
		return Config{}, err
	}
	if c.JWKSURL == "" {
		c.JWKSURL = strings.TrimRight(c.BetterAuthURL, "/") + "/api/auth/jwks"
	}
	c.Audience = get(envvar.Audience)
	if c.Audience == "" {
		c.Audience = c.BetterAuthURL
	}
	if c.Algorithms, err = algorithms(get(envvar.JWTAlgorithms)); err != nil {
		return Config{}, err
	}
	if c.CORSAllowedOrigins, err = origins(get(envvar.CORSAllowedOrigins)); err != nil {
		return Config{}, err
	}
	if c.ListenAddr, err = listenAddr(envvar.ListenAddr, get(envvar.ListenAddr), DefaultListenAddr); err != nil {
		return Config{}, err
	}
	if c.MetricsAddr, err = listenAddr(envvar.MetricsAddr, get(envvar.MetricsAddr), DefaultMetricsAddr); err != nil {
		return Config{}, err
	}
	if c.ListenAddr == c.MetricsAddr {
		return Config{}, fmt.Errorf("%s: must differ from %s (both %q)", envvar.MetricsAddr, envvar.ListenAddr, c.ListenAddr)
	}
	if c.JWKSRefreshInterval, err = positiveDuration(envvar.JWKSRefreshInterval, get(envvar.JWKSRefreshInterval)); err != nil {
		return Config{}, err
	}
	if c.JWTMaxTokenAge, err = positiveDuration(envvar.JWTMaxTokenAge, get(envvar.JWTMaxTokenAge)); err != nil {
		return Config{}, err
	}
	if c.JWTMaxTokenAge == 0 {
		c.JWTMaxTokenAge = DefaultJWTMaxTokenAge
	}
	if c.TrustedProxies, err = trustedProxies(get(envvar.TrustedProxies)); err != nil {
		return Config{}, err
	}
	if c.RAG, err = RAGFrom(env); err != nil {
		return Config{}, err
	}
	if err = limitsFrom(get, &c); err != nil {
		return Config{}, err
	}
	c.RAG.ModelConns = c.MaxStreams
	if c.Database, err = databaseFrom(get); err != nil {
		return Config{}, err
	}
	if c.HTTP, err = httpFrom(get); err != nil {
		return Config{}, err
	}
	return c, nil
}

// limitsFrom reads the per-user budgets and the stream cap into c.
func limitsFrom(get func(string) string, c *Config) error {
	var err error
	if c.ChatRatePerMinute, err = positiveFloat(envvar.ChatRatePerMinute, get(envvar.ChatRatePerMinute), DefaultChatRatePerMinute); err != nil {
		return err
	}
	if c.ChatBurst, err = intSetting(envvar.ChatRateBurst, get(envvar.ChatRateBurst), DefaultChatBurst, 1, MaxRateBurst); err != nil {
		return err
	}
	if c.WriteRatePerMinute, err = positiveFloat(envvar.WriteRatePerMinute, get(envvar.WriteRatePerMinute), DefaultWriteRatePerMinute); err != nil {
		return err
	}
	if c.WriteBurst, err = intSetting(envvar.WriteRateBurst, get(envvar.WriteRateBurst), DefaultWriteBurst, 1, MaxRateBurst); err != nil {
		return err
	}
	c.MaxStreams, err = intSetting(envvar.MaxStreams, get(envvar.MaxStreams), DefaultMaxStreams, 1, MaxMaxStreams)
	return err
}

func databaseFrom(get func(string) string) (Database, error) {
	var d Database
	var err error
	if d.MaxConns, err = intSetting(envvar.DatabaseMaxConns, get(envvar.DatabaseMaxConns), DefaultDatabaseMaxConns, 1, MaxDatabaseMaxConns); err != nil {
		return Database{}, err
	}
	if d.MinConns, err = intSetting(envvar.DatabaseMinConns, get(envvar.DatabaseMinConns), d.MaxConns, 0, d.MaxConns); err != nil {
		return Database{}, fmt.Errorf("%w (%s is %d)", err, envvar.DatabaseMaxConns, d.MaxConns)
	}
	if d.AcquireTimeout, err = durationSetting(envvar.DatabaseAcquireTimeout, get(envvar.DatabaseAcquireTimeout), DefaultDatabaseAcquireTimeout); err != nil {
		return Database{}, err
	}
	if d.QueryTimeout, err = durationSetting(envvar.DatabaseQueryTimeout, get(envvar.DatabaseQueryTimeout), DefaultDatabaseQueryTimeout); err != nil {
		return Database{}, err
	}
	return d, nil
}

func httpFrom(get func(string) string) (HTTP, error) {
	var h HTTP
	for _, s := range []struct {
		name string
		def  time.Duration
		to   *time.Duration
	}{
		{envvar.HTTPReadHeaderTimeout, DefaultHTTPReadHeaderTimeout, &h.ReadHeaderTimeout},
		{envvar.HTTPReadBodyTimeout, DefaultHTTPReadBodyTimeout, &h.ReadBodyTimeout},
		{envvar.HTTPIdleTimeout, DefaultHTTPIdleTimeout, &h.IdleTimeout},
		{envvar.HTTPRequestTimeout, DefaultHTTPRequestTimeout, &h.RequestTimeout},
		{envvar.HTTPChatTimeout, DefaultHTTPChatTimeout, &h.ChatTimeout},
		{envvar.HTTPStreamWriteTimeout, DefaultHTTPStreamWriteTimeout, &h.StreamWriteTimeout},
	} {
		d, err := durationSetting(s.name, get(s.name), s.def)
		if err != nil {
			return HTTP{}, err
		}
		*s.to = d
	}
	return h, nil
}

// RAGFrom reads the retrieval and generation settings:
//
//	QDRANT_URL, QDRANT_API_KEY, QDRANT_COLLECTION, QDRANT_HYBRID (true|false),
//	OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_CHAT_MODEL, OPENAI_EMBEDDING_MODEL,
//	RAG_TOP_K (sources per answer), RAG_HISTORY_TOKENS (history budget),
//	OPENAI_FIRST_TOKEN_TIMEOUT, OPENAI_IDLE_TIMEOUT (the model's silences),
//	RAG_QUERY_REWRITE (true|false: follow-ups rewritten by the model),
//	RAG_ANSWERS (model|extractive: who writes the answers),
//	RAG_MIN_RELEVANCE, RAG_MIN_SIMILARITY (the relevance thresholds),
//	RAG_DENSE_WEIGHT (the dense share of the hybrid score).
//
// LoadFrom (serve) and `ingest` both use it, so they always agree on the
// store and the embedding model.
func RAGFrom(env Lookup) (RAG, error) {
	get := func(k string) string { v, _ := env(k); return strings.TrimSpace(v) }
	c := RAG{
		QdrantAPIKey:         get(envvar.QdrantAPIKey),
		QdrantCollection:     get(envvar.QdrantCollection),
		OpenAIAPIKey:         get(envvar.OpenAIAPIKey),
		OpenAIChatModel:      get(envvar.OpenAIChatModel),
		OpenAIEmbeddingModel: get(envvar.OpenAIEmbeddingModel),
	}
	var err error
	if c.QdrantURL, err = httpURL(envvar.QdrantURL, get(envvar.QdrantURL), false); err != nil {
		return RAG{}, err
	}
	if c.OpenAIBaseURL, err = httpURL(envvar.OpenAIBaseURL, get(envvar.OpenAIBaseURL), false); err != nil {
		return RAG{}, err
	}
	if c.QdrantHybrid, err = boolSetting(envvar.QdrantHybrid, get(envvar.QdrantHybrid), false); err != nil {
		return RAG{}, err
	}
	if c.QueryRewrite, err = boolSetting(envvar.RAGQueryRewrite, get(envvar.RAGQueryRewrite), true); err != nil {
		return RAG{}, err
	}
	if c.TopK, err = intSetting(envvar.RAGTopK, get(envvar.RAGTopK), DefaultTopK, 1, MaxTopK); err != nil {
		return RAG{}, err
	}
	if c.HistoryTokens, err = intSetting(envvar.RAGHistoryTokens, get(envvar.RAGHistoryTokens), DefaultHistoryTokens, 0, MaxHistoryTokens); err != nil {
		return RAG{}, err
	}
	if c.FirstTokenTimeout, err = durationSetting(envvar.OpenAIFirstTokenTimeout, get(envvar.OpenAIFirstTokenTimeout), DefaultOpenAIFirstTokenTimeout); err != nil {
		return RAG{}, err
	}
	if c.IdleTimeout, err = durationSetting(envvar.OpenAIIdleTimeout, get(envvar.OpenAIIdleTimeout), DefaultOpenAIIdleTimeout); err != nil {
		return RAG{}, err
	}
	if c.Temperature, err = floatSetting(envvar.OpenAITemperature, get(envvar.OpenAITemperature), 0, 2); err != nil {
		return RAG{}, err
	}
	if c.MaxTokens, err = intSetting(envvar.OpenAIMaxTokens, get(envvar.OpenAIMaxTokens), 0, 0, 1_000_000); err != nil {
		return RAG{}, err
	}
	if c.MinRelevance, err = floatSetting(envvar.RAGMinRelevance, get(envvar.RAGMinRelevance), 0, 1); err != nil {
		return RAG{}, err
	}
	if c.MinSimilarity, err = floatSetting(envvar.RAGMinSimilarity, get(envvar.RAGMinSimilarity), 0, 1); err != nil {
		return RAG{}, err
	}
	if c.MinSimilarity != nil && *c.MinSimilarity == 0 {
		// Unlike RAG_MIN_RELEVANCE=0 (cite every hit), 0 would read as
		// either "off" or "everything": unset is off.
		return RAG{}, fmt.Errorf("%s: want a number above 0 and at most 1 (unset it to turn the threshold off), got %q",
			envvar.RAGMinSimilarity, get(envvar.RAGMinSimilarity))
	}
	if c.DenseWeight, err = floatSetting(envvar.RAGDenseWeight, get(envvar.RAGDenseWeight), 0, 1); err != nil {
		return RAG{}, err
	}
	if c.Answers, err = answers(get(envvar.RAGAnswers), c.Offline()); err != nil {
		return RAG{}, err
	}
	return c, nil
}

// answers resolves RAG_ANSWERS: unset is the chat model when there is an
// API key (offline, extractive); model without an API key is refused
// rather than silently answered offline.
func answers(v string, offline bool) (string, error) {
	switch {
	case v == "" && offline, v == AnswersExtractive:
		return AnswersExtractive, nil
	case v == AnswersModel && offline:
		return "", fmt.Errorf("%s: %s needs %s (the chat model is reached through the OpenAI-compatible API)", envvar.RAGAnswers, v, envvar.OpenAIAPIKey)
	case v == "", v == AnswersModel:
		return AnswersModel, nil
	default:
		return "", fmt.Errorf("%s: want %s or %s, got %q", envvar.RAGAnswers, AnswersModel, AnswersExtractive, v)
	}
}

// boolSetting parses an optional true or false; unset is def.
func boolSetting(name, v string, def bool) (bool, error) {
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: want true or false, got %q", name, v)
	}
	return b, nil
}

// floatSetting parses an optional number in [lo, hi]; unset is nil.
func floatSetting(name, v string, lo, hi float64) (*float64, error) {
	if v == "" {
		return nil, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	// NaN passes both comparisons; it would make every score NaN.
	if err != nil || math.IsNaN(f) || f < lo || f > hi {
		return nil, fmt.Errorf("%s: want a number from %g to %g, got %q", name, lo, hi, v)
	}
	return &f, nil
}

// MigrateURL is the database `migrate` uses: DATABASE_DIRECT_URL when set
// (a session advisory lock does not survive a transaction pooler), else
// DATABASE_URL.
func MigrateURL(env Lookup) (string, error) {
	if err := checkDatabaseTLS(func(k string) string { v, _ := env(k); return strings.TrimSpace(v) }); err != nil {
		return "", err
	}
	if v, _ := env(envvar.DatabaseDirectURL); strings.TrimSpace(v) != "" {
		return databaseURL(envvar.DatabaseDirectURL, strings.TrimSpace(v), true)
	}
	v, _ := env(envvar.DatabaseURL)
	if strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("%s: not set (nor %s)", envvar.DatabaseURL, envvar.DatabaseDirectURL)
	}
	return databaseURL(envvar.DatabaseURL, strings.TrimSpace(v), true)
}

// positiveDuration parses an optional Go duration ("30s", "5m").
func positiveDuration(name, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: want a positive duration such as 30s or 5m, got %q", name, v)
	}
	return d, nil
}

// durationSetting parses an optional positive duration, def when unset.
func durationSetting(name, v string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	return positiveDuration(name, v)
}

func intSetting(name, v string, def, lo, hi int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s: want a whole number from %d to %d, got %q", name, lo, hi, v)
	}
	return n, nil
}

func positiveFloat(name, v string, def float64) (float64, error) {
	if v == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	// Negated so that NaN is refused too.
	if err != nil || !(f > 0 && f <= 1e6) {
		return 0, fmt.Errorf("%s: want a positive number, got %q", name, v)
	}
	return f, nil
}

func databaseURL(name, v string, required bool) (string, error) {
	if v == "" {
		if required {
			return "", fmt.Errorf("%s: not set", name)
		}
		return "", nil
	}
	// The parser's own error may quote the password; report only the name.
	if _, err := pgconn.ParseConfig(v); err != nil {
		return "", fmt.Errorf("%s: not a valid PostgreSQL connection string", name)
	}
	return v, nil
}

func httpURL(name, v string, required bool) (string, error) {
	if v == "" {
		if required {
			return "", fmt.Errorf("%s: not set", name)
		}
		return "", nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s: %q is not an absolute http(s) URL", name, v)
	}
	return v, nil
}

func algorithms(v string) ([]string, error) {
	if v == "" {
		return slices.Clone(DefaultJWTAlgorithms), nil
	}
	var out []string
	for _, a := range strings.Split(v, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if !slices.Contains(SupportedJWTAlgorithms, a) {
			return nil, fmt.Errorf("%s: unsupported algorithm %q (allowed: %s)", envvar.JWTAlgorithms, a, strings.Join(SupportedJWTAlgorithms, ","))
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: empty list", envvar.JWTAlgorithms)
	}
	return out, nil
}

// trustedProxies parses a comma-separated list of IP addresses and CIDRs.
func trustedProxies(v string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				return nil, fmt.Errorf("%s: %q is neither an IP address nor a CIDR like 198.18.0.0/15", envvar.TrustedProxies, p)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

func origins(v string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(v, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("%s: %q is not an origin like https://docs.example.com", envvar.CORSAllowedOrigins, o)
		}
		// Browsers send the origin without a trailing slash.
		out = append(out, u.Scheme+"://"+u.Host)
	}
	return out, nil
}

func listenAddr(name, v, def string) (string, error) {
	if v == "" {
		return def, nil
	}
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", fmt.Errorf("%s: %q is not host:port", name, v)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return "", fmt.Errorf("%s: %q has an invalid port", name, v)
	}
	return v, nil
}
