// Package httpapi is chat-apiserver's HTTP surface: the gin router, its
// middleware (recovery, access log, route-templated metrics, CORS, body
// limit, authentication, user sync, per-user rate limit) and the handlers.
// Handlers decode input, call the store or the chat service, and map their
// results and errors to JSON, SSE and the one error body (httperr).
//
// New registers every route of the server: reading it shows the whole API.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatbackend/chatbackend/apiserver/chat"
	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/dependency"
	"github.com/chatbackend/chatbackend/apiserver/httperr"
	"github.com/chatbackend/chatbackend/apiserver/openapi"
	"github.com/chatbackend/chatbackend/apiserver/store"
)

// MaxBodyBytes is the largest request body accepted (413 above).
const MaxBodyBytes = 1 << 20

// ReadyzTimeout bounds the database check /readyz reports in its body. The
// kubelet's readiness probe timeout must be above it, or a slow database
// would make the probe itself time out: the operator sets 3 s.
const ReadyzTimeout = 1 * time.Second

// Authenticator verifies bearer tokens; *auth.Verifier implements it.
type Authenticator interface {
	// Middleware answers 401 unless the request carries a valid token, and
	// stores the identity for auth.IdentityFrom.
	Middleware() gin.HandlerFunc
	// Ready is nil once the JWKS has been loaded.
	Ready() error
}

// Deps are the router's collaborators and settings.
type Deps struct {
	Store *store.Store
	Chat  *chat.Service
	Auth  Authenticator
	// ChatRateLimit is each user's budget of chat requests (both numbers
	// positive; config resolves the defaults).
	ChatRateLimit RateLimit
	// CORSAllowedOrigins are the exact origins (scheme://host[:port]) that
	// browsers may call the API from.
	CORSAllowedOrigins []string
	// ShuttingDown is closed when the server starts shutting down; from
	// then on /readyz answers 503 so that the pod leaves the Service's
	// endpoints while it drains. Nil: never.
	ShuttingDown <-chan struct{}
	// Timeouts gives each request its deadline (RequestTimeout, ChatTimeout
	// on the chat routes; zero: none). NewServer applies the others.
	Timeouts config.HTTP
	// Heartbeat is the interval of SSE heartbeat comments. Default:
	// DefaultHeartbeat.
	Heartbeat time.Duration
	// Logger gets the access log and handler errors. Default: slog.Default().
	Logger *slog.Logger
	// Registerer gets the HTTP metrics. Default: a private registry.
	Registerer prometheus.Registerer
	// Dependencies gets the outcome of /readyz's database ping. Nil: none.
	Dependencies *dependency.Gauges
}

