// Package httpapi is chat-apiserver's HTTP surface: the gin router, its
// middleware (recovery, access log, route-templated metrics, CORS, body
// limit, authentication, user sync) and the handlers of /healthz, /readyz
// and /v1.
//
// Other packages add routes through Deps.Register, so every route shares the
// same middleware, error format and authenticated user.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatbackend/chatbackend/apiserver/httperr"
	"github.com/chatbackend/chatbackend/apiserver/openapi"
	"github.com/chatbackend/chatbackend/apiserver/store"
)

// MaxBodyBytes is the largest request body accepted (413 above).
const MaxBodyBytes = 1 << 20

// Authenticator verifies bearer tokens; *auth.Verifier implements it.
type Authenticator interface {
	// Middleware answers 401 unless the request carries a valid token, and
	// stores the identity for auth.IdentityFrom.
	Middleware() gin.HandlerFunc
	// Ready is nil once the JWKS has been loaded.
	Ready() error
}

// Groups are where routes are added; both groups require a verified user
// whose users row exists (UserID gives its id).
type Groups struct {
	V1     *gin.RouterGroup // /v1
	Agents *gin.RouterGroup // /agents
}

// Deps are the router's collaborators.
type Deps struct {
	Store *store.Store
	Auth  Authenticator
	// Logger gets the access log and handler errors. Default: slog.Default().
	Logger *slog.Logger
	// Registerer gets the HTTP metrics. Default: a private registry.
	Registerer prometheus.Registerer
	// CORSAllowedOrigins are the exact origins (scheme://host[:port]) that
	// browsers may call the API from.
	CORSAllowedOrigins []string
	// Register adds more routes (the RAG chat handlers) after the core ones.
	Register []func(Groups)
}

// New builds the router.
func New(d Deps) (http.Handler, error) {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Registerer == nil {
		d.Registerer = prometheus.NewRegistry()
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
	r.Use(accessLog(d.Logger), m.middleware(), recovery(d.Logger), cors(d.CORSAllowedOrigins), limitBody(MaxBodyBytes))
	r.NoRoute(func(c *gin.Context) {
		httperr.Abort(c, http.StatusNotFound, httperr.CodeNotFound, "no such route")
	})
	r.NoMethod(func(c *gin.Context) {
		httperr.Abort(c, http.StatusMethodNotAllowed, httperr.CodeMethodNotAllowed, "method not allowed on this route")
	})

	h := &handlers{store: d.Store, auth: d.Auth, log: d.Logger, users: newUserCache(10000)}
	r.GET("/healthz", h.healthz)
	r.GET("/readyz", h.readyz)
	r.GET(openapi.Route, openapi.Handler())

	authn := []gin.HandlerFunc{d.Auth.Middleware(), h.syncUser}
	g := Groups{V1: r.Group("/v1", authn...), Agents: r.Group("/agents", authn...)}
	g.V1.GET("/me", h.me)
	g.V1.POST("/conversations", h.createConversation)
	g.V1.GET("/conversations", h.listConversations)
	g.V1.GET("/conversations/:id", h.getConversation)
	g.V1.PATCH("/conversations/:id", h.renameConversation)
	g.V1.DELETE("/conversations/:id", h.deleteConversation)
	g.V1.GET("/conversations/:id/messages", h.listMessages)
	for _, register := range d.Register {
		register(g)
	}
	return r, nil
}

func (h *handlers) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz answers 200 only when the database answers and the JWKS has been
// loaded once; otherwise 503 naming what is missing.
func (h *handlers) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := h.store.Ping(ctx); err != nil {
		h.log.Warn("readiness: database not reachable", "error", err.Error())
		httperr.Abort(c, http.StatusServiceUnavailable, httperr.CodeUnavailable, "database not reachable")
		return
	}
	if err := h.auth.Ready(); err != nil {
		httperr.Abort(c, http.StatusServiceUnavailable, httperr.CodeUnavailable, "JWKS not loaded: "+err.Error())
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}
