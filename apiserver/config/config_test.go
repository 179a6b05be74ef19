package config_test

import (
	"go/build"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/config"
)

func base() map[string]string {
	return map[string]string{
		"DATABASE_URL":    "postgres://app:s3cret@db:5432/chat?sslmode=disable",
		"BETTER_AUTH_URL": "https://auth.example.com",
	}
}

func TestDefaults(t *testing.T) {
	g := NewWithT(t)
	c, err := config.LoadFrom(config.FromMap(base()))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.JWKSURL).To(Equal("https://auth.example.com/api/auth/jwks"))
	g.Expect(c.Audience).To(Equal("https://auth.example.com"))
	g.Expect(c.Algorithms).To(Equal([]string{"EdDSA", "ES256", "ES512", "RS256", "PS256"}))
	g.Expect(c.ListenAddr).To(Equal(":8080"))
	g.Expect(c.MetricsAddr).To(Equal(":9090"))
	g.Expect(c.CORSAllowedOrigins).To(BeEmpty())
	g.Expect(c.RAG.Offline()).To(BeTrue())
	g.Expect(c.RAG.QdrantURL).To(BeEmpty(), "PostgreSQL retrieval")
	g.Expect(c.RAG.TopK).To(Equal(5))
	g.Expect(c.RAG.HistoryTokens).To(Equal(2000))
	g.Expect(c.ChatRatePerMinute).To(Equal(20.0))
	g.Expect(c.ChatBurst).To(Equal(5))
	g.Expect(c.Database).To(Equal(config.Database{MaxConns: 10, MinConns: 10, AcquireTimeout: 3 * time.Second, QueryTimeout: 10 * time.Second}))
	g.Expect(c.HTTP).To(Equal(config.HTTP{ReadHeaderTimeout: 10 * time.Second, ReadBodyTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, RequestTimeout: 30 * time.Second, ChatTimeout: 5 * time.Minute,
		StreamWriteTimeout: 30 * time.Second}))
	g.Expect(c.RAG.FirstTokenTimeout).To(Equal(time.Minute))
	g.Expect(c.RAG.IdleTimeout).To(Equal(30 * time.Second))
	g.Expect(c.WriteRatePerMinute).To(Equal(60.0))
	g.Expect(c.WriteBurst).To(Equal(20))
	g.Expect(c.MaxStreams).To(Equal(100))
	g.Expect(c.JWTMaxTokenAge).To(Equal(24 * time.Hour))
	g.Expect(c.TrustedProxies).To(BeEmpty(), "no proxy is trusted unless configured")
}

