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
	var env []corev1.EnvVar
	add := func(name, value string) {
		if value != "" {
			env = append(env, corev1.EnvVar{Name: name, Value: value})
		}
	}
	add(envvar.BetterAuthURL, s.Auth.BetterAuthURL)
	add(envvar.JWKSURL, s.Auth.JWKSURL)
	add(envvar.Audience, s.Auth.Audience)
	add(envvar.JWTAlgorithms, strings.Join(s.Auth.Algorithms, ","))
	if s.CORS != nil {
		add(envvar.CORSAllowedOrigins, strings.Join(s.CORS.AllowedOrigins, ","))
	}
	if l := s.Limits; l != nil {
		addInt := func(name string, v int32) {
			if v != 0 {
				add(name, strconv.Itoa(int(v)))
			}
		}
		addInt(envvar.ChatRatePerMinute, l.QuestionsPerMinute)
		addInt(envvar.ChatRateBurst, l.QuestionBurst)
		addInt(envvar.WriteRatePerMinute, l.WritesPerMinute)
		addInt(envvar.WriteRateBurst, l.WriteBurst)
		addInt(envvar.MaxStreams, l.MaxStreams)
	}
	add(envvar.ListenAddr, ":"+strconv.Itoa(int(HTTPPort)))
	add(envvar.MetricsAddr, ":"+strconv.Itoa(int(MetricsPort)))
	if q := s.Qdrant; q != nil {
		add(envvar.QdrantURL, q.URL)
		add(envvar.QdrantCollection, q.Collection)
	}
	if o := s.OpenAI; o != nil {
		add(envvar.OpenAIBaseURL, o.BaseURL)
		add(envvar.OpenAIChatModel, o.ChatModel)
		add(envvar.OpenAIEmbeddingModel, o.EmbeddingModel)
	}
	return env
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
