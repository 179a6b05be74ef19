package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types of a ChatBackend. Each is a metav1.Condition in
// status.conditions; together they say where the rollout stands.
const (
	// ConditionReady is True when the desired state is fully realised (the
	// kstatus convention that `kubectl wait --for=condition=Ready`, Flux and
	// Argo CD rely on): the referenced Secrets resolve, the spec's image is
	// migrated on the database the env Secret points at, the Deployment
	// running it has rolled out its current template (what `kubectl rollout
	// status` waits for) and nothing is degraded. While a new version is
	// migrated or rolled out it is False (reason Migrating or RollingOut)
	// even though the previous version keeps serving: Available says that.
	ConditionReady = "Ready"
	// ConditionMigrated is True when the migrations Job of the spec's image
	// has succeeded.
	ConditionMigrated = "Migrated"
	// ConditionAvailable mirrors the Deployment's Available condition: True
	// while enough pods serve, the previous version's during an upgrade
	// included. It is the condition that says the API serves.
	ConditionAvailable = "Available"
	// ConditionDegraded is True when the operator cannot converge without
	// help: a failed migration, a missing referenced Secret, a stuck rollout
	// or an object in the way that the ChatBackend does not own.
	ConditionDegraded = "Degraded"
	// ConditionMonitoringReady is True when the ServiceMonitor and
	// PrometheusRule asked for are in place.
	ConditionMonitoringReady = "MonitoringReady"
	// ConditionProgressing is True while a change is on its way to the
	// pods: a migration runs or the Deployment rolls out, and Ready is
	// False with the same reason meanwhile. Afterwards it is False with
	// reason RolledOut, or RolloutStuck when the Deployment gave up.
	ConditionProgressing = "Progressing"
)

// Condition reasons. They are part of the API: documentation and alerting
// match on them.
const (
	ReasonReady                  = "Ready"
	ReasonSecretNotFound         = "SecretNotFound"
	ReasonSecretKeyNotFound      = "SecretKeyNotFound"
	ReasonMigrating              = "Migrating"
	ReasonMigrationSucceeded     = "MigrationSucceeded"
	ReasonMigrationFailed        = "MigrationFailed"
	ReasonWaitingForMigration    = "WaitingForMigration"
	ReasonWaitingForSecrets      = "WaitingForSecrets"
	ReasonDeploymentAvailable    = "DeploymentAvailable"
	ReasonDeploymentUnavailable  = "DeploymentUnavailable"
	ReasonAsExpected             = "AsExpected"
	ReasonCRDNotInstalled        = "CRDNotInstalled"
	ReasonMonitoringDisabled     = "Disabled"
	ReasonMonitoringReconciled   = "Reconciled"
	ReasonMonitoringApplyFailure = "ApplyFailed"
	// ReasonRollingOut: the Deployment is available but not all its pods run
	// the current template yet, or old pods are left (Progressing=True,
	// Ready=False); the previous pods serve meanwhile (Available=True).
	ReasonRollingOut = "RollingOut"
	// ReasonRolloutStuck: the Deployment exceeded its progress deadline
	// (for example an image that cannot be pulled); the previous pods keep
	// serving (Degraded=True).
	ReasonRolloutStuck = "RolloutStuck"
	// ReasonRolledOut: every pod runs the current template (Progressing=False).
	ReasonRolledOut = "RolledOut"
	// ReasonMigrationStuck: a pod of the current migrations Job cannot start
	// (an image that cannot be pulled, a missing Secret or ConfigMap, a pod
	// that stays unschedulable); the previous image keeps serving
	// (Degraded=True).
	ReasonMigrationStuck = "MigrationStuck"
	// ReasonNotReconciled: the phase that sets the condition did not run in
	// the last reconcile (an earlier error), so nothing is known.
	ReasonNotReconciled = "NotReconciled"
	// ReasonResourceConflict: an object the ChatBackend needs (its Service,
	// env Secret, Deployment...) already exists and is not controlled by
	// it. The operator leaves it untouched (Ready=False, Degraded=True):
	// taking it over would hijack someone else's traffic or credentials.
	ReasonResourceConflict = "ResourceConflict"
	// ReasonReconcileDisabled: the ChatBackend carries
	// AnnotationReconcile=ReconcileDisabled (Paused=True).
	ReasonReconcileDisabled = "ReconcileDisabled"
	// ReasonDowngradeRefused: the spec's image has a lower semantic version
	// than status.migratedImage (same repository) and AnnotationAllowDowngrade
	// does not name it. No migrations Job runs and the Deployment keeps the
	// migrated image (Degraded=True, Ready=False).
	ReasonDowngradeRefused = "DowngradeRefused"
	// ReasonRolloutDelayed: the ChatBackend follows the operator's default
	// image, which changed (an operator upgrade), and waits for its turn:
	// the operator starts the migration of at most one such ChatBackend per
	// --rollout-delay. The previous image keeps serving (Migrated=False,
	// Progressing=False, Ready=False, Degraded=False); the message says when.
	ReasonRolloutDelayed = "RolloutDelayed"
)

// ReasonEnvIgnored is the reason of the Warning Event recorded when
// spec.env names variables the operator sets itself (status.ignoredEnv).
const ReasonEnvIgnored = "EnvIgnored"

// ConditionPaused is True while AnnotationReconcile is ReconcileDisabled:
// the operator then writes nothing for the ChatBackend but this condition.
// The other conditions keep the values of the last reconcile before the
// pause (Ready is not flipped, so a maintenance pause does not page
// anyone); they are as old as their lastTransitionTime says. The condition
// is removed when reconciling resumes.
const ConditionPaused = "Paused"

