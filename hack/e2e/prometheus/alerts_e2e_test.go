//go:build e2e && linux

package prometheuse2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatbackend/chatbackend/controllers/specs/alerts"
	"github.com/chatbackend/chatbackend/internal/betterauthtest"
	"github.com/chatbackend/chatbackend/internal/pgtest"
	"github.com/chatbackend/chatbackend/internal/testutil"
	"github.com/chatbackend/chatbackend/internal/version"
)

const (
	// The labels a ServiceMonitor would give the ChatBackend "e2e-chat" in
	// namespace "e2e": the rules are scoped to them.
	testNamespace = "e2e"
	testJob       = "e2e-chat"

	// jwksRefreshInterval makes chat-apiserver refetch the JWKS every second,
	// so that a JWKS limit of seconds (testParams) is meaningful: healthy, the
	// last success is never more than about a second old.
	jwksRefreshInterval = "1s"
)

// jwksProxy stands between chat-apiserver and BetterAuth's JWKS so the test
// can take the JWKS endpoint down and bring it back, as a load balancer in
// front of a dead BetterAuth would answer.
type jwksProxy struct {
	*httptest.Server
	down atomic.Bool
}

func startJWKSProxy(t testing.TB, upstream string) *jwksProxy {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatalf("parse JWKS URL: %v", err)
	}
	p := &jwksProxy{}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.Out.URL.Scheme, r.Out.URL.Host, r.Out.URL.Path = target.Scheme, target.Host, target.Path
		r.Out.Host = target.Host
	}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// chatAPIServer builds chat-apiserver as it ships (or uses $CHAT_APISERVER).
func chatAPIServer(t testing.TB, root string) string {
	t.Helper()
	if p := os.Getenv("CHAT_APISERVER"); p != "" {
		return p
	}
	out := filepath.Join(t.TempDir(), "chat-apiserver")
	runCommand(t, root, os.Environ(), "go", "build", "-tags", version.APIServerTags, "-o", out, "./apiserver/cmd/chat-apiserver")
	return out
}

// trafficStats counts what a load generator sent, by kind of token, and how
// it was answered.
type trafficStats struct {
	mu     sync.Mutex
	sent   map[string]int
	status map[string]map[int]int
	errors []string
}

func (s *trafficStats) record(kind string, status int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sent == nil {
		s.sent, s.status = map[string]int{}, map[string]map[int]int{}
	}
	s.sent[kind]++
	if err != nil {
		s.errors = append(s.errors, err.Error())
		return
	}
	if s.status[kind] == nil {
		s.status[kind] = map[int]int{}
	}
	s.status[kind][status]++
}

// answered returns how many requests with tokens of kind were sent and how
// many of them got status, and the transport errors of all kinds.
func (s *trafficStats) answered(kind string, status int) (sent, got int, errs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent[kind], s.status[kind][status], append([]string(nil), s.errors...)
}

// generator sends GET target every period with the token next returns (and
// its kind, for the counts) until stopped. A request is never abandoned
// half-way, so every counted request reached the server.
type generator struct {
	stats *trafficStats
	quit  chan struct{}
	done  chan struct{}
	once  sync.Once
}

func startTraffic(target string, period time.Duration, next func() (kind, token string)) *generator {
	g := &generator{stats: &trafficStats{}, quit: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second}
	go func() {
		defer close(g.done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-g.quit:
				return
			case <-tick.C:
			}
			kind, token := next()
			req, err := http.NewRequest(http.MethodGet, target, nil)
			if err != nil {
				g.stats.record(kind, 0, err)
				continue
			}
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				g.stats.record(kind, 0, err)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			g.stats.record(kind, resp.StatusCode, nil)
		}
	}()
	return g
}

func (g *generator) stop() { g.once.Do(func() { close(g.quit) }); <-g.done }

// tamper flips the signature of a valid JWT: same header and kid, so the
// verifier finds the key and the signature check fails.
func tamper(t testing.TB, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token is not a JWS compact serialization")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) == 0 {
		t.Fatalf("decode token signature: %v", err)
	}
	sig[0] ^= 0xff
	parts[2] = base64.RawURLEncoding.EncodeToString(sig)
	return strings.Join(parts, ".")
}

