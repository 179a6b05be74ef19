package specs

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// EnvSecret is the Secret `<name>-env` holding the referenced secret values
// under the variable names chat-apiserver reads (DATABASE_URL, ...). data is
// what the reconciler resolved from the referenced Secrets.
//
// Why copy instead of pointing env at the user's Secrets: one Secret is one
// thing to hash for rollouts and one envFrom for both the pods and the Job,
// and a user's Secret with other keys in it is never exposed wholesale.
func EnvSecret(cb *chatv1alpha1.ChatBackend, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      EnvSecretName(cb),
			Namespace: cb.Namespace,
			Labels:    Labels(cb, ""),
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
}

// Env is the plain (non-secret) configuration of chat-apiserver derived from
// the spec. Unset optional fields are left out so the server's own defaults
// apply, rather than duplicating them here.
func Env(cb *chatv1alpha1.ChatBackend) []corev1.EnvVar {
	s := &cb.Spec
	var env []corev1.EnvVar
	add := func(name, value string) {
		if value != "" {
			env = append(env, corev1.EnvVar{Name: name, Value: value})
		}
	}
	add("BETTER_AUTH_URL", s.Auth.BetterAuthURL)
	add("JWKS_URL", s.Auth.JWKSURL)
	add("BETTER_AUTH_AUDIENCE", s.Auth.Audience)
	add("JWT_ALGORITHMS", strings.Join(s.Auth.Algorithms, ","))
	if s.CORS != nil {
		add("CORS_ALLOWED_ORIGINS", strings.Join(s.CORS.AllowedOrigins, ","))
	}
	add("LISTEN_ADDR", ":"+itoa(HTTPPort))
	add("METRICS_ADDR", ":"+itoa(MetricsPort))
	if q := s.Qdrant; q != nil {
		add("QDRANT_URL", q.URL)
		add("QDRANT_COLLECTION", q.Collection)
	}
	if o := s.OpenAI; o != nil {
		add("OPENAI_BASE_URL", o.BaseURL)
		add("OPENAI_CHAT_MODEL", o.ChatModel)
		add("OPENAI_EMBEDDING_MODEL", o.EmbeddingModel)
	}
	return env
}
