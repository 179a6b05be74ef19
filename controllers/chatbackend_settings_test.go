package controllers_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/apiserver/envvar"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// TestServerSettingsReachThePods: the complete sample, which sets every
// server setting of the spec, passes the CRD's validation, and its typed
// settings reach the migrations pod and the API pods as the variables
// chat-apiserver reads (the env contract test checks every field; this one
// goes through the real API server and reconciler).
func TestServerSettingsReachThePods(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	raw, err := os.ReadFile(filepath.Join("..", "config", "samples", "chatbackend-complete.yaml"))
	Expect(err).NotTo(HaveOccurred())
	cb := &chatv1alpha1.ChatBackend{}
	Expect(yaml.UnmarshalStrict(raw, cb)).To(Succeed())
	cb.Namespace = ns
	// Only the database is needed to render the pods; the other
	// references are the sample's.
	const dbURL = "postgres://app@db/chat"
	Expect(k8s.Create(ctx, secret(ns, "db", map[string]string{"url": dbURL}))).To(Succeed())
	cb.Spec.Database.URLSecretRef = chatv1alpha1.SecretKeyRef{Name: "db", Key: "url"}
	cb.Spec.Database.DirectURLSecretRef, cb.Spec.Database.TLS, cb.Spec.TrustedCA = nil, nil, nil
	// Without its key the sample's answers: Model is refused (see
	// TestServerSettingsValidation): quote the docs instead.
	cb.Spec.OpenAI.APIKeySecretRef, cb.Spec.Qdrant.APIKeySecretRef = nil, nil
	cb.Spec.OpenAI.Answers = chatv1alpha1.OpenAIAnswersExtractive
	cb.Spec.EnvFrom, cb.Spec.Volumes, cb.Spec.VolumeMounts = nil, nil, nil
	cb.Spec.Qdrant.Search = chatv1alpha1.QdrantSearchHybrid
	cb.Spec.Retrieval.HistoryTokens = ptr.To[int32](0)
	Expect(k8s.Create(ctx, cb)).To(Succeed())

	want := map[string]string{
		envvar.JWKSRefreshInterval: "300s", envvar.JWTMaxTokenAge: "86400s",
		envvar.DatabaseMaxConns: "10", envvar.DatabaseMinConns: "10", envvar.DatabaseAcquireTimeout: "3s", envvar.DatabaseQueryTimeout: "10s",
		envvar.HTTPReadHeaderTimeout: "10s", envvar.HTTPReadBodyTimeout: "30s", envvar.HTTPIdleTimeout: "120s",
		envvar.HTTPRequestTimeout: "30s", envvar.HTTPChatTimeout: "300s", envvar.HTTPStreamWriteTimeout: "30s",
		envvar.TrustedProxies: "198.18.0.0/15", envvar.QdrantHybrid: "true",
		envvar.OpenAIFirstTokenTimeout: "60s", envvar.OpenAIIdleTimeout: "30s",
		envvar.RAGTopK: "5", envvar.RAGHistoryTokens: "0", envvar.RAGQueryRewrite: "true", envvar.RAGAnswers: "extractive",
	}
	job := &batchv1.Job{}
	Eventually(func() error { return k8s.Get(ctx, key(ns, migrationJobName(cb, cb.Spec.Image, dbURL)), job) }, timeout, interval).Should(Succeed())
	expectEnv(job.Spec.Template.Spec.Containers[0].Env, want)
	migrate(t, ns, cb, dbURL)
	dep := &appsv1.Deployment{}
	Eventually(func() error { return k8s.Get(ctx, key(ns, cb.Name), dep) }, timeout, interval).Should(Succeed())
	expectEnv(dep.Spec.Template.Spec.Containers[0].Env, want)
	// The sample's spec.ingest runs with the same settings.
	ingestJob, err := specs.IngestJobName(cb, cb.Spec.Image)
	Expect(err).NotTo(HaveOccurred())
	Eventually(func() error { return k8s.Get(ctx, key(ns, ingestJob), job) }, timeout, interval).Should(Succeed())
	expectEnv(job.Spec.Template.Spec.Containers[0].Env, want)
}