func TestOverrides(t *testing.T) {
	g := NewWithT(t)
	env := base()
	env["JWKS_URL"] = "http://auth.internal:3000/keys"
	env["BETTER_AUTH_AUDIENCE"] = "chat"
	env["JWT_ALGORITHMS"] = " RS256 ,EdDSA,RS256"
	env["CORS_ALLOWED_ORIGINS"] = "https://docs.example.com/, http://localhost:3000"
	env["LISTEN_ADDR"] = "127.0.0.1:18080"
	env["METRICS_ADDR"] = ":19090"
	env["QDRANT_URL"] = "http://qdrant:6334"
	env["QDRANT_HYBRID"] = "true"
	env["OPENAI_API_KEY"] = "k"
	env["OPENAI_EMBEDDING_MODEL"] = "text-embedding-3-large"
	env["RAG_TOP_K"] = "8"
	env["RAG_HISTORY_TOKENS"] = "500"
	env["CHAT_RATE_LIMIT_PER_MINUTE"] = "0.5"
	env["CHAT_RATE_LIMIT_BURST"] = "12"
	env["DATABASE_MAX_CONNS"] = "25"
	env["DATABASE_MIN_CONNS"] = "0"
	env["DATABASE_ACQUIRE_TIMEOUT"] = "1s"
	env["DATABASE_QUERY_TIMEOUT"] = "2s"
	env["HTTP_READ_HEADER_TIMEOUT"] = "3s"
	env["HTTP_READ_BODY_TIMEOUT"] = "4s"
	env["HTTP_IDLE_TIMEOUT"] = "5s"
	env["HTTP_REQUEST_TIMEOUT"] = "6s"
	env["HTTP_CHAT_TIMEOUT"] = "7m"
	env["HTTP_STREAM_WRITE_TIMEOUT"] = "10s"
	env["OPENAI_FIRST_TOKEN_TIMEOUT"] = "8s"
	env["OPENAI_IDLE_TIMEOUT"] = "9s"
	env["WRITE_RATE_LIMIT_PER_MINUTE"] = "600"
	env["WRITE_RATE_LIMIT_BURST"] = "50"
	env["CHAT_MAX_STREAMS"] = "7"
	env["JWT_MAX_TOKEN_AGE"] = "2h"
	env["TRUSTED_PROXIES"] = "198.18.0.0/15, 198.19.0.1 ,fd00::/8"
	c, err := config.LoadFrom(config.FromMap(env))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.JWKSURL).To(Equal("http://auth.internal:3000/keys"))
	g.Expect(c.Audience).To(Equal("chat"))
	g.Expect(c.Algorithms).To(Equal([]string{"RS256", "EdDSA"}))
	g.Expect(c.CORSAllowedOrigins).To(Equal([]string{"https://docs.example.com", "http://localhost:3000"}))
	g.Expect(c.ListenAddr).To(Equal("127.0.0.1:18080"))
	g.Expect(c.MetricsAddr).To(Equal(":19090"))
	g.Expect(c.RAG.QdrantURL).To(Equal("http://qdrant:6334"))
	g.Expect(c.RAG.QdrantHybrid).To(BeTrue())
	g.Expect(c.RAG.Offline()).To(BeFalse())
	g.Expect(c.RAG.OpenAIEmbeddingModel).To(Equal("text-embedding-3-large"))
	g.Expect(c.RAG.TopK).To(Equal(8))
	g.Expect(c.RAG.HistoryTokens).To(Equal(500))
	g.Expect(c.ChatRatePerMinute).To(Equal(0.5))
	g.Expect(c.ChatBurst).To(Equal(12))
	g.Expect(c.Database).To(Equal(config.Database{MaxConns: 25, MinConns: 0, AcquireTimeout: time.Second, QueryTimeout: 2 * time.Second}))
	g.Expect(c.HTTP).To(Equal(config.HTTP{ReadHeaderTimeout: 3 * time.Second, ReadBodyTimeout: 4 * time.Second,
		IdleTimeout: 5 * time.Second, RequestTimeout: 6 * time.Second, ChatTimeout: 7 * time.Minute,
		StreamWriteTimeout: 10 * time.Second}))
	g.Expect(c.RAG.FirstTokenTimeout).To(Equal(8 * time.Second))
	g.Expect(c.RAG.IdleTimeout).To(Equal(9 * time.Second))
	g.Expect(c.WriteRatePerMinute).To(Equal(600.0))
	g.Expect(c.WriteBurst).To(Equal(50))
	g.Expect(c.MaxStreams).To(Equal(7))
	g.Expect(c.JWTMaxTokenAge).To(Equal(2 * time.Hour))
	g.Expect(c.TrustedProxies).To(Equal([]string{"198.18.0.0/15", "198.19.0.1", "fd00::/8"}))
}

// ingest reads the same RAG settings as serve, without serve's own.
// DATABASE_MIN_CONNS defaults to DATABASE_MAX_CONNS (a fixed-size pool) and
// is bounded by it, which the error names.
func TestDatabaseMinConns(t *testing.T) {
	g := NewWithT(t)
	env := base()
	env["DATABASE_MAX_CONNS"] = "4"
	c, err := config.LoadFrom(config.FromMap(env))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.Database.MinConns).To(Equal(4), "the default follows DATABASE_MAX_CONNS")
	env["DATABASE_MIN_CONNS"] = "4"
	c, err = config.LoadFrom(config.FromMap(env))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.Database.MinConns).To(Equal(4))
	env["DATABASE_MIN_CONNS"] = "5"
	_, err = config.LoadFrom(config.FromMap(env))
	g.Expect(err).To(MatchError(`DATABASE_MIN_CONNS: want a whole number from 0 to 4, got "5" (DATABASE_MAX_CONNS is 4)`))
}

