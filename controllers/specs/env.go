package specs

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/apiserver/envvar"
)

// Env is the plain (non-secret) configuration of chat-apiserver derived from
// the spec. Unset optional fields are left out so the server's own defaults
// apply, rather than duplicating them here. Every name comes from
// apiserver/envvar, the declaration the server reads too; the contract test
// (env_contract_test.go) checks the server validates each one.
func Env(cb *chatv1alpha1.ChatBackend) []corev1.EnvVar {
	s := &cb.Spec
	e := envBuilder{}
	e.add(envvar.BetterAuthURL, s.Auth.BetterAuthURL)
	e.add(envvar.JWKSURL, s.Auth.JWKSURL)
	e.add(envvar.Audience, s.Auth.Audience)
	e.add(envvar.JWTAlgorithms, strings.Join(s.Auth.Algorithms, ","))
	e.seconds(envvar.JWKSRefreshInterval, s.Auth.JWKSRefreshIntervalSeconds)
	e.seconds(envvar.JWTMaxTokenAge, s.Auth.MaxTokenAgeSeconds)
	if s.CORS != nil {
		e.add(envvar.CORSAllowedOrigins, strings.Join(s.CORS.AllowedOrigins, ","))
	}
	if l := s.Limits; l != nil {
		e.int(envvar.ChatRatePerMinute, l.QuestionsPerMinute)
		e.int(envvar.ChatRateBurst, l.QuestionBurst)
		e.int(envvar.WriteRatePerMinute, l.WritesPerMinute)
		e.int(envvar.WriteRateBurst, l.WriteBurst)
		e.int(envvar.MaxStreams, l.MaxStreams)
	}
	e.add(envvar.ListenAddr, ":"+strconv.Itoa(int(HTTPPort)))
	e.add(envvar.MetricsAddr, ":"+strconv.Itoa(int(MetricsPort)))
	serverEnv(&e, &s.Server)
	p := &s.Database.Pool
	e.int(envvar.DatabaseMaxConns, p.MaxConns)
	if m := p.MinConns; m != nil {
		// 0 is a setting (open on demand), not "unset".
		e.add(envvar.DatabaseMinConns, strconv.Itoa(int(*m)))
	}
	e.seconds(envvar.DatabaseAcquireTimeout, p.AcquireTimeoutSeconds)
	e.seconds(envvar.DatabaseQueryTimeout, p.QueryTimeoutSeconds)
	if q := s.Qdrant; q != nil {
		e.add(envvar.QdrantURL, q.URL)
		e.add(envvar.QdrantCollection, q.Collection)
		if q.Search != "" {
			e.add(envvar.QdrantHybrid, strconv.FormatBool(q.Search == chatv1alpha1.QdrantSearchHybrid))
		}
	}
	if o := s.OpenAI; o != nil {
		e.add(envvar.OpenAIBaseURL, o.BaseURL)
		e.add(envvar.OpenAIChatModel, o.ChatModel)
		e.add(envvar.OpenAIEmbeddingModel, o.EmbeddingModel)
		e.seconds(envvar.OpenAIFirstTokenTimeout, o.Timeouts.FirstTokenSeconds)
		e.seconds(envvar.OpenAIIdleTimeout, o.Timeouts.IdleSeconds)
		e.add(envvar.OpenAITemperature, o.Temperature)
		e.int(envvar.OpenAIMaxTokens, o.MaxTokens)
		e.add(envvar.RAGAnswers, strings.ToLower(string(o.Answers)))
	}
	retrievalEnv(&e, &s.Retrieval)
	return append(e.env, tlsEnv(s)...)
}

// serverEnv renders spec.server.
func serverEnv(e *envBuilder, s *chatv1alpha1.ServerSpec) {
	t := &s.Timeouts
	e.seconds(envvar.HTTPReadHeaderTimeout, t.ReadHeaderSeconds)
	e.seconds(envvar.HTTPReadBodyTimeout, t.ReadBodySeconds)
	e.seconds(envvar.HTTPIdleTimeout, t.IdleSeconds)
	e.seconds(envvar.HTTPRequestTimeout, t.RequestSeconds)
	e.seconds(envvar.HTTPChatTimeout, t.ChatSeconds)
	e.seconds(envvar.HTTPStreamWriteTimeout, t.StreamWriteSeconds)
	e.add(envvar.TrustedProxies, strings.Join(s.TrustedProxies, ","))
}

