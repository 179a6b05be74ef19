//go:build e2e && linux

package prometheuse2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chatbackend/chatbackend/controllers/specs/alerts"
	"github.com/chatbackend/chatbackend/internal/testutil"
)

// prometheusBinary finds Debian's prometheus: $PROMETHEUS, bin/prometheus
// (hack/tools.sh links it there), then PATH.
func prometheusBinary(t testing.TB, root string) string {
	t.Helper()
	if p := os.Getenv("PROMETHEUS"); p != "" {
		return p
	}
	if p := filepath.Join(root, "bin", "prometheus"); isExecutable(p) {
		return p
	}
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p
	}
	t.Fatalf("prometheus not found: run `hack/tools.sh prometheus` (make tools-prometheus)")
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// promServer is a Prometheus started by the test and a client of its HTTP API.
type promServer struct {
	URL    string
	proc   *process
	client *http.Client
}

// scrapeTarget is one static scrape job; Labels are added to its series the
// way prometheus-operator's relabelling adds namespace (and job) to what a
// ServiceMonitor scrapes.
type scrapeTarget struct {
	Job    string
	Addr   string
	Labels map[string]string
}

// startPrometheus runs Prometheus on a free port with its own storage,
// scraping target every second and evaluating rules (a rule file) every
// second.
func startPrometheus(t testing.TB, bin string, target scrapeTarget, rules []byte) *promServer {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
		t.Fatalf("write rules: %v", err)
	}
	labels, err := json.Marshal(target.Labels)
	if err != nil {
		t.Fatalf("marshal labels: %v", err)
	}
	// JSON is YAML, so the values need no YAML quoting of their own.
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: %q
    static_configs:
      - targets: [%q]
        labels: %s
