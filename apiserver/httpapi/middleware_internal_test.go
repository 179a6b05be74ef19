package httpapi

import (
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/internal/testutil"
)

// A handler panic answers 500 in the error format, without the panic's
// text, and the server keeps answering. (No route of the API panics on
// purpose, so the middleware is tested on its own.)
func TestRecoveryAnswers500InTheErrorFormat(t *testing.T) {
	g := NewWithT(t)
	var logs testutil.SyncBuffer
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(recovery(slog.New(slog.NewJSONHandler(&logs, nil))))
	r.GET("/boom", func(*gin.Context) { panic("kaboom") })
	r.GET("/fine", func(c *gin.Context) { c.Status(204) })

	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest("GET", "/boom", nil))
	g.Expect(w.Code).To(Equal(500))
	g.Expect(w.Body.String()).To(MatchJSON(`{"error":{"code":"internal","message":"internal error"}}`))
	g.Expect(logs.String()).To(And(ContainSubstring("handler panicked"), ContainSubstring("kaboom")))

	w = httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest("GET", "/fine", nil))
	g.Expect(w.Code).To(Equal(204))
}