func TestPrometheusScrapesAndAlerts(t *testing.T) {
	root := repoRoot(t)
	promBin := prometheusBinary(t, root)
	apiBin := chatAPIServer(t, root)

	// Real dependencies: PostgreSQL and BetterAuth, with a switchable proxy
	// in front of the JWKS.
	dbURL := pgtest.New(t)
	ba := betterauthtest.Start(t)
	ba.SignUp(t, "ada@example.com", "Ada", "correct horse battery staple")
	token := ba.Token(t, "ada@example.com", "correct horse battery staple")
	jwks := startJWKSProxy(t, ba.JWKSURL)

	listen, metrics := testutil.FreeAddr(t), testutil.FreeAddr(t)
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"DATABASE_URL=" + dbURL,
		"BETTER_AUTH_URL=" + ba.URL,
		"JWKS_URL=" + jwks.URL,
		"JWKS_REFRESH_INTERVAL=" + jwksRefreshInterval,
		"LISTEN_ADDR=" + listen,
		"METRICS_ADDR=" + metrics,
	}
	runCommand(t, root, env, apiBin, "migrate")
	api := startProcess(t, "chat-apiserver", apiBin, env, "serve")
	apiURL := "http://" + listen
	waitHTTP(t, api, apiURL+"/readyz", 60*time.Second)

	// Prometheus with the operator's rules, rendered through the same
	// builder path (RuleGroupsFor) and written as prometheus-operator would.
	params := testParams(testNamespace, testJob)
	groups, err := alerts.RuleGroupsFor(params)
	if err != nil {
		t.Fatalf("render rules: %v", err)
	}
	wantRules := 0
	for _, g := range groups {
		wantRules += len(g.Rules)
	}
	ruleFile, err := alerts.MarshalRuleFile(groups)
	if err != nil {
		t.Fatalf("marshal rules: %v", err)
	}
	prom := startPrometheus(t, promBin, scrapeTarget{
		Job:    testJob,
		Addr:   metrics,
		Labels: map[string]string{"namespace": testNamespace},
	}, ruleFile)
	sel := fmt.Sprintf(`namespace=%q, job=%q`, testNamespace, testJob)
	isOne := func(v *float64) bool { return v != nil && *v == 1 }

	// --- Healthy. ---------------------------------------------------------
	prom.eventually(t, 30*time.Second, `up{`+sel+`}`, "chat-apiserver scraped", isOne)
	// Every rule loaded and evaluates without error against real series.
	ruleCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		rs, err := prom.rules(ruleCtx)
		if err == nil && len(rs) == wantRules && allHealthy(rs) {
			break
		}
		if ruleCtx.Err() != nil {
			t.Fatalf("alert rules not all loaded and healthy: %+v (err %v)", rs, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// The JWKS is refreshed every second: the test-sized limit relies on it.
	before := prom.eventually(t, 10*time.Second, `chatbackend_jwks_refresh_total{`+sel+`, result="success"}`,
		"JWKS refreshes counted", func(v *float64) bool { return v != nil && *v >= 1 })
	prom.eventually(t, 15*time.Second, `chatbackend_jwks_refresh_total{`+sel+`, result="success"}`,
		"JWKS refreshed every "+jwksRefreshInterval+" (chat-apiserver must honour JWKS_REFRESH_INTERVAL)",
		func(v *float64) bool { return v != nil && *v >= before+3 })
	prom.eventually(t, 10*time.Second, `chatbackend_jwks_keys{`+sel+`}`, "JWKS keys cached",
		func(v *float64) bool { return v != nil && *v >= 1 })

	watcher := watchAlerts(t, prom)
	good := startTraffic(apiURL+"/v1/me", 200*time.Millisecond, func() (string, string) { return "ok", token })
	defer good.stop()
	healthyFrom := time.Now()
	// Enough valid traffic for the token rule's minimum rate, so "not
	// firing" below means a low failure ratio, not an idle server.
	prom.eventually(t, 30*time.Second,
		fmt.Sprintf(`sum(rate(chatbackend_token_validations_total{%s, result="ok"}[%ds]))`, sel, int(params.TokenWindow.Seconds())),
		"valid token traffic above the alert's minimum rate", func(v *float64) bool { return v != nil && *v > 0.5 })
	time.Sleep(params.For.TokenFailureRatioHigh + 3*time.Second)
	for _, name := range []string{"ChatBackendJWKSRefreshFailing", "ChatBackendTokenFailureRatioHigh", "ChatBackendAPIDown", "ChatBackendHTTP5xxRatioHigh"} {
		if obs := watcher.since(name, healthyFrom); len(obs) > 0 {
			t.Fatalf("%s was %s while chat-apiserver was healthy: %+v", name, obs[0].Alert.State, obs[0].Alert)
		}
	}

	// --- Token failures: garbage and tampered tokens. ---------------------
	bad := tamper(t, token)
	var n atomic.Int64
	tokensFrom := time.Now()
	// 20 bad tokens a second, alternating garbage and a tampered signature,
	// against 5 valid ones.
	attack := startTraffic(apiURL+"/v1/me", 50*time.Millisecond, func() (string, string) {
		if n.Add(1)%2 == 0 {
			return "malformed", "garbage-not-a-jwt"
		}
		return "bad_signature", bad
	})
	firing := watcher.waitPendingThenFiring(t, "ChatBackendTokenFailureRatioHigh", tokensFrom, 60*time.Second)
	attack.stop()
	checkAlert(t, firing, "warning", "alerts#chatbackendtokenfailureratiohigh")
	if !strings.Contains(firing.Annotations["description"], testNamespace+"/"+testJob) {
		t.Errorf("description does not name the ChatBackend: %q", firing.Annotations["description"])
	}
	// Every bad token got a 401, and the counters Prometheus scraped equal
	// what was sent, by class of failure.
	for _, result := range []string{"malformed", "bad_signature"} {
		sent, got, errs := attack.stats.answered(result, http.StatusUnauthorized)
		if len(errs) > 0 || sent == 0 || got != sent {
			t.Fatalf("%s tokens: %d sent, %d answered 401 (errors %v)", result, sent, got, errs)
		}
		want := float64(sent)
		prom.eventually(t, 10*time.Second, `chatbackend_token_validations_total{`+sel+`, result="`+result+`"}`,
			fmt.Sprintf("%d %s validations", sent, result), func(v *float64) bool { return v != nil && *v == want })
		t.Logf("token failures: %d %s, all counted by Prometheus", sent, result)
	}

	// --- JWKS outage. -----------------------------------------------------
	errorsBefore := prom.eventually(t, 5*time.Second, `chatbackend_jwks_refresh_total{`+sel+`, result="error"}`,
		"JWKS refresh errors before the outage", func(v *float64) bool { return v != nil })
	jwksFrom := time.Now()
	jwks.down.Store(true)
	firing = watcher.waitPendingThenFiring(t, "ChatBackendJWKSRefreshFailing", jwksFrom, 60*time.Second)
	checkAlert(t, firing, "warning", "alerts#chatbackendjwksrefreshfailing")
	if firing.Labels["instance"] != metrics {
		t.Errorf("JWKS alert instance = %q, want the scraped pod %q", firing.Labels["instance"], metrics)
	}
	prom.eventually(t, 10*time.Second, `chatbackend_jwks_refresh_total{`+sel+`, result="error"}`,
		"JWKS refresh errors counted during the outage", func(v *float64) bool { return v != nil && *v >= errorsBefore+3 })
	// The last success stops moving: its age passes the limit.
	limit := params.JWKSMaxAge.Seconds()
	prom.eventually(t, 20*time.Second, `time() - chatbackend_jwks_last_success_timestamp_seconds{`+sel+`}`,
		"last JWKS success older than the limit", func(v *float64) bool { return v != nil && *v > limit })
	// Tokens of cached keys keep working through the outage.
	if sent, got, errs := good.stats.answered("ok", http.StatusOK); len(errs) > 0 || got != sent {
		t.Fatalf("valid tokens: %d sent, %d answered 200 (the JWKS outage must not reject cached keys; errors %v)", sent, got, errs)
	}
	// JWKS back: the alert resolves without a restart.
	jwks.down.Store(false)
	prom.waitGone(t, "ChatBackendJWKSRefreshFailing", 20*time.Second)

	// --- Database outage: 5xx. ---------------------------------------------
	good.stop()
	if obs := watcher.since("ChatBackendHTTP5xxRatioHigh", healthyFrom); len(obs) > 0 {
		t.Fatalf("ChatBackendHTTP5xxRatioHigh was %s before any 5xx: %+v", obs[0].Alert.State, obs[0].Alert)
	}
	cutDatabase(t, dbURL)
	dbFrom := time.Now()
	listing := startTraffic(apiURL+"/v1/conversations", 100*time.Millisecond, func() (string, string) { return "list", token })
	firing = watcher.waitPendingThenFiring(t, "ChatBackendHTTP5xxRatioHigh", dbFrom, 60*time.Second)
	listing.stop()
	checkAlert(t, firing, "critical", "alerts#chatbackendhttp5xxratiohigh")
	// An unreachable database is answered 503 unavailable (with
	// Retry-After), not 500: the request can be retried, and the pod stays
	// ready. The alert counts every 5xx.
	sent, got503, errs := listing.stats.answered("list", http.StatusServiceUnavailable)
	if len(errs) > 0 || got503 == 0 || got503 != sent {
		t.Fatalf("conversation listings without a database: %d sent, %d answered 503 (errors %v)", sent, got503, errs)
	}
	// Counted under the route template and the status code.
	want503 := float64(got503)
	prom.eventually(t, 10*time.Second,
		`sum(chatbackend_http_requests_total{`+sel+`, method="GET", route="/v1/conversations", code="503"})`,
		fmt.Sprintf("%d GET /v1/conversations 503s", got503), func(v *float64) bool { return v != nil && *v == want503 })
	t.Logf("database outage: %d requests answered 503, all counted by Prometheus", got503)

	// --- API down. ---------------------------------------------------------
	downFrom := time.Now()
	if err := api.stop(15 * time.Second); err != nil {
		t.Errorf("chat-apiserver did not shut down cleanly on SIGTERM: %v", err)
	}
	firing = watcher.waitPendingThenFiring(t, "ChatBackendAPIDown", downFrom, 30*time.Second)
	checkAlert(t, firing, "critical", "alerts#chatbackendapidown")
	prom.eventually(t, 5*time.Second, `up{`+sel+`}`, "chat-apiserver reported down",
		func(v *float64) bool { return v != nil && *v == 0 })

	// No token in any log line.
	logs := api.out.String()
	for name, secret := range map[string]string{"valid token": token, "tampered token": bad, "garbage token": "garbage-not-a-jwt"} {
		if strings.Contains(logs, secret) {
			t.Errorf("chat-apiserver logged a %s", name)
		}
	}
}

// cutDatabase makes the database of dbURL refuse new connections and ends
// the open ones: to chat-apiserver, the database is gone. pgtest still drops
// it at the end (DROP DATABASE needs no connection to it).
func cutDatabase(t testing.TB, dbURL string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatalf("parse the test database URL: %v", err)
	}
	// From the maintenance database: PostgreSQL refuses to lock out the
	// database the statement runs in.
	name := cfg.Database
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect to the postgres database: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH ALLOW_CONNECTIONS false"); err != nil {
		t.Fatalf("refuse connections to %s: %v", name, err)
	}
	if _, err := conn.Exec(ctx,
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name); err != nil {
		t.Fatalf("end connections to %s: %v", name, err)
	}
}

