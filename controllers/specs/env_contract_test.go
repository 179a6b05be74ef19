package specs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/envvar"
	"github.com/chatbackend/chatbackend/controllers/specs"
	"github.com/chatbackend/chatbackend/internal/testca"
)

// The env contract between the operator and chat-apiserver: what the
// operator writes into pods (specs.Env, specs.EnvSecretRefs) must be what
// the server reads and validates (apiserver/config), or pods silently run on
// defaults. These tests use the server's real loader, not a copy of its
// rules.

// fullyPopulated sets every field of the spec that becomes a variable, each
// to a value no other field has, so the loaded configuration shows where
// each one went.
func fullyPopulated() *chatv1alpha1.ChatBackend {
	cb := minimal()
	cb.Spec.Auth = chatv1alpha1.AuthSpec{
		BetterAuthURL:              "https://auth.example.com",
		JWKSURL:                    "https://keys.example.com/jwks",
		Audience:                   "audience-contract",
		Algorithms:                 []string{"EdDSA", "RS256"},
		JWKSRefreshIntervalSeconds: 91,
		MaxTokenAgeSeconds:         3601,
	}
	cb.Spec.CORS = &chatv1alpha1.CORSSpec{AllowedOrigins: []string{"https://docs.example.com"}}
	cb.Spec.Limits = &chatv1alpha1.LimitsSpec{QuestionsPerMinute: 21, QuestionBurst: 6, WritesPerMinute: 61,
		WriteBurst: 22, MaxStreams: 101}
	cb.Spec.Database.DirectURLSecretRef = &chatv1alpha1.SecretKeyRef{Name: "db", Key: "direct"}
	cb.Spec.Database.TLS = &chatv1alpha1.DatabaseTLSSpec{CASecretRef: &chatv1alpha1.SecretKeyRef{Name: "db-ca", Key: "ca.crt"},
		ClientCertSecretRef: &chatv1alpha1.LocalSecretRef{Name: "db-client"}}
	cb.Spec.Database.Pool = chatv1alpha1.DatabasePoolSpec{MaxConns: 17, MinConns: ptr.To[int32](13), AcquireTimeoutSeconds: 4, QueryTimeoutSeconds: 11}
	cb.Spec.Server = chatv1alpha1.ServerSpec{
		Timeouts: chatv1alpha1.ServerTimeoutsSpec{ReadHeaderSeconds: 12, ReadBodySeconds: 31, IdleSeconds: 121,
			RequestSeconds: 32, ChatSeconds: 301, StreamWriteSeconds: 33},
		TrustedProxies: []string{"198.18.0.0/15", "198.19.0.7"},
	}
	cb.Spec.Retrieval = chatv1alpha1.RetrievalSpec{TopK: 7, HistoryTokens: ptr.To[int32](0), MinRelevancePercent: ptr.To[int32](42),
		MinSimilarityPercent: 57, DenseWeightPercent: ptr.To[int32](44),
		QueryRewrite: chatv1alpha1.QueryRewriteDisabled}
	cb.Spec.TrustedCA = &chatv1alpha1.TrustedCASpec{SecretRef: chatv1alpha1.SecretKeyRef{Name: "private-ca", Key: "bundle.pem"}}
	cb.Spec.Qdrant = &chatv1alpha1.QdrantSpec{URL: "http://qdrant:6333", Collection: "collection-contract",
		APIKeySecretRef: &chatv1alpha1.SecretKeyRef{Name: "qdrant", Key: "key"}, Search: chatv1alpha1.QdrantSearchHybrid}
	cb.Spec.OpenAI = &chatv1alpha1.OpenAISpec{BaseURL: "https://llm.example.com/v1", ChatModel: "chat-model-contract",
		EmbeddingModel: "embedding-model-contract", APIKeySecretRef: &chatv1alpha1.SecretKeyRef{Name: "openai", Key: "key"},
		Timeouts:    chatv1alpha1.OpenAITimeoutsSpec{FirstTokenSeconds: 61, IdleSeconds: 29},
		Temperature: "0.35", MaxTokens: 801, Answers: chatv1alpha1.OpenAIAnswersExtractive}
	return cb
}

// secretValues are valid values of the variables that come from Secrets.
var secretValues = map[string]string{
	envvar.DatabaseURL:       "postgres://app@db/chat",
	envvar.DatabaseDirectURL: "postgres://app@db-primary/chat",
	envvar.OpenAIAPIKey:      "sk-openai-contract",
	envvar.QdrantAPIKey:      "qdrant-key-contract",
}