// Pausing a ChatBackend: set AnnotationReconcile to ReconcileDisabled, as
// for a hand repair or a restore, and the operator neither applies nor
// deletes any of its children until the annotation is removed (or set to
// anything else).
const (
	AnnotationReconcile = "chat.chatbackend.io/reconcile"
	ReconcileDisabled   = "disabled"
)

// AnnotationRetryMigration on a ChatBackend retries a failed migration at
// once, without waiting for the backoff: set it to any value not used
// before (a timestamp, say). status.migration.retryAnnotation records the
// last value honoured.
const AnnotationRetryMigration = "chat.chatbackend.io/retry-migration"

// AnnotationAllowDowngrade on a ChatBackend lets the operator migrate and
// roll out a spec.image older than status.migratedImage (ReasonDowngradeRefused).
// Its value must be that image, exactly: an annotation left in place then
// allows this one downgrade, not a later accidental one.
const AnnotationAllowDowngrade = "chat.chatbackend.io/allow-downgrade"

// SecretKeyRef points at one key of a Secret in the ChatBackend's namespace.
type SecretKeyRef struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self != ''",message="secret name must not be empty"
	// +kubebuilder:validation:XValidation:rule="self == '' || self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="secret name must be a lowercase DNS name (letters, digits, '-' and '.')"
	Name string `json:"name"`
	// key inside the Secret's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self != ''",message="secret key must not be empty"
	// +kubebuilder:validation:XValidation:rule="self == '' || self.matches('^[-._a-zA-Z0-9]+$')",message="secret key may contain only letters, digits, '-', '_' and '.'"
	Key string `json:"key"`
}

// The URL fields refuse user info (user:password@): a ChatBackend is
// readable by everyone who may read the namespace's objects (the "view"
// role included), unlike a Secret, and the URLs also reach the pods as
// plain environment variables. Credentials belong in the *SecretRef fields.

// AuthSpec configures how the API verifies BetterAuth JWTs.
type AuthSpec struct {
	// betterAuthURL is the BetterAuth base URL; it is the tokens' issuer and,
	// unless jwksURL is set, the JWKS is fetched from <url>/api/auth/jwks.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHost() != ''",message="betterAuthURL must be an absolute http(s) URL, e.g. https://auth.example.com"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[a-zA-Z][-+.a-zA-Z0-9]*://[^/?#]*@')",message="betterAuthURL must not contain credentials (user:password@): the API only fetches the public JWKS from it"
	BetterAuthURL string `json:"betterAuthURL,omitempty"`
	// jwksURL overrides where the signing keys are fetched from.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHost() != ''",message="jwksURL must be an absolute http(s) URL"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[a-zA-Z][-+.a-zA-Z0-9]*://[^/?#]*@')",message="jwksURL must not contain credentials (user:password@): the API only fetches the public JWKS from it"
	JWKSURL string `json:"jwksURL,omitempty"`
	// audience the tokens must carry; defaults to betterAuthURL.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	Audience string `json:"audience,omitempty"`
	// algorithms accepted in token headers; defaults to EdDSA, ES256, ES512, RS256, PS256.
	// +optional
	// +kubebuilder:validation:MaxItems=10
	// +kubebuilder:validation:items:Enum=EdDSA;ES256;ES384;ES512;RS256;RS384;RS512;PS256;PS384;PS512
	// +listType=set
	Algorithms []string `json:"algorithms,omitempty"`
	// jwksRefreshIntervalSeconds is how often each replica refetches the
	// JWKS in the background (JWKS_REFRESH_INTERVAL); 300 when unset. A
	// token with an unknown key id refetches sooner anyway. At most 300:
	// the ChatBackendJWKSRefreshFailing alert fires after 10 minutes
	// without a successful fetch, which must take two failed refreshes.
	// +optional
	// +kubebuilder:validation:Minimum=5
	// +kubebuilder:validation:Maximum=300
	JWKSRefreshIntervalSeconds int32 `json:"jwksRefreshIntervalSeconds,omitempty"`
	// maxTokenAgeSeconds refuses tokens whose lifetime (exp - iat) is
	// longer (JWT_MAX_TOKEN_AGE); 86400 (a day) when unset.
	// +optional
	// +kubebuilder:validation:Minimum=60
	// +kubebuilder:validation:Maximum=2592000
	MaxTokenAgeSeconds int32 `json:"maxTokenAgeSeconds,omitempty"`
}

// DatabaseSpec says where PostgreSQL is.
type DatabaseSpec struct {
	// urlSecretRef holds the PostgreSQL URL the API uses (DATABASE_URL).
	// +required
	URLSecretRef SecretKeyRef `json:"urlSecretRef,omitzero"`
	// directURLSecretRef holds a non-pooled URL (for example bypassing
	// PgBouncer) that only the migrations Job uses, as DATABASE_DIRECT_URL.
	// +optional
	DirectURLSecretRef *SecretKeyRef `json:"directURLSecretRef,omitempty,omitzero"`
	// tls gives the API and the migrations Job the files to verify the
	// database server and to authenticate to it with a client certificate.
	// The URL's sslmode decides how they are used: verify-full checks the
	// server's certificate and host name against the CA, verify-ca (or
	// require, when a CA is given, as in libpq) the certificate only,
	// disable ignores them. A URL that names no sslmode gets verify-full
	// when caSecretRef is set.
	// +optional
	TLS *DatabaseTLSSpec `json:"tls,omitempty,omitzero"`
	// pool sizes and bounds each API replica's connection pool.
	// +optional
	Pool DatabasePoolSpec `json:"pool,omitempty,omitzero"`
}