// TestServerSettingsValidation: the CRD refuses settings chat-apiserver
// would refuse at start-up, so they fail at apply time, not as crash loops.
func TestServerSettingsValidation(t *testing.T) {
	ns := newNamespace(t)
	for name, tc := range map[string]struct {
		mutate  func(*chatv1alpha1.ChatBackend)
		message string
	}{
		"a trusted proxy that is no address": {func(cb *chatv1alpha1.ChatBackend) {
			cb.Spec.Server.TrustedProxies = []string{"198.18.0.0/15", "ingress-nginx"}
		}, "each trusted proxy must be an IP address or a CIDR"},
		"a prefix too long": {func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Server.TrustedProxies = []string{"198.18.0.0/33"} },
			"each trusted proxy must be an IP address or a CIDR"},
		"topK above the server's maximum": {func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Retrieval.TopK = 21 },
			"spec.retrieval.topK: Invalid value: 21: spec.retrieval.topK in body should be less than or equal to 20"},
		"negative history": {func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Retrieval.HistoryTokens = ptr.To[int32](-1) },
			"spec.retrieval.historyTokens in body should be greater than or equal to 0"},
		"a temperature above 2": {func(cb *chatv1alpha1.ChatBackend) {
			cb.Spec.OpenAI = &chatv1alpha1.OpenAISpec{Temperature: "2.5"}
		}, "spec.openai.temperature in body should match"},
		"a relevance above 100 percent": {func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Retrieval.MinRelevancePercent = ptr.To[int32](101) },
			"spec.retrieval.minRelevancePercent in body should be less than or equal to 100"},
		"a pool too large": {func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Database.Pool.MaxConns = 1001 },
			"spec.database.pool.maxConns in body should be less than or equal to 1000"},
		"more connections kept than the pool's default size": {func(cb *chatv1alpha1.ChatBackend) {
			cb.Spec.Database.Pool.MinConns = ptr.To[int32](11)
		}, "pool.minConns must not exceed pool.maxConns (10 when unset)"},
		"more connections kept than the pool holds": {func(cb *chatv1alpha1.ChatBackend) {
			cb.Spec.Database.Pool = chatv1alpha1.DatabasePoolSpec{MaxConns: 4, MinConns: ptr.To[int32](5)}
		}, "pool.minConns must not exceed pool.maxConns (10 when unset)"},
		"a negative timeout": {func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Server.Timeouts.ChatSeconds = -1 },
			"spec.server.timeouts.chatSeconds in body should be greater than or equal to 1"},
		"a JWKS refresh slower than the alert": {func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Auth.JWKSRefreshIntervalSeconds = 600 },
			"spec.auth.jwksRefreshIntervalSeconds in body should be less than or equal to 300"},
		"answers by a model with no key to reach it": {func(cb *chatv1alpha1.ChatBackend) {
			cb.Spec.OpenAI = &chatv1alpha1.OpenAISpec{Answers: chatv1alpha1.OpenAIAnswersModel}
		}, "openai.answers Model needs the model's API key"},
		"an unknown search": {func(cb *chatv1alpha1.ChatBackend) {
			cb.Spec.Qdrant = &chatv1alpha1.QdrantSpec{URL: "http://qdrant:6334", Search: "Sparse"}
		}, `spec.qdrant.search: Unsupported value: "Sparse"`},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			cb := chatBackend(ns, "chat", "registry.example.com/chat-apiserver:v1")
			tc.mutate(cb)
			err := k8s.Create(context.Background(), cb)
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
			g.Expect(err.Error()).To(ContainSubstring(tc.message))
		})
	}
}

func expectEnv(env []corev1.EnvVar, want map[string]string) {
	got := map[string]string{}
	for _, e := range env {
		got[e.Name] = e.Value
	}
	for k, v := range want {
		ExpectWithOffset(1, got).To(HaveKeyWithValue(k, v))
	}
}