// retrievalEnv renders spec.retrieval. Its fractions are whole percentages
// in the spec (the Kubernetes API conventions avoid floats).
func retrievalEnv(e *envBuilder, r *chatv1alpha1.RetrievalSpec) {
	e.int(envvar.RAGTopK, r.TopK)
	if h := r.HistoryTokens; h != nil {
		// 0 is a setting (no history), not "unset".
		e.add(envvar.RAGHistoryTokens, strconv.Itoa(int(*h)))
	}
	if p := r.MinRelevancePercent; p != nil {
		// 0 is a setting (cite whatever ranks), not "unset".
		e.add(envvar.RAGMinRelevance, strconv.FormatFloat(float64(*p)/100, 'f', -1, 64))
	}
	if p := r.MinSimilarityPercent; p != 0 {
		e.add(envvar.RAGMinSimilarity, strconv.FormatFloat(float64(p)/100, 'f', -1, 64))
	}
	if p := r.DenseWeightPercent; p != nil {
		// 0 is a setting (BM25F orders the candidates), not "unset".
		e.add(envvar.RAGDenseWeight, strconv.FormatFloat(float64(*p)/100, 'f', -1, 64))
	}
	if q := r.QueryRewrite; q != "" {
		e.add(envvar.RAGQueryRewrite, strconv.FormatBool(q == chatv1alpha1.QueryRewriteEnabled))
	}
}

// envBuilder collects variables, leaving out unset (empty or zero) ones.
type envBuilder struct{ env []corev1.EnvVar }

func (b *envBuilder) add(name, value string) {
	if value != "" {
		b.env = append(b.env, corev1.EnvVar{Name: name, Value: value})
	}
}

func (b *envBuilder) int(name string, v int32) {
	if v != 0 {
		b.add(name, strconv.Itoa(int(v)))
	}
}

// seconds renders a whole number of seconds as the Go duration the server
// parses.
func (b *envBuilder) seconds(name string, v int32) {
	if v != 0 {
		b.add(name, strconv.Itoa(int(v))+"s")
	}
}

// EnvSecretRef binds a referenced Secret key to the environment variable the
// API reads it as.
type EnvSecretRef struct {
	// EnvName is the variable, e.g. DATABASE_URL.
	EnvName string
	// Field is the spec path of the reference, for messages.
	Field string
	Ref   chatv1alpha1.SecretKeyRef
}

// EnvSecretRefs lists every Secret key the spec references, in a stable
// order. It lives here rather than in api/v1alpha1 because it is where the
// spec meets the server's environment, which the API types need not know.
func EnvSecretRefs(s *chatv1alpha1.ChatBackendSpec) []EnvSecretRef {
	refs := []EnvSecretRef{{EnvName: envvar.DatabaseURL, Field: "spec.database.urlSecretRef", Ref: s.Database.URLSecretRef}}
	if r := s.Database.DirectURLSecretRef; r != nil {
		refs = append(refs, EnvSecretRef{EnvName: envvar.DatabaseDirectURL, Field: "spec.database.directURLSecretRef", Ref: *r})
	}
	if s.OpenAI != nil && s.OpenAI.APIKeySecretRef != nil {
		refs = append(refs, EnvSecretRef{EnvName: envvar.OpenAIAPIKey, Field: "spec.openai.apiKeySecretRef", Ref: *s.OpenAI.APIKeySecretRef})
	}
	if s.Qdrant != nil && s.Qdrant.APIKeySecretRef != nil {
		refs = append(refs, EnvSecretRef{EnvName: envvar.QdrantAPIKey, Field: "spec.qdrant.apiKeySecretRef", Ref: *s.Qdrant.APIKeySecretRef})
	}
	return refs
}