// DatabasePoolSpec sizes and bounds each API replica's connection pool.
// Unset fields keep chat-apiserver's defaults. A wait past either timeout
// answers 503 with Retry-After instead of hanging on the database.
// +kubebuilder:validation:XValidation:rule="!has(self.minConns) || self.minConns <= (has(self.maxConns) ? self.maxConns : 10)",message="pool.minConns must not exceed pool.maxConns (10 when unset)"
type DatabasePoolSpec struct {
	// maxConns is the most connections one replica opens
	// (DATABASE_MAX_CONNS); 10 when unset. (Replicas + a rollout's surge
	// pods) × maxConns, with the Jobs' and admin sessions, must fit the
	// server's (or the pooler's) max_connections.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MaxConns int32 `json:"maxConns,omitempty"`
	// minConns is how many of those connections one replica opens at
	// start-up and keeps open (DATABASE_MIN_CONNS); all of them (maxConns)
	// when unset, so that a burst finds them open. 0 opens each as
	// requests need it and lets idle ones close: for a tight connection
	// budget (a serverless database's, say).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	MinConns *int32 `json:"minConns,omitempty"`
	// acquireTimeoutSeconds bounds the wait for a pooled connection
	// (DATABASE_ACQUIRE_TIMEOUT); 3 when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=600
	AcquireTimeoutSeconds int32 `json:"acquireTimeoutSeconds,omitempty"`
	// queryTimeoutSeconds bounds each statement (DATABASE_QUERY_TIMEOUT);
	// 10 when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	QueryTimeoutSeconds int32 `json:"queryTimeoutSeconds,omitempty"`
}

// DatabaseTLSSpec references the TLS material for PostgreSQL. The files are
// mounted read-only under /etc/chatbackend/database-tls and named by
// libpq's PGSSLROOTCERT, PGSSLCERT and PGSSLKEY (a parameter of the same
// meaning in the URL wins). A change to the referenced Secrets rolls the
// API pods, which read the files when they connect first.
// +kubebuilder:validation:MinProperties=1
type DatabaseTLSSpec struct {
	// caSecretRef is a Secret key holding the PEM certificate(s) of the CA
	// that signed the database server's certificate (ca.crt of a
	// cert-manager Secret, say).
	// +optional
	CASecretRef *SecretKeyRef `json:"caSecretRef,omitempty,omitzero"`
	// clientCertSecretRef names a kubernetes.io/tls Secret whose tls.crt
	// and tls.key are the client certificate and its unencrypted private
	// key, for a server that requires certificate authentication
	// (clientcert=verify-full in pg_hba.conf: the certificate's common name
	// must be the URL's user).
	// +optional
	ClientCertSecretRef *LocalSecretRef `json:"clientCertSecretRef,omitempty,omitzero"`
}

// LocalSecretRef names a Secret in the ChatBackend's namespace.
type LocalSecretRef struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="secret name must be a lowercase DNS name (letters, digits, '-' and '.')"
	Name string `json:"name,omitempty"`
}

// TrustedCASpec is a bundle of CA certificates the API trusts for its
// outbound HTTPS and gRPC (the JWKS, Qdrant, the OpenAI-compatible
// endpoint) in addition to the public roots of its image.
type TrustedCASpec struct {
	// secretRef is a Secret key holding one or more PEM certificates
	// (trust-manager and cert-manager can write such a Secret). It is
	// mounted read-only under /etc/chatbackend/trusted-ca, which
	// SSL_CERT_DIR names; a change to it rolls the API pods.
	// +required
	SecretRef SecretKeyRef `json:"secretRef,omitzero"`
}

// QdrantSpec configures retrieval from Qdrant.
type QdrantSpec struct {
	// url of the Qdrant server.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHost() != ''",message="qdrant.url must be an absolute http(s) URL"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[a-zA-Z][-+.a-zA-Z0-9]*://[^/?#]*@')",message="qdrant.url must not contain credentials (user:password@): put the API key in a Secret and reference it with qdrant.apiKeySecretRef"
	URL string `json:"url,omitempty"`
	// collection to search.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Collection string `json:"collection,omitempty"`
	// apiKeySecretRef holds the Qdrant API key (QDRANT_API_KEY).
	// +optional
	APIKeySecretRef *SecretKeyRef `json:"apiKeySecretRef,omitempty,omitzero"`
	// search is Dense (vector similarity only, the default) or Hybrid,
	// which adds sparse lexical vectors fused with reciprocal rank fusion
	// (QDRANT_HYBRID); the collection must have been ingested with the
	// same setting.
	// +optional
	// +kubebuilder:validation:Enum=Dense;Hybrid
	Search QdrantSearch `json:"search,omitempty"`
}

// QdrantSearch is how Qdrant is searched.
type QdrantSearch string

// Qdrant search modes.
const (
	QdrantSearchDense  QdrantSearch = "Dense"
	QdrantSearchHybrid QdrantSearch = "Hybrid"
)