`, filepath.Join(dir, "rules.yaml"), target.Job, target.Addr, labels)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatalf("write prometheus.yml: %v", err)
	}

	addr := testutil.FreeAddr(t)
	p := startProcess(t, "prometheus", bin, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir},
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	s := &promServer{URL: "http://" + addr, proc: p, client: &http.Client{Timeout: 5 * time.Second}}
	waitHTTP(t, p, s.URL+"/-/ready", 30*time.Second)
	return s
}

// apiGet calls a Prometheus API endpoint and decodes its data field into out.
func (s *promServer) apiGet(ctx context.Context, path string, params url.Values, out any) error {
	u := s.URL + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("GET %s: read: %w", path, err)
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("GET %s: decode %q: %w", path, body, err)
	}
	if resp.StatusCode != http.StatusOK || env.Status != "success" {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, env.Error)
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("GET %s: decode data: %w", path, err)
	}
	return nil
}

// sample is one element of an instant vector.
type sample struct {
	Metric map[string]string
	Value  float64
}

// query evaluates an instant PromQL query.
func (s *promServer) query(ctx context.Context, q string) ([]sample, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := s.apiGet(ctx, "/api/v1/query", url.Values{"query": {q}}, &data); err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: result type %q, want vector", q, data.ResultType)
	}
	out := make([]sample, 0, len(data.Result))
	for _, r := range data.Result {
		str, ok := r.Value[1].(string)
		if !ok {
			return nil, fmt.Errorf("query %s: value %v is not a string", q, r.Value[1])
		}
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value %q: %w", q, str, err)
		}
		out = append(out, sample{Metric: r.Metric, Value: v})
	}
	return out, nil
}

// eventually polls q until cond holds for its result (nil when the vector is
// empty), failing the test after timeout with the last result.
func (s *promServer) eventually(t testing.TB, timeout time.Duration, q string, what string, cond func(v *float64) bool) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last string
	for {
		res, err := s.query(ctx, q)
		switch {
		case err != nil:
			last = err.Error()
		case len(res) > 1:
			last = fmt.Sprintf("%d series, want one: %v", len(res), res)
		case len(res) == 0:
			last = "empty result"
			if cond(nil) {
				return 0
			}
		default:
			v := res[0].Value
			last = strconv.FormatFloat(v, 'g', -1, 64)
			if cond(&v) {
				return v
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Prometheus: %s: %s did not hold within %s (last: %s)", what, q, timeout, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// alert is one element of /api/v1/alerts.
type alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	Value       string            `json:"value"`
}

func (s *promServer) alerts(ctx context.Context) ([]alert, error) {
	var data struct {
		Alerts []alert `json:"alerts"`
	}
	if err := s.apiGet(ctx, "/api/v1/alerts", nil, &data); err != nil {
		return nil, err
	}
	return data.Alerts, nil
}

// ruleHealth is what /api/v1/rules says about one alerting rule.
type ruleHealth struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
	Query     string `json:"query"`
}

func (s *promServer) rules(ctx context.Context) ([]ruleHealth, error) {
	var data struct {
		Groups []struct {
			Rules []ruleHealth `json:"rules"`
		} `json:"groups"`
	}
	if err := s.apiGet(ctx, "/api/v1/rules", url.Values{"type": {"alert"}}, &data); err != nil {
		return nil, err
	}
	var out []ruleHealth
	for _, g := range data.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

// observation is an alert seen in a given state at a given time.
type observation struct {
	At    time.Time
	Alert alert
}

// alertWatcher polls /api/v1/alerts four times a second and keeps every
// observation, so the test can tell that an alert was pending before it
// fired and that nothing fired while the server was healthy.
type alertWatcher struct {
	mu   sync.Mutex
	obs  []observation
	errs int
	last error
}

func watchAlerts(t testing.TB, s *promServer) *alertWatcher {
	w := &alertWatcher{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			as, err := s.alerts(ctx)
			now := time.Now()
			w.mu.Lock()
			if err != nil {
				if ctx.Err() == nil {
					w.errs++
					w.last = err
				}
			}
			for _, a := range as {
				w.obs = append(w.obs, observation{At: now, Alert: a})
			}
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// since returns the observations of alertname at or after from.
func (w *alertWatcher) since(alertname string, from time.Time) []observation {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []observation
	for _, o := range w.obs {
		if o.Alert.Labels["alertname"] == alertname && !o.At.Before(from) {
			out = append(out, o)
		}
	}
	return out
}

// waitPendingThenFiring waits until alertname fires (after from), and checks
// that it was seen pending first. It returns the firing alert.
func (w *alertWatcher) waitPendingThenFiring(t testing.TB, alertname string, from time.Time, timeout time.Duration) alert {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var pendingAt, firingAt time.Time
		var firing alert
		for _, o := range w.since(alertname, from) {
			switch o.Alert.State {
			case "pending":
				if pendingAt.IsZero() {
					pendingAt = o.At
				}
			case "firing":
				if firingAt.IsZero() {
					firingAt, firing = o.At, o.Alert
				}
			}
		}
		if !firingAt.IsZero() {
			if pendingAt.IsZero() || !pendingAt.Before(firingAt) {
				t.Fatalf("%s fired at %s without being seen pending first", alertname, firingAt.Format(time.RFC3339Nano))
			}
			t.Logf("%s: pending after %s, firing after %s", alertname,
				pendingAt.Sub(from).Round(100*time.Millisecond), firingAt.Sub(from).Round(100*time.Millisecond))
			return firing
		}
		if time.Now().After(deadline) {
			w.mu.Lock()
			errs, last := w.errs, w.last
			w.mu.Unlock()
			t.Fatalf("%s did not fire within %s (pending seen: %v; alert API errors: %d, last %v)",
				alertname, timeout, !pendingAt.IsZero(), errs, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitGone waits until alertname is no longer reported at all.
func (s *promServer) waitGone(t testing.TB, alertname string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		as, err := s.alerts(ctx)
		if err == nil {
			present := false
			for _, a := range as {
				if a.Labels["alertname"] == alertname {
					present = true
				}
			}
			if !present {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s still active %s after its cause was removed (last error %v)", alertname, timeout, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// testParams are the production rules with test-sized windows: Prometheus
// scrapes and evaluates every second, so seconds stand in for minutes. The
// JWKS limit must exceed chat-apiserver's refresh interval in the test
// (jwksRefreshInterval) plus a scrape and an evaluation, with room for a
// slow fetch on a busy machine.
func testParams(namespace, job string) alerts.Params {
	p := alerts.ForChatBackend(namespace, job)
	p.JWKSMaxAge = 10 * time.Second
	p.TokenWindow = 15 * time.Second
	p.HTTPWindow = 15 * time.Second
	p.For = alerts.ForDurations{
		JWKSRefreshFailing:    3 * time.Second,
		TokenFailureRatioHigh: 3 * time.Second,
		APIDown:               3 * time.Second,
		HTTP5xxRatioHigh:      3 * time.Second,
	}
	return p
}