// New builds the router with every route of the API.
func New(d Deps) (http.Handler, error) {
	if d.ChatRateLimit.PerMinute <= 0 || d.ChatRateLimit.Burst <= 0 {
		return nil, errors.New("httpapi: the chat rate limit needs a positive rate and burst")
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Registerer == nil {
		d.Registerer = prometheus.NewRegistry()
	}
	if d.Heartbeat <= 0 {
		d.Heartbeat = DefaultHeartbeat
	}
	m, err := newMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	// An API answers 404/405 in its own JSON instead of redirecting.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true

	// Order matters: the access log and metrics see the final status,
	// including the 500 that recovery writes after a panic.
	r.Use(accessLog(d.Logger), m.middleware(), recovery(d.Logger), cors(d.CORSAllowedOrigins), limitBody(MaxBodyBytes),
		deadline(d.Timeouts))
	r.NoRoute(func(c *gin.Context) {
		httperr.Abort(c, http.StatusNotFound, httperr.CodeNotFound, "no such route")
	})
	r.NoMethod(func(c *gin.Context) {
		httperr.Abort(c, http.StatusMethodNotAllowed, httperr.CodeMethodNotAllowed, "method not allowed on this route")
	})

	h := &handlers{store: d.Store, chat: d.Chat, auth: d.Auth, log: d.Logger, users: newUserCache(10000),
		heartbeat: d.Heartbeat, streamWrite: d.Timeouts.StreamWriteTimeout, stopping: d.ShuttingDown, deps: d.Dependencies}
	limited := newUserLimiter(d.ChatRateLimit).middleware

	// Probes and the API description: no authentication.
	r.GET("/healthz", h.healthz)
	r.GET("/readyz", h.readyz)
	r.GET(openapi.Route, openapi.Handler())

	// Everything else needs a verified user whose users row exists.
	authn := []gin.HandlerFunc{d.Auth.Middleware(), h.syncUser}
	v1 := r.Group("/v1", authn...)
	v1.GET("/me", h.me)
	v1.POST("/conversations", h.createConversation)
	v1.GET("/conversations", h.listConversations)
	v1.GET("/conversations/:id", h.getConversation)
	v1.PATCH("/conversations/:id", h.renameConversation)
	v1.DELETE("/conversations/:id", h.deleteConversation)
	v1.GET("/conversations/:id/messages", h.listMessages)
	v1.POST("/conversations/:id/messages", limited, h.postMessage)
	v1.POST("/messages/:id/feedback", h.feedback)

	agents := r.Group("/agents", authn...)
	agents.POST("/run", limited, h.agentsRun)
	return r, nil
}

func (h *handlers) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz answers 503 only for what is wrong with this pod: it is shutting
// down, it never loaded the JWKS (so it can verify no token), or its
// database's schema is older than this binary's newest migration (its
// queries would fail: the pod was started against a database nobody
// migrated for it). The database's reachability is checked and reported in
// the body, but does not make the pod unready.
//
// Why: every replica shares the database. Were readiness to follow it, a
// database outage would take every pod out of the Service at once, and
// clients would get connection refused instead of an answer; Kubernetes'
// guidance is that readiness must not fail on a dependency all replicas
// share. Instead each request that needs the database answers 503
// "unavailable" with Retry-After while it cannot be reached (see fail).
func (h *handlers) readyz(c *gin.Context) {
	select {
	case <-h.stopping:
		httperr.Abort(c, http.StatusServiceUnavailable, httperr.CodeUnavailable, "shutting down")
		return
	default:
	}
	if err := h.auth.Ready(); err != nil {
		httperr.Abort(c, http.StatusServiceUnavailable, httperr.CodeUnavailable, "JWKS not loaded: "+err.Error())
		return
	}
	checks := gin.H{"database": "ok", "schema": "unknown"}
	ctx, cancel := context.WithTimeout(c.Request.Context(), ReadyzTimeout)
	defer cancel()
	err := h.store.Ping(ctx)
	h.deps.Observe(dependency.Database, err)
	if err != nil {
		h.log.Warn("readiness: database not reachable", "error", err.Error())
		checks["database"] = "unreachable"
	} else {
		schema, notReady := h.checkSchema(ctx)
		if notReady != "" {
			httperr.Abort(c, http.StatusServiceUnavailable, httperr.CodeUnavailable, notReady)
			return
		}
		checks["schema"] = schema
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok", "checks": checks})
}

// checkSchema compares the database's schema version with this binary's
// newest migration. It returns the schema check for the body ("ok", or
// "unknown" when the version cannot be read) or, when the schema is older,
// why the pod is not ready. The change is logged once, not on every probe.
func (h *handlers) checkSchema(ctx context.Context) (schema, notReady string) {
	current, latest, err := h.store.SchemaVersions(ctx)
	if err != nil {
		h.log.Warn("readiness: cannot read the schema version", "error", err.Error())
		return "unknown", ""
	}
	if current < latest {
		notReady = fmt.Sprintf("the database schema is at version %d, this server needs version %d: "+
			"run `chat-apiserver migrate` against this database", current, latest)
		if h.schemaBehind.CompareAndSwap(false, true) {
			h.log.Error("readiness: not ready: "+notReady, "schema_version", current, "required_version", latest)
		}
		return "", notReady
	}
	if h.schemaBehind.CompareAndSwap(true, false) {
		h.log.Info("readiness: the database schema is current again", "schema_version", current)
	}
	return "ok", ""
}