// OpenAISpec configures the OpenAI-compatible model endpoint.
type OpenAISpec struct {
	// apiKeySecretRef holds the API key (OPENAI_API_KEY).
	// +optional
	APIKeySecretRef *SecretKeyRef `json:"apiKeySecretRef,omitempty,omitzero"`
	// baseURL of an OpenAI-compatible API.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHost() != ''",message="openai.baseURL must be an absolute http(s) URL"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[a-zA-Z][-+.a-zA-Z0-9]*://[^/?#]*@')",message="openai.baseURL must not contain credentials (user:password@): put the API key in a Secret and reference it with openai.apiKeySecretRef"
	BaseURL string `json:"baseURL,omitempty"`
	// chatModel generates answers.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	ChatModel string `json:"chatModel,omitempty"`
	// embeddingModel embeds questions for retrieval.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	EmbeddingModel string `json:"embeddingModel,omitempty"`
	// timeouts bound the model's silences; past one the answer is stored
	// as failed.
	// +optional
	Timeouts OpenAITimeoutsSpec `json:"timeouts,omitempty,omitzero"`
	// temperature is the model's sampling temperature, a decimal from 0 to
	// 2 with at most two decimals (OPENAI_TEMPERATURE); the model server's
	// default when unset. A string because Kubernetes APIs avoid floats.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4
	// +kubebuilder:validation:Pattern=`^([01](\.[0-9]{1,2})?|2(\.00?)?)$`
	Temperature string `json:"temperature,omitempty"`
	// maxTokens bounds each answer's length in tokens (OPENAI_MAX_TOKENS);
	// the model server's limit when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MaxTokens int32 `json:"maxTokens,omitempty"`
	// answers is who writes the answers (RAG_ANSWERS): Model, the chat
	// model (the default), or Extractive, quotes of the docs with no chat
	// model, the API serving embeddings only (a local embeddings server
	// and no LLM).
	// +optional
	// +kubebuilder:validation:Enum=Model;Extractive
	Answers OpenAIAnswers `json:"answers,omitempty"`
}

// OpenAIAnswers is who writes the answers.
type OpenAIAnswers string

// Who writes the answers.
const (
	OpenAIAnswersModel      OpenAIAnswers = "Model"
	OpenAIAnswersExtractive OpenAIAnswers = "Extractive"
)

// OpenAITimeoutsSpec bounds the waits on the model. Unset fields keep
// chat-apiserver's defaults.
type OpenAITimeoutsSpec struct {
	// firstTokenSeconds is the wait for the model's first token
	// (OPENAI_FIRST_TOKEN_TIMEOUT); 60 when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	FirstTokenSeconds int32 `json:"firstTokenSeconds,omitempty"`
	// idleSeconds is the longest silence between two tokens
	// (OPENAI_IDLE_TIMEOUT); 30 when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	IdleSeconds int32 `json:"idleSeconds,omitempty"`
}

// RetrievalSpec tunes what an answer is built from. Unset fields keep
// chat-apiserver's defaults.
type RetrievalSpec struct {
	// topK is how many sources an answer draws on (RAG_TOP_K); 5 when
	// unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=20
	TopK int32 `json:"topK,omitempty"`
	// historyTokens bounds the conversation history sent to the model with
	// each question (RAG_HISTORY_TOKENS); 2000 when unset, 0 sends none.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	HistoryTokens *int32 `json:"historyTokens,omitempty"`
	// minRelevancePercent is the share of a question's term weight, in
	// percent, a passage must hold to be cited (RAG_MIN_RELEVANCE, there a
	// fraction); 35 when unset, 0 cites whatever ranks. When no passage
	// reaches it the answer says the docs do not cover the question and
	// cites nothing (grounded: false).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MinRelevancePercent *int32 `json:"minRelevancePercent,omitempty"`
	// minSimilarityPercent is a second relevance threshold, for the
	// PostgreSQL store with an embedding model: a passage whose cosine
	// similarity to the question, in percent, reaches it is cited even
	// below minRelevancePercent (RAG_MIN_SIMILARITY, there a fraction).
	// Off when unset: each embedding model has its own scale, so calibrate
	// it on your model (see the README's Answer quality).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MinSimilarityPercent int32 `json:"minSimilarityPercent,omitempty"`
	// denseWeightPercent is the dense ranking's share, in percent, of the
	// hybrid score on the PostgreSQL store with an embedding model; BM25F
	// has the rest (RAG_DENSE_WEIGHT, there a fraction). Unset: the
	// server's default (60), tuned on the project's labelled questions
	// with a small local encoder; a stronger model may deserve more.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	DenseWeightPercent *int32 `json:"denseWeightPercent,omitempty"`
	// queryRewrite is Enabled (the default) or Disabled
	// (RAG_QUERY_REWRITE): with a model, a follow-up question ("and on
	// macOS?") is rewritten into a standalone search query from the recent
	// conversation, with one short call to the model, before retrieval.
	// Disabled saves that call; the follow-up is then searched with the
	// previous question's words at a lower weight, as without a model.
	// +optional
	// +kubebuilder:validation:Enum=Enabled;Disabled
	QueryRewrite QueryRewrite `json:"queryRewrite,omitempty"`
}

// QueryRewrite says whether follow-ups are rewritten by the model.
type QueryRewrite string

// Query rewrite settings.
const (
	QueryRewriteEnabled  QueryRewrite = "Enabled"
	QueryRewriteDisabled QueryRewrite = "Disabled"
)

// ServerSpec tunes chat-apiserver's HTTP side.
type ServerSpec struct {
	// timeouts bound the waits on clients and the requests' deadlines.
	// +optional
	Timeouts ServerTimeoutsSpec `json:"timeouts,omitempty,omitzero"`
	// trustedProxies are the IP addresses and CIDRs of the proxies (an
	// ingress controller's pods, a load balancer) whose X-Forwarded-For and
	// X-Real-IP headers name the client in the access log
	// (TRUSTED_PROXIES); none when unset: the TCP peer is the client. A set.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:items:XValidation:rule="isIP(self) || isCIDR(self)",message="each trusted proxy must be an IP address or a CIDR such as 198.18.0.0/15"
	TrustedProxies []string `json:"trustedProxies,omitempty"`
}

