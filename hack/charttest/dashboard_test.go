package charttest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/promql/parser"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/chatbackend/chatbackend/apiserver/auth"
	"github.com/chatbackend/chatbackend/apiserver/chat"
	"github.com/chatbackend/chatbackend/apiserver/dependency"
	"github.com/chatbackend/chatbackend/apiserver/httpapi"
	"github.com/chatbackend/chatbackend/controllers"
)

// TestGrafanaDashboardQueriesExportedMetrics: the chart's dashboard
// ConfigMap (monitoring.grafanaDashboard) carries the sidecar's label and
// dashboards/chatbackend.json; every query in it is valid PromQL and
// names only metrics the project exports. The exported names come from the
// real code: a registry filled by the API server's metric constructors,
// and controller-runtime's registry with the operator's metrics and those
// of a started controller and its work queue. So a renamed metric, or a
// panel on one that does not exist, fails here.
func TestGrafanaDashboardQueriesExportedMetrics(t *testing.T) {
	g := NewWithT(t)
	helm := filepath.Join(root, "bin", "helm")
	for _, o := range decodeRendered(t, helm) {
		g.Expect(o.GetKind()).NotTo(Equal("ConfigMap"), "off by default")
	}

	objs := decodeRendered(t, helm, "--show-only", "templates/grafana-dashboard.yaml",
		"--set", "monitoring.grafanaDashboard.create=true", "--set", "monitoring.grafanaDashboard.namespace=monitoring",
		"--set", "monitoring.grafanaDashboard.annotations.grafana_folder=chat")
	g.Expect(objs).To(HaveLen(1))
	cm := &corev1.ConfigMap{}
	g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(objs[0].Object, cm)).To(Succeed())
	g.Expect(cm.Namespace).To(Equal("monitoring"))
	g.Expect(cm.Labels).To(HaveKeyWithValue("grafana_dashboard", "1"))
	g.Expect(cm.Annotations).To(HaveKeyWithValue("grafana_folder", "chat"))

	var dash dashboard
	g.Expect(json.Unmarshal([]byte(cm.Data["chatbackend.json"]), &dash)).To(Succeed())
	vars := map[string]bool{}
	for _, v := range dash.Templating.List {
		vars[v.Name] = true
	}
	g.Expect(vars).To(HaveKey("datasource"))
	g.Expect(vars).To(HaveKey("namespace"))
	g.Expect(vars).To(HaveKey("job"))

	exported := exportedMetrics(t)
	queries := dash.queries()
	g.Expect(len(queries)).To(BeNumerically(">=", 10))
	var unknown []string
	for _, q := range queries {
		for _, name := range metricNames(t, q) {
			if !exported[name] {
				unknown = append(unknown, fmt.Sprintf("%s (in %s)", name, q))
			}
		}
	}
	g.Expect(unknown).To(BeEmpty(), "metrics the project does not export")
}

// panel is a dashboard panel; a collapsed row holds its panels.
type panel struct {
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type dashboard struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// labelValues is Grafana's variable query label_values(<selector>, <label>).
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)

// queries are the PromQL expressions of the panels and of the variables'
// label_values selectors.
func (d dashboard) queries() []string {
	var qs []string
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tgt := range p.Targets {
				qs = append(qs, tgt.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)["query"].(string)
		if m := labelValues.FindStringSubmatch(q); m != nil {
			q = m[1]
		}
		qs = append(qs, q)
	}
	return qs
}

// grafanaVars are replaced by values as Grafana would before the query
// reaches Prometheus.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$namespace", "docs", "$job", "docs")

// metricNames parses q as PromQL and returns the metric names its
// selectors name (every selector must name one).
func metricNames(t *testing.T, q string) []string {
	t.Helper()
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaVars.Replace(q))
	if err != nil {
		t.Fatalf("query %q: %v", q, err)
	}
	var names []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			if vs.Name == "" {
				t.Errorf("query %q: a selector without a metric name", q)
			}
			names = append(names, vs.Name)
		}
		return nil
	})
	if len(names) == 0 {
		t.Errorf("query %q selects no metric", q)
	}
	return names
}

// exportedMetrics gathers the series names the API server and the operator
// export, as Prometheus sees them (a histogram's _bucket, _sum, _count).
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, gatherer := range []prometheus.Gatherer{apiServerRegistry(t), operatorRegistry(t)} {
		mfs, err := gatherer.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			names[mf.GetName()] = true
			switch mf.GetType() {
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				names[mf.GetName()+"_bucket"] = true
				fallthrough
			case dto.MetricType_SUMMARY:
				names[mf.GetName()+"_sum"] = true
				names[mf.GetName()+"_count"] = true
			}
		}
	}
	// A gauge vector with no ChatBackend yet has no series to gather; its
	// name is the constant metrics.go registers it under.
	names[controllers.DesiredReplicasMetric] = true
	names[controllers.ConditionMetric] = true
	return names
}

// apiServerRegistry is filled as chat-apiserver's serve fills its own,
// and one request is served so that the HTTP metrics' vectors have series.
func apiServerRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	deps, err := dependency.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	deps.Observe(dependency.Database, nil)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"keys":[]}`))
	}))
	t.Cleanup(jwks.Close)
	verifier, err := auth.New(t.Context(), auth.Options{
		JWKSURL: jwks.URL, Issuer: "http://auth.test", Registerer: reg, Dependencies: deps,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(verifier.Close)
	svc := &chat.Service{}
	if err := svc.Instrument(reg, deps); err != nil {
		t.Fatal(err)
	}
	limit := httpapi.RateLimit{PerMinute: 60, Burst: 10}
	h, err := httpapi.New(httpapi.Deps{
		Chat: svc, Auth: verifier, ChatRateLimit: limit, WriteRateLimit: limit, MaxStreams: 1,
		Registerer: reg, Dependencies: deps,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
	return reg
}

// operatorRegistry is controller-runtime's, which the manager serves: the
// operator's metrics.go registered on it at init, and a controller named
// as the operator's is started briefly so that the reconcile and work
// queue vectors have series: the reconcile's when the controller starts,
// the queue's when an item passes.
func operatorRegistry(t *testing.T) prometheus.Gatherer {
	t.Helper()
	reconciled := make(chan struct{})
	c, err := controller.NewUnmanaged("chatbackend", controller.Options{
		Reconciler: reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) {
			close(reconciled)
			return reconcile.Result{}, nil
		}),
		SkipNameValidation: ptr.To(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	// One request through the work queue, whose vectors (by priority)
	// get series only when items pass.
	err = c.Watch(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: appNS, Name: "docs"}})
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller: %v", err)
		}
	}()
	select {
	case <-reconciled:
	case <-time.After(wait):
		t.Fatal("the controller did not reconcile the queued request")
	}
	return ctrlmetrics.Registry
}