func TestRAGFromAgreesWithLoadFrom(t *testing.T) {
	g := NewWithT(t)
	env := base()
	env["QDRANT_URL"] = "https://qdrant.example.com:6334"
	env["QDRANT_COLLECTION"] = "site"
	env["OPENAI_BASE_URL"] = "http://llm:8000/v1"
	env["RAG_TOP_K"] = "3"
	c, err := config.LoadFrom(config.FromMap(env))
	g.Expect(err).NotTo(HaveOccurred())
	delete(env, "DATABASE_URL")
	delete(env, "BETTER_AUTH_URL")
	r, err := config.RAGFrom(config.FromMap(env))
	g.Expect(err).NotTo(HaveOccurred())
	// The connections kept to the model are serve's own: one per stream.
	g.Expect(c.RAG.ModelConns).To(Equal(config.DefaultMaxStreams))
	g.Expect(r.ModelConns).To(BeZero())
	r.ModelConns = c.RAG.ModelConns
	g.Expect(r).To(Equal(c.RAG))
	g.Expect(r.QdrantCollection).To(Equal("site"))
	g.Expect(r.TopK).To(Equal(3))

	_, err = config.RAGFrom(config.FromMap(map[string]string{"RAG_TOP_K": "21"}))
	g.Expect(err).To(MatchError(`RAG_TOP_K: want a whole number from 1 to 20, got "21"`))

	// The answer's tuning: unset keeps the defaults.
	g.Expect(r.Temperature).To(BeNil())
	g.Expect(r.MinRelevance).To(BeNil())
	g.Expect(r.QueryRewrite).To(BeTrue())
	r, err = config.RAGFrom(config.FromMap(map[string]string{"OPENAI_TEMPERATURE": "0.2", "OPENAI_MAX_TOKENS": "800", "RAG_MIN_RELEVANCE": "0.4"}))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*r.Temperature).To(Equal(0.2))
	g.Expect(r.MaxTokens).To(Equal(800))
	g.Expect(*r.MinRelevance).To(Equal(0.4))
	g.Expect(r.MinSimilarity).To(BeNil(), "off unless set: each embedding model has its own scale")
	r, err = config.RAGFrom(config.FromMap(map[string]string{"RAG_MIN_SIMILARITY": "0.65"}))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*r.MinSimilarity).To(Equal(0.65))
	_, err = config.RAGFrom(config.FromMap(map[string]string{"RAG_MIN_SIMILARITY": "0"}))
	g.Expect(err).To(MatchError(ContainSubstring("RAG_MIN_SIMILARITY: want a number above 0 and at most 1 (unset it to turn the threshold off)")))
	g.Expect(r.DenseWeight).To(BeNil(), "unset: pgstore's default")
	r, err = config.RAGFrom(config.FromMap(map[string]string{"RAG_DENSE_WEIGHT": "0"}))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*r.DenseWeight).To(BeZero(), "0 is a setting: BM25F orders the hybrid candidates")
	_, err = config.RAGFrom(config.FromMap(map[string]string{"RAG_MIN_RELEVANCE": "1.5"}))
	g.Expect(err).To(MatchError(`RAG_MIN_RELEVANCE: want a number from 0 to 1, got "1.5"`))
	r, err = config.RAGFrom(config.FromMap(map[string]string{"RAG_QUERY_REWRITE": "false"}))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.QueryRewrite).To(BeFalse())
	_, err = config.RAGFrom(config.FromMap(map[string]string{"RAG_QUERY_REWRITE": "maybe"}))
	g.Expect(err).To(MatchError(`RAG_QUERY_REWRITE: want true or false, got "maybe"`))
}