func allHealthy(rs []ruleHealth) bool {
	for _, r := range rs {
		if r.Health != "ok" || r.LastError != "" {
			return false
		}
	}
	return true
}

// checkAlert checks the labels and annotations every alert carries.
func checkAlert(t testing.TB, a alert, severity, runbookSuffix string) {
	t.Helper()
	if a.Labels["namespace"] != testNamespace || a.Labels["job"] != testJob || a.Labels["severity"] != severity {
		t.Errorf("%s labels = %v, want namespace=%s job=%s severity=%s", a.Labels["alertname"], a.Labels, testNamespace, testJob, severity)
	}
	for _, k := range []string{"summary", "description", "runbook_url"} {
		if strings.TrimSpace(a.Annotations[k]) == "" {
			t.Errorf("%s has no %s annotation", a.Labels["alertname"], k)
		}
	}
	want := alerts.RunbookBaseURL + "#" + strings.TrimPrefix(runbookSuffix, "alerts#")
	if a.Annotations["runbook_url"] != want {
		t.Errorf("%s runbook_url = %q, want %q", a.Labels["alertname"], a.Annotations["runbook_url"], want)
	}
	// Prometheus expanded its templates: no {{ left over.
	for k, v := range a.Annotations {
		if strings.Contains(v, "{{") {
			t.Errorf("%s annotation %s not expanded: %q", a.Labels["alertname"], k, v)
		}
	}
}