// ServerTimeoutsSpec bounds what the API waits for. Unset fields keep
// chat-apiserver's defaults.
type ServerTimeoutsSpec struct {
	// readHeaderSeconds bounds a request's line and headers
	// (HTTP_READ_HEADER_TIMEOUT); 10 when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	ReadHeaderSeconds int32 `json:"readHeaderSeconds,omitempty"`
	// readBodySeconds bounds a request's body (HTTP_READ_BODY_TIMEOUT); 30
	// when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	ReadBodySeconds int32 `json:"readBodySeconds,omitempty"`
	// idleSeconds bounds a keep-alive connection waiting for its next
	// request (HTTP_IDLE_TIMEOUT); 120 when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	IdleSeconds int32 `json:"idleSeconds,omitempty"`
	// requestSeconds is the deadline of every API request but chat
	// (HTTP_REQUEST_TIMEOUT); 30 when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	RequestSeconds int32 `json:"requestSeconds,omitempty"`
	// chatSeconds is the deadline of a chat request, which lasts as long as
	// the model writes (HTTP_CHAT_TIMEOUT); 300 when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	ChatSeconds int32 `json:"chatSeconds,omitempty"`
	// streamWriteSeconds bounds each write of a streamed answer to a client
	// that stopped reading (HTTP_STREAM_WRITE_TIMEOUT); 30 when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	StreamWriteSeconds int32 `json:"streamWriteSeconds,omitempty"`
}

// CORSSpec lists the browser origins allowed to call the API.
type CORSSpec struct {
	// The rule below mirrors the origins check chat-apiserver makes at
	// start-up (apiserver/config), so that a ChatBackend the cluster accepts
	// never yields crash-looping pods. Commas are refused because the list
	// reaches the server as one comma-separated variable.

	// allowedOrigins are the exact origins, scheme://host[:port] such as
	// https://docs.example.com, whose pages may call the API. There is no
	// wildcard: list every origin. A set: each origin once.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=512
	// +kubebuilder:validation:items:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != '' && url(self).getEscapedPath() in ['', '/'] && !self.matches('[?#@,]')",message="each allowed origin must be an http(s) origin scheme://host[:port] such as https://docs.example.com, with no path, query, fragment or user info; '*' is not supported, list every origin",messageExpression="'allowed origin ' + self + ' is not an http(s) origin scheme://host[:port] such as https://docs.example.com: no path, query, fragment or user info; * is not supported, list every origin'"
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`
}

// LimitsSpec bounds what each user, and each replica, may ask of the API.
// Unset fields keep chat-apiserver's defaults. The per-user budgets are
// token buckets kept in the database, so they hold across every replica.
type LimitsSpec struct {
	// questionsPerMinute is each user's rate of questions (sending a
	// message, /agents/run); 20 when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	QuestionsPerMinute int32 `json:"questionsPerMinute,omitempty"`
	// questionBurst is how many questions a user may ask at once before
	// questionsPerMinute applies; 5 when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	QuestionBurst int32 `json:"questionBurst,omitempty"`
	// writesPerMinute is each user's rate of the other writes (creating,
	// renaming and deleting conversations, feedback); 60 when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	WritesPerMinute int32 `json:"writesPerMinute,omitempty"`
	// writeBurst is how many of those a user may send at once; 20 when
	// unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	WriteBurst int32 `json:"writeBurst,omitempty"`
	// maxStreams is how many answers each replica streams at once; more
	// are refused with 503 too_many_streams. 100 when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	MaxStreams int32 `json:"maxStreams,omitempty"`
}

// ServiceSpec shapes the Service in front of the API pods.
type ServiceSpec struct {
	// type of the Service; ClusterIP when unset.
	// +optional
	// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
	Type corev1.ServiceType `json:"type,omitempty"`
	// port the Service exposes the HTTP API on; 80 when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +kubebuilder:validation:XValidation:rule="self >= 1 && self <= 65535",message="service.port must be between 1 and 65535"
	Port int32 `json:"port,omitempty"`
}

// ServiceMonitorSpec configures the ServiceMonitor.
type ServiceMonitorSpec struct {
	// enabled creates a ServiceMonitor when the prometheus-operator CRDs are
	// installed; true when unset.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// interval between scrapes, e.g. 30s; Prometheus' default when unset.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$') && self != ''",message="interval must be a duration such as 30s or 1m"
	Interval string `json:"interval,omitempty"`
	// labels put on the ServiceMonitor, on top of the operator's
	// --monitoring-labels, so that Prometheus selects it: for
	// kube-prometheus-stack, release: <its Helm release name>.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Labels map[string]string `json:"labels,omitempty"`
}

// PrometheusRuleSpec configures the alerting rules.
type PrometheusRuleSpec struct {
	// enabled creates a PrometheusRule with the chatbackend alerts when the
	// prometheus-operator CRDs are installed; true when unset.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// labels put on the PrometheusRule, on top of the operator's
	// --monitoring-labels, so that Prometheus' ruleSelector selects it.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Labels map[string]string `json:"labels,omitempty"`
}

// MonitoringSpec configures Prometheus monitoring of the API.
type MonitoringSpec struct {
	// serviceMonitor configures the ServiceMonitor.
	// +optional
	ServiceMonitor ServiceMonitorSpec `json:"serviceMonitor,omitempty"`
	// prometheusRule configures the alerting rules.
	// +optional
	PrometheusRule PrometheusRuleSpec `json:"prometheusRule,omitempty"`
}

// MigrationSpec tunes the migrations Job.
type MigrationSpec struct {
	// activeDeadlineSeconds bounds a migrations Job from its start, the
	// time its pod waits to be scheduled or for its image included. Past
	// it the Job fails and is retried with backoff, so a pod that can never
	// start does not hold back every later upgrade. 600 when unset.
	// +optional
	// +kubebuilder:validation:Minimum=30
	// +kubebuilder:validation:Maximum=86400
	// +kubebuilder:validation:XValidation:rule="self >= 30 && self <= 86400",message="migration.activeDeadlineSeconds must be between 30 and 86400 (one day)"
	ActiveDeadlineSeconds int64 `json:"activeDeadlineSeconds,omitempty"`
	// resources of the migrations container; spec.resources (and the same
	// defaults) when unset. A migration usually needs less than the server.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
	// podMetadata adds labels and annotations to the migrations pod and
	// the ingest pods (a service-mesh opt-out, for example: a sidecar that
	// never exits keeps a Job from completing). spec.podMetadata does not
	// apply to them.
	// +optional
	PodMetadata *PodMetadata `json:"podMetadata,omitempty"`
}

// PodMetadata are labels and annotations added to pods. The operator's own
// (app.kubernetes.io/* labels, chat.chatbackend.io/* annotations) win over
// them: they select the pods and roll them.
type PodMetadata struct {
	// labels added to the pods.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	Labels map[string]string `json:"labels,omitempty"`
	// annotations added to the pods.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	Annotations map[string]string `json:"annotations,omitempty"`
}

// NetworkPolicySpec configures the NetworkPolicy `<name>` of the API pods.
// +kubebuilder:validation:XValidation:rule="!has(self.enabled) || !self.enabled || (has(self.ingressFrom) && size(self.ingressFrom) > 0)",message="networkPolicy.ingressFrom must name at least one peer when the policy is enabled: without one nothing could reach the API"
type NetworkPolicySpec struct {
	// enabled creates a NetworkPolicy admitting to the API pods only the
	// peers below (ingress; egress is not restricted); false when unset. It
	// takes effect only where the cluster's network plugin enforces
	// NetworkPolicies. Disabling it deletes the policy.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// ingressFrom are the peers admitted to the HTTP port: the ingress
	// controller's namespace, the namespaces of the frontends. At least one
	// when enabled.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	IngressFrom []NetworkPolicyPeer `json:"ingressFrom,omitempty"`
	// metricsFrom selects the namespaces admitted to the metrics port: the
	// monitoring namespace, where Prometheus runs
	// (kubernetes.io/metadata.name: monitoring). When unset nobody may
	// scrape the API pods.
	// +optional
	MetricsFrom *metav1.LabelSelector `json:"metricsFrom,omitempty"`
}

// NetworkPolicyPeer selects pods by their namespace, by their labels, or
// both (the pods of the selected namespaces carrying the labels), as a
// NetworkPolicy peer does; a podSelector alone selects pods of the
// ChatBackend's own namespace.
// +kubebuilder:validation:XValidation:rule="has(self.namespaceSelector) || has(self.podSelector)",message="a networkPolicy peer needs a namespaceSelector, a podSelector or both"
type NetworkPolicyPeer struct {
	// namespaceSelector selects namespaces by their labels; {} selects all.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// podSelector selects pods by their labels; {} selects all.
	// +optional
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`
}