// emitted is every variable the operator gives the pods of cb, with the
// Secret-backed ones set to valid values.
func emitted(t *testing.T, cb *chatv1alpha1.ChatBackend) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range specs.Env(cb) {
		env[e.Name] = e.Value
	}
	for _, r := range specs.EnvSecretRefs(&cb.Spec) {
		v, ok := secretValues[r.EnvName]
		if !ok {
			t.Fatalf("the operator emits %s from %s: add a valid value to secretValues", r.EnvName, r.Field)
		}
		env[r.EnvName] = v
	}
	podFiles(t, env)
	return env
}

// podFiles gives the variables naming mounted files (the TLS ones) files
// to read: the operator's paths exist only in the pods, so the same layout
// is made under a temporary directory, with valid certificates, and the
// values point there.
func podFiles(t *testing.T, env map[string]string) {
	t.Helper()
	root := t.TempDir()
	ca := testca.New(t, "contract CA")
	cert, key := ca.Issue(t, "app")
	for _, f := range []struct {
		dir, name string
		data      []byte
	}{
		{specs.DatabaseTLSDir, "ca.crt", ca.CertPEM},
		{specs.DatabaseTLSDir, corev1.TLSCertKey, cert},
		{specs.DatabaseTLSDir, corev1.TLSPrivateKeyKey, key},
		{specs.TrustedCADir, "ca.crt", ca.CertPEM},
	} {
		dir := filepath.Join(root, f.dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		testca.WriteFile(t, dir, f.name, f.data, 0o600)
	}
	for name, v := range env {
		if strings.HasPrefix(v, "/etc/chatbackend/") {
			env[name] = filepath.Join(root, v)
		}
	}
}

// load runs everything the server reads its environment with: `serve`'s
// settings (config.LoadFrom) and `migrate`'s database URL
// (config.MigrateURL). It returns the names the server looked up, and the
// loaded settings printed, to find values in.
func load(env map[string]string) (read map[string]bool, loaded string, err error) {
	read = map[string]bool{}
	lookup := func(name string) (string, bool) {
		read[name] = true
		return config.FromMap(env)(name)
	}
	cfg, err := config.LoadFrom(lookup)
	if err != nil {
		return read, "", err
	}
	migrateURL, err := config.MigrateURL(lookup)
	if err != nil {
		return read, "", err
	}
	return read, fmt.Sprintf("%#v %s", cfg, migrateURL), nil
}

// invalidValues are values the server must refuse, naming the variable.
var invalidValues = map[string]string{
	envvar.DatabaseURL:             "postgres://app@db:notaport/chat",
	envvar.DatabaseDirectURL:       "postgres://app@db:notaport/chat",
	envvar.BetterAuthURL:           "auth.example.com",
	envvar.JWKSURL:                 "ftp://keys.example.com/jwks",
	envvar.JWTAlgorithms:           "HS256",
	envvar.CORSAllowedOrigins:      "https://docs.example.com/docs",
	envvar.ListenAddr:              "8080",
	envvar.MetricsAddr:             ":99999",
	envvar.QdrantURL:               "qdrant:6333",
	envvar.OpenAIBaseURL:           "llm.example.com/v1",
	envvar.ChatRatePerMinute:       "0",
	envvar.ChatRateBurst:           "1.5",
	envvar.WriteRatePerMinute:      "-1",
	envvar.WriteRateBurst:          "0",
	envvar.MaxStreams:              "0",
	envvar.JWKSRefreshInterval:     "0s",
	envvar.JWTMaxTokenAge:          "-1h",
	envvar.DatabaseMaxConns:        "1001",
	envvar.DatabaseMinConns:        "-1",
	envvar.DatabaseAcquireTimeout:  "3",
	envvar.DatabaseQueryTimeout:    "0s",
	envvar.HTTPReadHeaderTimeout:   "soon",
	envvar.HTTPReadBodyTimeout:     "0s",
	envvar.HTTPIdleTimeout:         "-2m",
	envvar.HTTPRequestTimeout:      "30",
	envvar.HTTPChatTimeout:         "0s",
	envvar.HTTPStreamWriteTimeout:  "never",
	envvar.TrustedProxies:          "198.18.0.0/33",
	envvar.QdrantHybrid:            "sometimes",
	envvar.OpenAIFirstTokenTimeout: "0s",
	envvar.OpenAIIdleTimeout:       "1y",
	envvar.RAGTopK:                 "21",
	envvar.RAGHistoryTokens:        "-1",
	envvar.RAGMinRelevance:         "1.5",
	envvar.OpenAITemperature:       "hot",
	envvar.OpenAIMaxTokens:         "-5",
	envvar.RAGQueryRewrite:         "sometimes",
	envvar.RAGAnswers:              "llm",
	envvar.RAGMinSimilarity:        "-0.1",
	envvar.RAGDenseWeight:          "1.1",
	// The files the TLS variables name exist (podFiles) and hold PEM.
	envvar.DatabaseSSLMode:     "verify",
	envvar.DatabaseSSLRootCert: "/nonexistent/ca.crt",
	envvar.DatabaseSSLCert:     "/nonexistent/tls.crt",
	envvar.DatabaseSSLKey:      "/nonexistent/tls.key",
	envvar.TrustedCADir:        "certs",
}

// freeForm are variables with no invalid value: any string is a valid
// audience, collection, model name or API key (the other side, BetterAuth,
// Qdrant or the model API, is the judge). For these the test checks that the
// value reaches the server's settings instead.
var freeForm = map[string]string{
	envvar.Audience:             "any string may be a token audience",
	envvar.QdrantCollection:     "Qdrant decides which collection names exist",
	envvar.OpenAIChatModel:      "the model API decides which models exist",
	envvar.OpenAIEmbeddingModel: "the model API decides which models exist",
	envvar.OpenAIAPIKey:         "an API key is opaque",
	envvar.QdrantAPIKey:         "an API key is opaque",
}

// TestEveryEmittedVariableIsReadAndValidated: every variable the operator
// can emit is declared in envvar.All, is looked up by the server, and either
// is validated (an invalid value fails start-up with an error naming it) or
// demonstrably reaches the server's settings. A variable the server ignores
// fails this test.
func TestEveryEmittedVariableIsReadAndValidated(t *testing.T) {
	g := NewWithT(t)
	env := emitted(t, fullyPopulated())

	read, loaded, err := load(env)
	g.Expect(err).NotTo(HaveOccurred(), "the server refuses what the operator emits for a valid spec")

	for name, value := range env {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(envvar.All).To(ContainElement(name), "emitted but not declared in apiserver/envvar")
			g.Expect(read).To(HaveKey(name), "emitted but never read by the server")

			bad, hasInvalid := invalidValues[name]
			_, isFreeForm := freeForm[name]
			g.Expect(hasInvalid != isFreeForm).To(BeTrue(),
				"%s must be in exactly one of invalidValues and freeForm", name)
			if isFreeForm {
				g.Expect(loaded).To(ContainSubstring(value), "the value of %s does not reach the server's settings", name)
				return
			}
			broken := maps(env)
			broken[name] = bad
			_, _, err := load(broken)
			g.Expect(err).To(MatchError(ContainSubstring(name)), "%s=%q must be refused, naming the variable", name, bad)
		})
	}

	// No stale rows: every variable the tables describe is one the operator
	// emits for a fully populated spec.
	for _, table := range []map[string]string{invalidValues, freeForm} {
		for name := range table {
			g.Expect(env).To(HaveKey(name), "%s is in a table but the operator never emits it", name)
		}
	}
}

