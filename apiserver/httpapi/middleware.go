package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatbackend/chatbackend/apiserver/httperr"
)

// unmatchedRoute labels requests no route matched, so scanners probing
// random paths cannot blow up the metrics' cardinality.
const unmatchedRoute = "unmatched"

func route(c *gin.Context) string {
	if p := c.FullPath(); p != "" {
		return p
	}
	return unmatchedRoute
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// streams counts the answer streams open now, against CHAT_MAX_STREAMS.
	streams prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatbackend_http_requests_total",
			Help: "HTTP requests answered, by method, route template and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "chatbackend_http_request_duration_seconds",
			Help: "Time to answer HTTP requests, by method and route template.",
			// Up to a minute: chat answers stream for a while.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"method", "route"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chatbackend_sse_streams_open",
			Help: "Answer streams (SSE) this replica has open now; at CHAT_MAX_STREAMS new ones get 503 too_many_streams.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.streams} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register HTTP metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		method := c.Request.Method
		if !slices.Contains(knownMethods, method) {
			method = "other"
		}
		r := route(c)
		m.requests.WithLabelValues(method, r, strconv.Itoa(c.Writer.Status())).Inc()
		m.duration.WithLabelValues(method, r).Observe(time.Since(start).Seconds())
	}
}

var knownMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions}

// probeRoutes are answered to the kubelet every few seconds per pod.
var probeRoutes = []string{"/healthz", "/readyz"}

// accessLog logs one line per request. Only the path is logged: no headers
// (Authorization) and no query string. Successful probes are not logged:
// they were every line of an idle pod's log; a failing probe still is.
// Rejected tokens (401) are logged at debug level, which serve does not
// log: a flood of bad tokens would otherwise cost a line each and bury the
// rest of the log; chatbackend_token_validations_total counts them by
// reason.
func accessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		status := c.Writer.Status()
		if status < 300 && slices.Contains(probeRoutes, c.FullPath()) {
			return
		}
		level := slog.LevelInfo
		switch {
		case status >= 500:
			level = slog.LevelError
		case status == http.StatusUnauthorized:
			level = slog.LevelDebug
		}
		ctx := c.Request.Context()
		if !log.Enabled(ctx, level) {
			return
		}
		log.LogAttrs(ctx, level, "request",
			slog.String("method", c.Request.Method),
			slog.String("path", c.Request.URL.Path),
			slog.String("route", route(c)),
			slog.Int("status", status),
			slog.Int("bytes", c.Writer.Size()),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", c.ClientIP()),
		)
	}
}

// recovery turns a handler panic into a 500 in the error format.
func recovery(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v) // the client went away; let net/http handle it
				}
				log.Error("handler panicked", "route", route(c), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if !c.Writer.Written() {
					httperr.Abort(c, http.StatusInternalServerError, httperr.CodeInternal, "internal error")
				} else {
					c.Abort()
				}
			}
		}()
		c.Next()
	}
}

// cors lets browsers on the allowed origins call the API with a bearer
// token. Other origins get no Access-Control-Allow-Origin, so browsers
// refuse them.
func cors(allowed []string) gin.HandlerFunc {
	allow := map[string]bool{}
	for _, o := range allowed {
		allow[o] = true
	}
	return func(c *gin.Context) {
		origin := c.GetHeader("Origin")
		if origin == "" {
			c.Next()
			return
		}
		h := c.Writer.Header()
		// Responses differ by Origin: caches must not mix them up.
		h.Add("Vary", "Origin")
		preflight := c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != ""
		if !allow[origin] {
			if preflight {
				httperr.Abort(c, http.StatusForbidden, "forbidden", "origin not allowed")
				return
			}
			c.Next()
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		if preflight {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			c.AbortWithStatus(http.StatusNoContent)
			return
		}
		// Without this a cross-origin page sees only the CORS-safelisted
		// response headers: it could not tell how long to wait after a 429
		// or why a token was refused on a 401.
		h.Set("Access-Control-Expose-Headers", "Retry-After, WWW-Authenticate")
		c.Next()
	}
}

// limitBody caps request bodies; decodeJSON turns the overflow into a 413.
func limitBody(n int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > n {
			httperr.Abort(c, http.StatusRequestEntityTooLarge, httperr.CodeTooLarge,
				fmt.Sprintf("request body larger than %d bytes", n))
			return
		}
		if c.Request.Body != nil {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, n)
		}
		c.Next()
	}
}