// ChatBackendSpec is the desired state of a chat API deployment.
//
// Answers written by the chat model need its API key; chat-apiserver refuses
// to start without one, so the CRD refuses it first. The key may also come
// from env or envFrom (the operator sets no OPENAI_API_KEY of its own then).
// +kubebuilder:validation:XValidation:rule="!has(self.openai) || !has(self.openai.answers) || self.openai.answers != 'Model' || has(self.openai.apiKeySecretRef) || (has(self.envFrom) && size(self.envFrom) > 0) || (has(self.env) && self.env.exists(e, e.name == 'OPENAI_API_KEY'))",message="openai.answers Model needs the model's API key: set openai.apiKeySecretRef (without a key there is no chat model; Extractive quotes the docs instead)"
type ChatBackendSpec struct {
	// image of chat-apiserver. When unset the operator's
	// --default-apiserver-image is used, so upgrading the operator upgrades
	// the API (after its migrations).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.contains(' ')",message="image must not contain spaces"
	Image string `json:"image,omitempty"`
	// imagePullPolicy of the API and migrations containers.
	// +optional
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`
	// replicas of the API Deployment. It is also the scale subresource of
	// the ChatBackend: `kubectl scale chatbackend` and a
	// HorizontalPodAutoscaler whose scaleTargetRef is the ChatBackend write
	// it, and the Deployment follows. (An HPA must target the ChatBackend,
	// not its Deployment, whose replicas the operator owns.)
	// +optional
	// +default=2
	// +kubebuilder:validation:XValidation:rule="self >= 0",message="replicas must not be negative"
	Replicas *int32 `json:"replicas,omitempty"`
	// resources of the API container (also used by the migrations Job).
	// For each of cpu and memory that sets neither a request nor a limit the
	// operator applies its defaults: requests cpu 100m and memory 128Mi, a
	// memory limit of 512Mi (no CPU limit, which would only throttle).
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
	// nodeSelector of the API and migrations pods.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// tolerations of the API and migrations pods. Atomic, as in a Pod spec:
	// the list is replaced as a whole.
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// affinity of the API and migrations pods.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// topologySpreadConstraints of the API pods. When unset, the pods
	// spread softly over nodes (kubernetes.io/hostname, maxSkew 1,
	// ScheduleAnyway, counting the pods of the current ReplicaSet), so two
	// replicas share a node only when no other fits. Setting any
	// constraint replaces that default.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	// imagePullSecrets of the API and migrations pods, for a private
	// registry.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`
	// serviceAccountName of the API and migrations pods, for workload
	// identity (IRSA, GKE or Azure workload identity) towards the database
	// or the model endpoint; the namespace's default when unset. The
	// Kubernetes API token is still not mounted: chat-apiserver does not
	// call the Kubernetes API (workload identity webhooks project their
	// own token).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// priorityClassName of the API and migrations pods.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	PriorityClassName string `json:"priorityClassName,omitempty"`
	// podMetadata adds labels and annotations to the API pods (not the
	// migrations pod: spec.migration.podMetadata).
	// +optional
	PodMetadata *PodMetadata `json:"podMetadata,omitempty"`
	// env adds environment variables to the API and migrations containers,
	// for settings the spec has no field for. A variable the operator sets
	// itself (from the fields above or the referenced Secrets) is left out:
	// the spec's own fields win. status.ignoredEnv lists such variables and
	// a Warning Event (reason EnvIgnored) names them.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Env []corev1.EnvVar `json:"env,omitempty"`
	// envFrom adds ConfigMaps and Secrets to the API and migrations
	// containers' environment. They come before the operator's own: a key
	// the operator sets wins. Changes to them are not watched; they apply
	// when the pods restart.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	EnvFrom []corev1.EnvFromSource `json:"envFrom,omitempty"`
	// volumes added to the API and migrations pods, mounted with
	// volumeMounts. The names tmp, database-tls, trusted-ca and
	// ingest-auth-* are the operator's.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(v, !(v.name in ['tmp', 'database-tls', 'trusted-ca']) && !v.name.startsWith('ingest-auth-'))",message="volume names tmp, database-tls and trusted-ca are reserved for the operator's /tmp and TLS files, and ingest-auth-* for its git credentials"
	Volumes []corev1.Volume `json:"volumes,omitempty"`
	// volumeMounts added to the API and migrations containers. /tmp and
	// /etc/chatbackend are the operator's.
	// +optional
	// +listType=map
	// +listMapKey=mountPath
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(m, m.mountPath != '/tmp' && m.name != 'tmp')",message="mount path /tmp and volume tmp are reserved for the operator's /tmp"
	// +kubebuilder:validation:XValidation:rule="self.all(m, !(m.name in ['database-tls', 'trusted-ca']) && m.mountPath != '/etc/chatbackend' && !m.mountPath.startsWith('/etc/chatbackend/'))",message="volumes database-tls and trusted-ca and mount paths under /etc/chatbackend are reserved for the operator's TLS files"
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`
	// terminationGracePeriodSeconds of the API pods; 35 when unset, which
	// is also the least accepted: the preStop delay (5 s) and the server's
	// drain of in-flight requests and streams (25 s) must fit in it
	// (controllers/specs.TerminationGracePeriodSeconds; an envtest keeps the
	// markers equal to it). Longer lets long answers finish during a
	// rollout.
	// +optional
	// +kubebuilder:validation:Minimum=35
	// +kubebuilder:validation:Maximum=3600
	// +kubebuilder:validation:XValidation:rule="self >= 35",message="terminationGracePeriodSeconds must be at least 35: the 5 s preStop delay and the server's 25 s drain must fit in it"
	TerminationGracePeriodSeconds int64 `json:"terminationGracePeriodSeconds,omitempty"`
	// revisionHistoryLimit of the Deployment: old ReplicaSets kept for
	// `kubectl rollout undo` (rolling back is done with spec.image, though);
	// the Deployment's default of 10 when unset.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	RevisionHistoryLimit *int32 `json:"revisionHistoryLimit,omitempty"`

	// auth configures how the API verifies BetterAuth JWTs.
	// +required
	Auth AuthSpec `json:"auth,omitzero"`
	// database says where PostgreSQL is.
	// +required
	Database DatabaseSpec `json:"database,omitzero"`
	// qdrant configures retrieval from Qdrant; without it the chunks live in
	// PostgreSQL.
	// +optional
	Qdrant *QdrantSpec `json:"qdrant,omitempty,omitzero"`
	// openai configures the OpenAI-compatible model endpoint.
	// +optional
	OpenAI *OpenAISpec `json:"openai,omitempty"`
	// trustedCA adds private CAs to those the API trusts for outbound
	// HTTPS and gRPC.
	// +optional
	TrustedCA *TrustedCASpec `json:"trustedCA,omitempty,omitzero"`
	// cors lists the browser origins allowed to call the API.
	// +optional
	CORS *CORSSpec `json:"cors,omitempty"`
	// limits bounds each user's requests and each replica's streams.
	// +optional
	Limits *LimitsSpec `json:"limits,omitempty"`
	// retrieval tunes what an answer is built from.
	// +optional
	Retrieval RetrievalSpec `json:"retrieval,omitempty,omitzero"`
	// server tunes the API's timeouts and the proxies it trusts.
	// +optional
	Server ServerSpec `json:"server,omitempty,omitzero"`
	// service shapes the Service in front of the API pods.
	// +optional
	Service ServiceSpec `json:"service,omitempty"`
	// monitoring configures Prometheus monitoring of the API.
	// +optional
	Monitoring MonitoringSpec `json:"monitoring,omitempty"`
	// migration tunes the migrations Job.
	// +optional
	Migration MigrationSpec `json:"migration,omitempty"`
	// networkPolicy restricts who may reach the API pods; off when unset.
	// +optional
	NetworkPolicy *NetworkPolicySpec `json:"networkPolicy,omitempty"`
	// ingest keeps the index in sync with a git repository or a published
	// docs site, in a CronJob `<name>-ingest`; without it the index is
	// filled by hand (`chat-apiserver ingest --docs`).
	// +optional
	Ingest *IngestSpec `json:"ingest,omitempty,omitzero"`
}

// MigrationStatus records the failed attempts of the current migration
// and when the next one is due.
type MigrationStatus struct {
	// job is the migrations Job the attempts below ran in; it is named
	// after the image and the database it migrates.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Job string `json:"job,omitempty"`
	// failedAttempts of job since its last success.
	// +optional
	// +kubebuilder:validation:Minimum=1
	FailedAttempts int32 `json:"failedAttempts,omitempty"`
	// lastFailureTime is when job last failed.
	// +optional
	LastFailureTime *metav1.Time `json:"lastFailureTime,omitempty"`
	// nextRetryTime is when a failed job is retried by itself (about one
	// minute after the first failure, doubling up to one hour).
	// +optional
	NextRetryTime *metav1.Time `json:"nextRetryTime,omitempty"`
	// retryAnnotation is the last value of the
	// chat.chatbackend.io/retry-migration annotation that was honoured.
	// +optional
	// +kubebuilder:validation:MinLength=1
	RetryAnnotation string `json:"retryAnnotation,omitempty"`
}

// ChatBackendStatus is the observed state.
type ChatBackendStatus struct {
	// conditions are Ready, Progressing, Migrated, Available, Degraded,
	// MonitoringReady and, with spec.ingest, Indexed.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
	// observedGeneration is the generation the status was computed for.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// migratedImage is the last image whose migrations Job succeeded; the
	// Deployment runs this image.
	// +optional
	// +kubebuilder:validation:MinLength=1
	MigratedImage string `json:"migratedImage,omitempty"`
	// migratedDatabase is the fingerprint of the database (host, port,
	// database name and user of DATABASE_URL and DATABASE_DIRECT_URL, not
	// the password) that migratedImage was migrated on. A Secret pointing
	// somewhere else is migrated again before any pod uses it.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	MigratedDatabase string `json:"migratedDatabase,omitempty"`
	// migration tracks the failed attempts of the current migration.
	// +optional
	Migration *MigrationStatus `json:"migration,omitempty"`
	// ignoredEnv are the names of spec.env entries left out because the
	// operator sets those variables itself (from other spec fields or the
	// referenced Secrets).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	IgnoredEnv []string `json:"ignoredEnv,omitempty"`
	// The counts below are pointers because 0 is a value they report (no pod
	// ready yet, scaled to zero), not the same as unknown.

	// replicas is the desired number of API pods (spec.replicas or its
	// default), the status replicas of the scale subresource.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Replicas *int32 `json:"replicas,omitempty"`
	// selector of the API pods, in label-selector string form: the scale
	// subresource's selector, with which an HPA finds the pods whose
	// metrics it averages.
	// +optional
	// +kubebuilder:validation:MinLength=1
	Selector string `json:"selector,omitempty"`
	// readyReplicas of the Deployment: API pods passing their readiness
	// probe.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ReadyReplicas *int32 `json:"readyReplicas,omitempty"`
	// updatedReplicas of the Deployment: API pods running the current pod
	// template.
	// +optional
	// +kubebuilder:validation:Minimum=0
	UpdatedReplicas *int32 `json:"updatedReplicas,omitempty"`
	// ready is readyReplicas/replicas, e.g. "1/2", the READY column of
	// `kubectl get chatbackends` as Deployments print it (printer columns
	// cannot compute it from two fields).
	// +optional
	// +kubebuilder:validation:MinLength=1
	Ready string `json:"ready,omitempty"`
	// url of the API inside the cluster.
	// +optional
	// +kubebuilder:validation:MinLength=1
	URL string `json:"url,omitempty"`
	// ingest is what the runs of spec.ingest did.
	// +optional
	Ingest *IngestStatus `json:"ingest,omitempty"`
}

// ChatBackend deploys the chat-apiserver: an authenticated RAG chat API.
//
// The name becomes the Service's name (a DNS label) and the prefix of the
// migrations Job's name, which must fit in 63 characters.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:shortName=cb
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.ready`,description="Ready API pods / desired API pods"
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,description="Reason of the Ready condition: Ready, or what it waits for (Migrating, RollingOut, a failure)"
// +kubebuilder:printcolumn:name="Up-to-date",type=integer,JSONPath=`.status.updatedReplicas`,priority=1
// +kubebuilder:printcolumn:name="Progressing",type=string,JSONPath=`.status.conditions[?(@.type=="Progressing")].reason`,priority=1
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.status.migratedImage`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`,description="URL of the API inside the cluster"
// +kubebuilder:printcolumn:name="Indexed",type=date,JSONPath=`.status.ingest.lastSuccessTime`,priority=1,description="When an ingest run of spec.ingest last succeeded"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 46",message="metadata.name must be at most 46 characters: the migrations Job is named <name>-migrate-<8-character hash>"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must start with a letter and contain only lowercase letters, digits and '-', because it names a Service"
type ChatBackend struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +required
	Spec ChatBackendSpec `json:"spec,omitzero"`
	// status is the observed state, written by the operator.
	// +optional
	Status ChatBackendStatus `json:"status,omitempty"`
}

// ChatBackendList is a list of ChatBackends.
//
// +kubebuilder:object:root=true
type ChatBackendList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ChatBackend `json:"items"`
}
