package httpapi_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/httpapi"
	"github.com/chatbackend/chatbackend/internal/testutil"
)

// The access log's client address is the TCP peer: X-Forwarded-For and
// X-Real-IP, which any client can send, are believed only from a
// configured trusted proxy.
func TestAccessLogTrustsForwardedHeadersOnlyFromTrustedProxies(t *testing.T) {
	logged := func(trusted []string) string {
		t.Helper()
		g := NewWithT(t)
		logs := &testutil.SyncBuffer{}
		h, err := httpapi.New(httpapi.Deps{Auth: noAuth{}, ChatRateLimit: httpapi.RateLimit{PerMinute: 1, Burst: 1},
			WriteRateLimit: httpapi.RateLimit{PerMinute: 1, Burst: 1}, MaxStreams: 1,
			TrustedProxies: trusted, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
		g.Expect(err).NotTo(HaveOccurred())
		srv := httptest.NewServer(h)
		defer srv.Close()
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/no/such/route", nil)
		g.Expect(err).NotTo(HaveOccurred())
		req.Header.Set("X-Forwarded-For", "198.18.0.7, 198.18.0.8")
		req.Header.Set("X-Real-IP", "198.18.0.9")
		res, err := http.DefaultClient.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(res.Body.Close()).To(Succeed())
		g.Expect(res.StatusCode).To(Equal(http.StatusNotFound))
		return logs.String()
	}
	g := NewWithT(t)
	g.Expect(logged(nil)).To(ContainSubstring(`"remote":"127.0.0.1"`), "no proxy trusted by default")
	g.Expect(logged([]string{"198.18.0.0/15"})).To(ContainSubstring(`"remote":"127.0.0.1"`), "the peer is not a trusted proxy")
	g.Expect(logged([]string{"127.0.0.1"})).To(ContainSubstring(`"remote":"198.18.0.8"`),
		"behind a trusted proxy: the nearest untrusted address of X-Forwarded-For")
	g.Expect(logged([]string{"127.0.0.0/8", "198.18.0.8"})).To(ContainSubstring(`"remote":"198.18.0.7"`))

	_, err := httpapi.New(httpapi.Deps{Auth: noAuth{}, ChatRateLimit: httpapi.RateLimit{PerMinute: 1, Burst: 1},
		WriteRateLimit: httpapi.RateLimit{PerMinute: 1, Burst: 1}, MaxStreams: 1,
		TrustedProxies: []string{"not-an-ip"}})
	g.Expect(err).To(MatchError(ContainSubstring("trusted proxies")))
}
