package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatbackend/chatbackend/apiserver/httpapi"
)

// With a user check interval (serve: DefaultUserCheckInterval) a replica
// that found a user's row active lets them in without reading it again for
// that long: a deactivation takes effect within the interval, not at once,
// and from then on on every request (only "active" is remembered), while a
// reactivation takes effect at once. A row removed within the interval
// makes a write answer 503 (never a 500 on the foreign key), and the retry
// creates the row again.
func TestUserCheckInterval(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	e := newEnv(t, func(_ *env, d *httpapi.Deps) { d.UserCheckInterval = time.Hour })
	id, token := e.user("interval@example.com", "Interval")
	conv := e.newConversation(token)
	setActive := func(active bool) {
		_, err := e.pool.Exec(ctx, `UPDATE users SET is_active = $2 WHERE id = $1`, id, active)
		g.Expect(err).NotTo(HaveOccurred())
	}

	// Within the hour this replica does not read the row again.
	setActive(false)
	r := e.do(http.MethodGet, "/v1/conversations/"+conv, token, nil)
	g.Expect(r.status).To(Equal(http.StatusOK), "the row was read again: %s", r.body)

	// A replica checking every 300 ms: the deactivation takes effect within
	// that, and holds on every request until the user is reactivated.
	const interval = 300 * time.Millisecond
	other := *e
	d := e.deps
	d.UserCheckInterval = interval
	d.Registerer = prometheus.NewRegistry()
	h, err := httpapi.New(d)
	g.Expect(err).NotTo(HaveOccurred())
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	other.url = srv.URL
	setActive(true)
	g.Expect(other.do(http.MethodGet, "/v1/conversations/"+conv, token, nil).status).To(Equal(http.StatusOK))
	setActive(false)
	deactivated := time.Now()
	g.Eventually(func() int { return other.do(http.MethodGet, "/v1/conversations/"+conv, token, nil).status }).
		WithTimeout(10 * time.Second).WithPolling(50 * time.Millisecond).Should(Equal(http.StatusForbidden))
	// The last 200 cannot have come later than the interval after the
	// deactivation (plus one request's time on a slow machine).
	g.Expect(time.Since(deactivated)).To(BeNumerically("<", interval+5*time.Second))
	for range 3 {
		r := other.do(http.MethodGet, "/v1/conversations/"+conv, token, nil)
		g.Expect(r.status).To(Equal(http.StatusForbidden), string(r.body))
		g.Expect(errorCode(g, r)).To(Equal("user_inactive"))
	}
	setActive(true)
	g.Expect(other.do(http.MethodGet, "/v1/conversations/"+conv, token, nil).status).To(Equal(http.StatusOK))

	// Removed behind the first replica's back while it trusts the row.
	_, err = e.pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
	g.Expect(err).NotTo(HaveOccurred())
	r = e.do(http.MethodPost, "/v1/conversations", token, str(`{"title":"after removal"}`))
	g.Expect(r.status).To(Equal(http.StatusServiceUnavailable), string(r.body))
	g.Expect(errorCode(g, r)).To(Equal("unavailable"))
	g.Expect(r.header.Get("Retry-After")).NotTo(BeEmpty())
	r = e.do(http.MethodPost, "/v1/conversations", token, str(`{"title":"after removal"}`))
	g.Expect(r.status).To(Equal(http.StatusCreated), string(r.body))
	g.Expect(e.do(http.MethodGet, "/v1/me", token, nil).json()["email"]).To(Equal("interval@example.com"))
}

// A user's first request on a replica writes their row and reads whether
// it is active in one statement: GET /v1/me, which reads the row once
// more, takes two pooled connections in all (three when the write and the
// check were statements of their own, each queueing at the pool under
// load). A deactivated user's first request is refused all the same.
func TestFirstRequestSyncsTheUserInOneStatement(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	e := newEnv(t)
	_, token := e.user("first@example.com", "First")
	acquires := func() int64 { return e.pool.Stat().AcquireCount() }
	before := acquires()
	r := e.do(http.MethodGet, "/v1/me", token, nil)
	g.Expect(r.status).To(Equal(http.StatusOK), string(r.body))
	g.Expect(acquires()-before).To(Equal(int64(2)), "the user's sync and /v1/me's read")

	id, token := e.user("deactivated@example.com", "Deactivated")
	_, err := e.pool.Exec(ctx, `INSERT INTO users (id, email, name, is_active) VALUES ($1, $2, $3, false)`,
		id, "deactivated@example.com", "Deactivated")
	g.Expect(err).NotTo(HaveOccurred())
	r = e.do(http.MethodGet, "/v1/me", token, nil)
	g.Expect(r.status).To(Equal(http.StatusForbidden), string(r.body))
	g.Expect(errorCode(g, r)).To(Equal("user_inactive"))
}