// RAG_ANSWERS separates the chat model from the embeddings: with an API key
// answers are the model's unless extractive is asked for, which keeps the
// API's embeddings (hybrid retrieval) without a chat model.
func TestAnswers(t *testing.T) {
	for _, c := range []struct {
		key, answers string
		want         string
		extractive   bool
	}{
		{"", "", config.AnswersExtractive, true},
		{"", "extractive", config.AnswersExtractive, true},
		{"k", "", config.AnswersModel, false},
		{"k", "model", config.AnswersModel, false},
		{"k", "extractive", config.AnswersExtractive, true},
	} {
		g := NewWithT(t)
		r, err := config.RAGFrom(config.FromMap(map[string]string{"OPENAI_API_KEY": c.key, "RAG_ANSWERS": c.answers}))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(r.Answers).To(Equal(c.want), "key %q, RAG_ANSWERS %q", c.key, c.answers)
		g.Expect(r.ExtractiveAnswers()).To(Equal(c.extractive), "key %q, RAG_ANSWERS %q", c.key, c.answers)
		g.Expect(r.Offline()).To(Equal(c.key == ""), "the embeddings follow the API key alone")
	}
}

func TestErrorsNameTheVariable(t *testing.T) {
	cases := []struct {
		name, key, value string
	}{
		{"missing database", "DATABASE_URL", ""},
		{"malformed database", "DATABASE_URL", "postgres://app:s3cret@db:notaport/chat"},
		{"missing issuer", "BETTER_AUTH_URL", ""},
		{"relative issuer", "BETTER_AUTH_URL", "auth.example.com"},
		{"bad jwks url", "JWKS_URL", "ftp://x/keys"},
		{"symmetric algorithm", "JWT_ALGORITHMS", "HS256"},
		{"none algorithm", "JWT_ALGORITHMS", "none"},
		{"empty algorithms", "JWT_ALGORITHMS", ", ,"},
		{"origin with path", "CORS_ALLOWED_ORIGINS", "https://docs.example.com/app"},
		{"origin without scheme", "CORS_ALLOWED_ORIGINS", "docs.example.com"},
		{"listen without port", "LISTEN_ADDR", "localhost"},
		{"metrics bad port", "METRICS_ADDR", ":99999"},
		{"same addresses", "METRICS_ADDR", ":8080"},
		{"bad qdrant url", "QDRANT_URL", "qdrant:6333"},
		{"bad openai url", "OPENAI_BASE_URL", "ftp://llm"},
		{"hybrid not a bool", "QDRANT_HYBRID", "maybe"},
		{"top k zero", "RAG_TOP_K", "0"},
		{"top k too large", "RAG_TOP_K", "50"},
		{"top k not a number", "RAG_TOP_K", "five"},
		{"history not a number", "RAG_HISTORY_TOKENS", "lots"},
		{"history negative", "RAG_HISTORY_TOKENS", "-1"},
		{"rate not a number", "CHAT_RATE_LIMIT_PER_MINUTE", "fast"},
		{"rate zero", "CHAT_RATE_LIMIT_PER_MINUTE", "0"},
		{"rate NaN", "CHAT_RATE_LIMIT_PER_MINUTE", "NaN"},
		{"burst fractional", "CHAT_RATE_LIMIT_BURST", "2.5"},
		{"burst zero", "CHAT_RATE_LIMIT_BURST", "0"},
		{"write rate negative", "WRITE_RATE_LIMIT_PER_MINUTE", "-1"},
		{"write burst zero", "WRITE_RATE_LIMIT_BURST", "0"},
		{"streams zero", "CHAT_MAX_STREAMS", "0"},
		{"streams not a number", "CHAT_MAX_STREAMS", "many"},
		{"jwks refresh not a duration", "JWKS_REFRESH_INTERVAL", "often"},
		{"jwks refresh negative", "JWKS_REFRESH_INTERVAL", "-5s"},
		{"pool size zero", "DATABASE_MAX_CONNS", "0"},
		{"pool size not a number", "DATABASE_MAX_CONNS", "many"},
		{"pool minimum negative", "DATABASE_MIN_CONNS", "-1"},
		{"pool minimum above the default size", "DATABASE_MIN_CONNS", "11"},
		{"pool minimum not a number", "DATABASE_MIN_CONNS", "all"},
		{"acquire timeout not a duration", "DATABASE_ACQUIRE_TIMEOUT", "3"},
		{"query timeout zero", "DATABASE_QUERY_TIMEOUT", "0s"},
		{"header timeout negative", "HTTP_READ_HEADER_TIMEOUT", "-1s"},
		{"body timeout not a duration", "HTTP_READ_BODY_TIMEOUT", "slow"},
		{"idle timeout zero", "HTTP_IDLE_TIMEOUT", "0"},
		{"request timeout not a duration", "HTTP_REQUEST_TIMEOUT", "30"},
		{"chat timeout negative", "HTTP_CHAT_TIMEOUT", "-5m"},
		{"first token timeout not a duration", "OPENAI_FIRST_TOKEN_TIMEOUT", "soon"},
		{"model idle timeout zero", "OPENAI_IDLE_TIMEOUT", "0s"},
		{"token age not a duration", "JWT_MAX_TOKEN_AGE", "a day"},
		{"token age negative", "JWT_MAX_TOKEN_AGE", "-1h"},
		{"proxy not an address", "TRUSTED_PROXIES", "198.18.0.1,ingress-nginx"},
		{"proxy bad CIDR", "TRUSTED_PROXIES", "198.18.0.0/99"},
		{"answers unknown", "RAG_ANSWERS", "llm"},
		{"similarity above one", "RAG_MIN_SIMILARITY", "65"},
		{"dense weight above one", "RAG_DENSE_WEIGHT", "60"},
		{"dense weight NaN", "RAG_DENSE_WEIGHT", "NaN"},
		{"relevance NaN", "RAG_MIN_RELEVANCE", "nan"},
		{"model answers without a model API", "RAG_ANSWERS", "model"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			env := base()
			env[tc.key] = tc.value
			_, err := config.LoadFrom(config.FromMap(env))
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(HavePrefix(tc.key + ": "))
			g.Expect(err.Error()).NotTo(ContainSubstring("\n"))
			g.Expect(err.Error()).NotTo(ContainSubstring("s3cret"))
		})
	}
}

