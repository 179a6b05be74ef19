// Package httpapi is chat-apiserver's HTTP surface: the gin router, its
// middleware (recovery, access log, route-templated metrics, CORS, body
// limit, authentication, user sync), the per-user rate limits, the cap on
// streams, and the handlers.
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

	"github.com/chatbackend/chatbackend/apiserver/auth"
	"github.com/chatbackend/chatbackend/apiserver/chat"
	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/dependency"
	"github.com/chatbackend/chatbackend/apiserver/httperr"
	"github.com/chatbackend/chatbackend/apiserver/openapi"
	"github.com/chatbackend/chatbackend/apiserver/store"
	"github.com/chatbackend/chatbackend/apiserver/web"
)

// MaxBodyBytes is the largest request body accepted (413 above).
const MaxBodyBytes = 1 << 20

// MaxHeaderBytes is the http.Server's limit on a request's line and
// headers; above it net/http itself answers 431 (in plain text). It leaves
// room for a bearer token of auth.MaxTokenBytes (refused above that with a
// 431 in the error JSON) plus ordinary headers, and stays well below Go's
// default of 1 MiB, which an unauthenticated client could make every
// connection buffer.
const MaxHeaderBytes = 2 * auth.MaxTokenBytes

// DefaultUserCheckInterval is serve's UserCheckInterval: a deactivated
// user keeps access for at most 5 s, and a client making a request per
// second has its row read once every 5 requests instead of on each; the
// read was the largest cost of an authenticated read the floor does not pay
// (make bench-http).
const DefaultUserCheckInterval = 5 * time.Second

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
	// ChatRateLimit is each user's budget of questions (POST
	// .../messages, /agents/run), WriteRateLimit of every other write
	// route; both shared by every replica through the database (both
	// numbers positive; config resolves the defaults).
	ChatRateLimit  RateLimit
	WriteRateLimit RateLimit
	// MaxStreams caps the answers this replica streams at once (positive).
	MaxStreams int
	// CORSAllowedOrigins are the exact origins (scheme://host[:port]) that
	// browsers may call the API from.
	CORSAllowedOrigins []string
	// TrustedProxies are the peers (IPs, CIDRs) whose X-Forwarded-For and
	// X-Real-IP name the client in the access log. Empty: none; the
	// headers are ignored and the TCP peer is logged, so a client cannot
	// put any address it likes in the log.
	TrustedProxies []string
	// ShuttingDown is closed when the server starts shutting down; from
	// then on /readyz answers 503 so that the pod leaves the Service's
	// endpoints while it drains. Nil: never.
	ShuttingDown <-chan struct{}
	// Timeouts gives each request its deadline (RequestTimeout, ChatTimeout
	// on the chat routes; zero: none). NewServer applies the others.
	Timeouts config.HTTP
	// UserCheckInterval is how long a user whose row was found active is
	// let in without reading the row again (users.is_active), per replica:
	// how late a deactivation may take effect. Zero: read on every request.
	// serve sets DefaultUserCheckInterval.
	UserCheckInterval time.Duration
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
	for _, l := range []RateLimit{d.ChatRateLimit, d.WriteRateLimit} {
		if l.PerMinute <= 0 || l.Burst <= 0 {
			return nil, errors.New("httpapi: the rate limits need a positive rate and burst")
		}
	}
	if d.MaxStreams <= 0 {
		return nil, errors.New("httpapi: MaxStreams must be positive")
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
	// gin trusts every peer's X-Forwarded-For unless told otherwise.
	if err := r.SetTrustedProxies(d.TrustedProxies); err != nil {
		return nil, fmt.Errorf("httpapi: trusted proxies: %w", err)
	}

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

	h := &handlers{store: d.Store, chat: d.Chat, auth: d.Auth, log: d.Logger, users: newUserCache(10000, d.UserCheckInterval),
		heartbeat: d.Heartbeat, streamWrite: d.Timeouts.StreamWriteTimeout, stopping: d.ShuttingDown, deps: d.Dependencies, streams: newStreamSlots(d.MaxStreams, m.streams)}
	// Every write route spends a token of one of the user's budgets.
	chatBudget := limit(budget{name: budgetChat, limit: d.ChatRateLimit})
	writeBudget := limit(budget{name: budgetWrite, limit: d.WriteRateLimit})

	// Probes, the API description and the browser files: no authentication.
	r.GET("/healthz", h.healthz)
	r.GET("/readyz", h.readyz)
	r.GET(openapi.Route, openapi.Handler())
	// The chat widget and the browser client (apiserver/web), for any page.
	for _, a := range web.Assets {
		r.GET(a.Path, a.Handler())
	}
	r.GET(web.VersionedRoute, web.VersionedHandler())

	// Everything else needs a verified user whose users row exists.
	authn := []gin.HandlerFunc{d.Auth.Middleware(), h.syncUser}
	v1 := r.Group("/v1", authn...)
	v1.GET("/me", h.me)
	v1.POST("/conversations", writeBudget, h.createConversation)
	v1.GET("/conversations", h.listConversations)
	v1.GET("/conversations/:id", h.getConversation)
	v1.PATCH("/conversations/:id", writeBudget, h.renameConversation)
	v1.DELETE("/conversations/:id", writeBudget, h.deleteConversation)
	v1.GET("/conversations/:id/messages", h.listMessages)
	v1.POST("/conversations/:id/messages", chatBudget, h.postMessage)
	v1.POST("/conversations/:id/messages/:messageID/stop", writeBudget, h.stopAnswer)
	v1.POST("/conversations/:id/messages/:messageID/regenerate", chatBudget, h.regenerate)
	v1.POST("/messages/:id/feedback", writeBudget, h.feedback)

	agents := r.Group("/agents", authn...)
	agents.POST("/run", chatBudget, h.agentsRun)
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
