// Package config reads chat-apiserver's settings from the environment.
//
// Every error is a single line that starts with the variable's name, so a
// misconfigured pod says exactly what to fix.
package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chatbackend/chatbackend/apiserver/auth"
	"github.com/chatbackend/chatbackend/apiserver/httpapi"
	"github.com/chatbackend/chatbackend/apiserver/rag"
)

// Defaults.
const (
	DefaultListenAddr  = ":8080"
	DefaultMetricsAddr = ":9090"
)

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

	// RAG selects retrieval and generation (QDRANT_*, OPENAI_*, RAG_*);
	// see RAGFrom.
	RAG rag.Config
	// ChatRatePerMinute and ChatBurst limit each user's chat requests
	// (CHAT_RATE_LIMIT_PER_MINUTE, CHAT_RATE_LIMIT_BURST).
	ChatRatePerMinute float64
	ChatBurst         int
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

	if c.DatabaseURL, err = databaseURL("DATABASE_URL", get("DATABASE_URL"), true); err != nil {
		return Config{}, err
	}
	if c.BetterAuthURL, err = httpURL("BETTER_AUTH_URL", get("BETTER_AUTH_URL"), true); err != nil {
		return Config{}, err
	}
	if c.JWKSURL, err = httpURL("JWKS_URL", get("JWKS_URL"), false); err != nil {
		return Config{}, err
	}
	if c.JWKSURL == "" {
		c.JWKSURL = strings.TrimRight(c.BetterAuthURL, "/") + "/api/auth/jwks"
	}
	c.Audience = get("BETTER_AUTH_AUDIENCE")
	if c.Audience == "" {
		c.Audience = c.BetterAuthURL
	}
	if c.Algorithms, err = algorithms(get("JWT_ALGORITHMS")); err != nil {
		return Config{}, err
	}
	if c.CORSAllowedOrigins, err = origins(get("CORS_ALLOWED_ORIGINS")); err != nil {
		return Config{}, err
	}
	if c.ListenAddr, err = listenAddr("LISTEN_ADDR", get("LISTEN_ADDR"), DefaultListenAddr); err != nil {
		return Config{}, err
	}
	if c.MetricsAddr, err = listenAddr("METRICS_ADDR", get("METRICS_ADDR"), DefaultMetricsAddr); err != nil {
		return Config{}, err
	}
	if c.ListenAddr == c.MetricsAddr {
		return Config{}, fmt.Errorf("METRICS_ADDR: must differ from LISTEN_ADDR (both %q)", c.ListenAddr)
	}
	if c.JWKSRefreshInterval, err = positiveDuration("JWKS_REFRESH_INTERVAL", get("JWKS_REFRESH_INTERVAL")); err != nil {
		return Config{}, err
	}
	if c.RAG, err = RAGFrom(env); err != nil {
		return Config{}, err
	}
	if c.ChatRatePerMinute, err = positiveFloat("CHAT_RATE_LIMIT_PER_MINUTE", get("CHAT_RATE_LIMIT_PER_MINUTE"), httpapi.DefaultChatRatePerMinute); err != nil {
		return Config{}, err
	}
	if c.ChatBurst, err = intSetting("CHAT_RATE_LIMIT_BURST", get("CHAT_RATE_LIMIT_BURST"), httpapi.DefaultChatBurst, 1, 1_000_000); err != nil {
		return Config{}, err
	}
	return c, nil
}

// RAGFrom reads the retrieval and generation settings:
//
//	QDRANT_URL, QDRANT_API_KEY, QDRANT_COLLECTION, QDRANT_HYBRID (true|false),
//	OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_CHAT_MODEL, OPENAI_EMBEDDING_MODEL,
//	RAG_TOP_K (sources per answer), RAG_HISTORY_TOKENS (history budget).
//
// LoadFrom (serve) and `ingest` both use it, so they always agree on the
// store and the embedding model.
func RAGFrom(env Lookup) (rag.Config, error) {
	get := func(k string) string { v, _ := env(k); return strings.TrimSpace(v) }
	c := rag.Config{
		QdrantAPIKey:         get("QDRANT_API_KEY"),
		QdrantCollection:     get("QDRANT_COLLECTION"),
		OpenAIAPIKey:         get("OPENAI_API_KEY"),
		OpenAIChatModel:      get("OPENAI_CHAT_MODEL"),
		OpenAIEmbeddingModel: get("OPENAI_EMBEDDING_MODEL"),
	}
	var err error
	if c.QdrantURL, err = httpURL("QDRANT_URL", get("QDRANT_URL"), false); err != nil {
		return rag.Config{}, err
	}
	if c.OpenAIBaseURL, err = httpURL("OPENAI_BASE_URL", get("OPENAI_BASE_URL"), false); err != nil {
		return rag.Config{}, err
	}
	if v := get("QDRANT_HYBRID"); v != "" {
		if c.QdrantHybrid, err = strconv.ParseBool(v); err != nil {
			return rag.Config{}, fmt.Errorf("QDRANT_HYBRID: want true or false, got %q", v)
		}
	}
	if c.TopK, err = intSetting("RAG_TOP_K", get("RAG_TOP_K"), rag.DefaultTopK, 1, rag.MaxTopK); err != nil {
		return rag.Config{}, err
	}
	if c.HistoryTokens, err = intSetting("RAG_HISTORY_TOKENS", get("RAG_HISTORY_TOKENS"), rag.DefaultHistoryTokens, 0, rag.MaxHistoryTokens); err != nil {
		return rag.Config{}, err
	}
	return c, nil
}

// MigrateURL is the database `migrate` uses: DATABASE_DIRECT_URL when set
// (a session advisory lock does not survive a transaction pooler), else
// DATABASE_URL.
func MigrateURL(env Lookup) (string, error) {
	if v, _ := env("DATABASE_DIRECT_URL"); strings.TrimSpace(v) != "" {
		return databaseURL("DATABASE_DIRECT_URL", strings.TrimSpace(v), true)
	}
	v, _ := env("DATABASE_URL")
	if strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("DATABASE_URL: not set (nor DATABASE_DIRECT_URL)")
	}
	return databaseURL("DATABASE_URL", strings.TrimSpace(v), true)
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
		// The verifier owns the allowlist rules; config only parses.
		return slices.Clone(auth.DefaultAlgorithms), nil
	}
	var out []string
	for _, a := range strings.Split(v, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if !slices.Contains(auth.SupportedAlgorithms, a) {
			return nil, fmt.Errorf("JWT_ALGORITHMS: unsupported algorithm %q (allowed: %s)", a, strings.Join(auth.SupportedAlgorithms, ","))
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("JWT_ALGORITHMS: empty list")
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
			return nil, fmt.Errorf("CORS_ALLOWED_ORIGINS: %q is not an origin like https://docs.example.com", o)
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