func TestMigrateURLPrefersDirect(t *testing.T) {
	g := NewWithT(t)
	env := base()
	u, err := config.MigrateURL(config.FromMap(env))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(u).To(Equal(env["DATABASE_URL"]))

	env["DATABASE_DIRECT_URL"] = "postgres://app@db-direct/chat"
	u, err = config.MigrateURL(config.FromMap(env))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(u).To(Equal("postgres://app@db-direct/chat"))

	_, err = config.MigrateURL(config.FromMap(map[string]string{}))
	g.Expect(err).To(MatchError(HavePrefix("DATABASE_URL: ")))
	_, err = config.MigrateURL(config.FromMap(map[string]string{"DATABASE_DIRECT_URL": "postgres://x:secret@h:bad/db"}))
	g.Expect(err).To(MatchError(HavePrefix("DATABASE_DIRECT_URL: ")))
	g.Expect(strings.Contains(err.Error(), "secret")).To(BeFalse())
}

// config stays a leaf: the operator's contract test and every command load
// it, and the components import it for their settings, so it must not pull
// in the HTTP or RAG stacks (nor anything else of this module but envvar).
func TestConfigImportsOnlyLeaves(t *testing.T) {
	g := NewWithT(t)
	pkg, err := build.Import("github.com/chatbackend/chatbackend/apiserver/config", ".", 0)
	g.Expect(err).NotTo(HaveOccurred())
	var own []string
	for _, imp := range pkg.Imports {
		if strings.HasPrefix(imp, "github.com/chatbackend/chatbackend/") {
			own = append(own, imp)
		}
	}
	g.Expect(own).To(ConsistOf("github.com/chatbackend/chatbackend/apiserver/envvar"))
}