// TestEveryServerVariableIsReachableFromTheSpec: a setting added to the
// server (apiserver/envvar) must also be added to the CRD, or a user has to
// hand-edit a Secret to reach it.
func TestEveryServerVariableIsReachableFromTheSpec(t *testing.T) {
	env := emitted(t, fullyPopulated())
	for _, name := range envvar.All {
		if _, ok := env[name]; !ok {
			t.Errorf("%s is a server setting no ChatBackend field emits: add a typed field (and a crdToEnv row)", name)
		}
	}
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// crdToEnv is the reverse direction: every server setting the CRD exposes,
// the spec field and the variable it must become.
var crdToEnv = []struct {
	field string // JSON path in the spec
	env   string
	// value is what Env must emit for fullyPopulated(); empty for
	// Secret-backed fields, checked through EnvSecretRefs.
	value string
	ref   chatv1alpha1.SecretKeyRef
}{
	{field: "spec.auth.betterAuthURL", env: envvar.BetterAuthURL, value: "https://auth.example.com"},
	{field: "spec.auth.jwksURL", env: envvar.JWKSURL, value: "https://keys.example.com/jwks"},
	{field: "spec.auth.audience", env: envvar.Audience, value: "audience-contract"},
	{field: "spec.auth.algorithms", env: envvar.JWTAlgorithms, value: "EdDSA,RS256"},
	{field: "spec.cors.allowedOrigins", env: envvar.CORSAllowedOrigins, value: "https://docs.example.com"},
	{field: "spec.qdrant.url", env: envvar.QdrantURL, value: "http://qdrant:6333"},
	{field: "spec.qdrant.collection", env: envvar.QdrantCollection, value: "collection-contract"},
	{field: "spec.openai.baseURL", env: envvar.OpenAIBaseURL, value: "https://llm.example.com/v1"},
	{field: "spec.openai.chatModel", env: envvar.OpenAIChatModel, value: "chat-model-contract"},
	{field: "spec.openai.embeddingModel", env: envvar.OpenAIEmbeddingModel, value: "embedding-model-contract"},
	{field: "spec.limits.questionsPerMinute", env: envvar.ChatRatePerMinute, value: "21"},
	{field: "spec.limits.questionBurst", env: envvar.ChatRateBurst, value: "6"},
	{field: "spec.limits.writesPerMinute", env: envvar.WriteRatePerMinute, value: "61"},
	{field: "spec.limits.writeBurst", env: envvar.WriteRateBurst, value: "22"},
	{field: "spec.limits.maxStreams", env: envvar.MaxStreams, value: "101"},
	{field: "spec.auth.jwksRefreshIntervalSeconds", env: envvar.JWKSRefreshInterval, value: "91s"},
	{field: "spec.auth.maxTokenAgeSeconds", env: envvar.JWTMaxTokenAge, value: "3601s"},
	{field: "spec.database.pool.maxConns", env: envvar.DatabaseMaxConns, value: "17"},
	{field: "spec.database.pool.minConns", env: envvar.DatabaseMinConns, value: "13"},
	{field: "spec.database.pool.acquireTimeoutSeconds", env: envvar.DatabaseAcquireTimeout, value: "4s"},
	{field: "spec.database.pool.queryTimeoutSeconds", env: envvar.DatabaseQueryTimeout, value: "11s"},
	{field: "spec.server.timeouts.readHeaderSeconds", env: envvar.HTTPReadHeaderTimeout, value: "12s"},
	{field: "spec.server.timeouts.readBodySeconds", env: envvar.HTTPReadBodyTimeout, value: "31s"},
	{field: "spec.server.timeouts.idleSeconds", env: envvar.HTTPIdleTimeout, value: "121s"},
	{field: "spec.server.timeouts.requestSeconds", env: envvar.HTTPRequestTimeout, value: "32s"},
	{field: "spec.server.timeouts.chatSeconds", env: envvar.HTTPChatTimeout, value: "301s"},
	{field: "spec.server.timeouts.streamWriteSeconds", env: envvar.HTTPStreamWriteTimeout, value: "33s"},
	{field: "spec.server.trustedProxies", env: envvar.TrustedProxies, value: "198.18.0.0/15,198.19.0.7"},
	{field: "spec.qdrant.search", env: envvar.QdrantHybrid, value: "true"},
	{field: "spec.openai.timeouts.firstTokenSeconds", env: envvar.OpenAIFirstTokenTimeout, value: "61s"},
	{field: "spec.openai.timeouts.idleSeconds", env: envvar.OpenAIIdleTimeout, value: "29s"},
	{field: "spec.retrieval.topK", env: envvar.RAGTopK, value: "7"},
	{field: "spec.retrieval.historyTokens", env: envvar.RAGHistoryTokens, value: "0"},
	{field: "spec.retrieval.minRelevancePercent", env: envvar.RAGMinRelevance, value: "0.42"},
	{field: "spec.retrieval.minSimilarityPercent", env: envvar.RAGMinSimilarity, value: "0.57"},
	{field: "spec.retrieval.denseWeightPercent", env: envvar.RAGDenseWeight, value: "0.44"},
	{field: "spec.openai.temperature", env: envvar.OpenAITemperature, value: "0.35"},
	{field: "spec.retrieval.queryRewrite", env: envvar.RAGQueryRewrite, value: "false"},
	{field: "spec.openai.maxTokens", env: envvar.OpenAIMaxTokens, value: "801"},
	{field: "spec.openai.answers", env: envvar.RAGAnswers, value: "extractive"},
	{field: "spec.database.tls.caSecretRef", env: envvar.DatabaseSSLRootCert, value: specs.DatabaseTLSDir + "/ca.crt"},
	{field: "spec.database.tls.clientCertSecretRef", env: envvar.DatabaseSSLCert, value: specs.DatabaseTLSDir + "/tls.crt"},
	{field: "spec.trustedCA.secretRef", env: envvar.TrustedCADir, value: specs.TrustedCADir},
	{field: "spec.database.urlSecretRef", env: envvar.DatabaseURL, ref: chatv1alpha1.SecretKeyRef{Name: "db", Key: "url"}},
	{field: "spec.database.directURLSecretRef", env: envvar.DatabaseDirectURL, ref: chatv1alpha1.SecretKeyRef{Name: "db", Key: "direct"}},
	{field: "spec.qdrant.apiKeySecretRef", env: envvar.QdrantAPIKey, ref: chatv1alpha1.SecretKeyRef{Name: "qdrant", Key: "key"}},
	{field: "spec.openai.apiKeySecretRef", env: envvar.OpenAIAPIKey, ref: chatv1alpha1.SecretKeyRef{Name: "openai", Key: "key"}},
}

// TestEveryServerSettingOfTheCRDIsEmitted: each spec field that configures
// the server becomes its variable. The list of such fields is read from the
// API types (the server-facing sections of the spec), so a new field without
// a row here fails the test.
func TestEveryServerSettingOfTheCRDIsEmitted(t *testing.T) {
	cb := fullyPopulated()
	plain := map[string]string{}
	for _, e := range specs.Env(cb) {
		plain[e.Name] = e.Value
	}
	refs := specs.EnvSecretRefs(&cb.Spec)

	var fields []string
	for _, row := range crdToEnv {
		fields = append(fields, row.field)
		t.Run(row.field, func(t *testing.T) {
			g := NewWithT(t)
			if row.value != "" {
				g.Expect(plain).To(HaveKeyWithValue(row.env, row.value))
				return
			}
			g.Expect(refs).To(ContainElement(specs.EnvSecretRef{EnvName: row.env, Field: row.field, Ref: row.ref}))
			g.Expect(plain).NotTo(HaveKey(row.env), "a secret never travels as plain env")
		})
	}

	spec := reflect.TypeOf(chatv1alpha1.ChatBackendSpec{})
	var exposed []string
	for _, section := range []string{"Auth", "Database", "Qdrant", "OpenAI", "CORS", "Limits", "TrustedCA", "Retrieval", "Server"} {
		f, ok := spec.FieldByName(section)
		if !ok {
			t.Fatalf("ChatBackendSpec has no field %s", section)
		}
		exposed = append(exposed, leafFields("spec."+jsonName(f), f.Type)...)
	}
	sort.Strings(fields)
	sort.Strings(exposed)
	NewWithT(t).Expect(fields).To(Equal(exposed),
		"every server setting of the CRD needs a row in crdToEnv (and the operator must emit it)")
}

// leafFields lists the JSON paths of the settings under a spec section; a
// reference to a Secret is one setting.
func leafFields(prefix string, t reflect.Type) []string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeOf(chatv1alpha1.SecretKeyRef{}) || t == reflect.TypeOf(chatv1alpha1.LocalSecretRef{}) {
		return []string{prefix}
	}
	var out []string
	for i := range t.NumField() {
		out = append(out, leafFields(prefix+"."+jsonName(t.Field(i)), t.Field(i).Type)...)
	}
	return out
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

// TestEnvNamesAreDeclared: plain env and Secret-backed variables never
// overlap (envFrom would silently lose to env), and all are declared.
func TestEnvNamesAreDeclared(t *testing.T) {
	g := NewWithT(t)
	cb := fullyPopulated()
	for _, e := range specs.Env(cb) {
		g.Expect(envvar.All).To(ContainElement(e.Name))
		g.Expect(slices.ContainsFunc(specs.EnvSecretRefs(&cb.Spec), func(r specs.EnvSecretRef) bool { return r.EnvName == e.Name })).
			To(BeFalse(), "%s is both plain and secret", e.Name)
	}
}

// A setting whose 0 means something renders it: denseWeightPercent 0 is
// "order the hybrid candidates by BM25F", not "unset" (pgstore's default).
func TestZeroSettingsAreEmitted(t *testing.T) {
	cb := fullyPopulated()
	cb.Spec.Retrieval.DenseWeightPercent = ptr.To[int32](0)
	env := emitted(t, cb)
	if got, ok := env[envvar.RAGDenseWeight]; !ok || got != "0" {
		t.Errorf("%s = %q (set: %v), want \"0\"", envvar.RAGDenseWeight, got, ok)
	}
	cb.Spec.Retrieval.DenseWeightPercent = nil
	if got, ok := emitted(t, cb)[envvar.RAGDenseWeight]; ok {
		t.Errorf("%s = %q with denseWeightPercent unset, want it left to the server's default", envvar.RAGDenseWeight, got)
	}
}
