//go:build e2e && linux

package clustere2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/chatbackend/chatbackend/controllers/specs/alerts"
)

// The monitoring part of the scenario: prometheus-operator runs in the
// cluster and renders a Prometheus (both built from their Go modules by
// hack/tools.sh prometheus-operator) that selects ServiceMonitors and
// PrometheusRules by the label the chart's monitoringLabels puts on what
// chatbackend's operator creates. Nothing here writes a scrape config or a
// rule file: if the labels, the ServiceMonitor's selector and port, or the
// rules' scoping were wrong, Prometheus would not scrape the API pods or the
// alert would not fire.
const (
	promNS   = "default" // where the module's RBAC examples put both ServiceAccounts
	promName = "e2e"
	// alertNS holds a second ChatBackend whose BetterAuth cannot be reached,
	// so its pods never load the JWKS: ChatBackendJWKSRefreshFailing, the
	// alert with the shortest `for:` (1m), fires for it and must not for
	// docs-chat. Its own namespace keeps its pods out of apiPods.
	alertNS = "e2e-alert"
	alertCB = "jwks-down"
)

// monitoringLabels are the chart's monitoringLabels and the Prometheus'
// selectors.
var monitoringLabels = map[string]string{"prometheus": promName}

// monitoring is what hack/e2e/cluster/run.sh built and imported for it.
type monitoring struct {
	dir             string // bin/prometheus-operator: crd/, rbac/ of the release
	operatorImage   string
	reloaderImage   string
	prometheusImage string
	version         string // of that Prometheus, e.g. v3.13.1
	api             promv1.API
}

func monitoringFromEnv(t *testing.T) *monitoring {
	return &monitoring{
		dir:             mustEnv(t, "E2E_PROMETHEUS_OPERATOR"),
		operatorImage:   mustEnv(t, "E2E_PROMETHEUS_OPERATOR_IMAGE"),
		reloaderImage:   mustEnv(t, "E2E_CONFIG_RELOADER_IMAGE"),
		prometheusImage: mustEnv(t, "E2E_PROMETHEUS_IMAGE"),
		version:         mustEnv(t, "E2E_PROMETHEUS_VERSION"),
	}
}

// helmMonitoringArgs: the operator labels what it creates so that the
// Prometheus below selects it, and the chart's own ServiceMonitor scrapes
// the operator (chatbackend_desired_replicas, which ChatBackendAPIDown reads).
func helmMonitoringArgs() []string {
	var args []string
	for k, v := range monitoringLabels {
		args = append(args, "--set", "monitoringLabels."+k+"="+v, "--set", "serviceMonitor.labels."+k+"="+v)
	}
	// The operator's metrics are HTTPS with authorization (metrics.secure):
	// the Prometheus's ServiceAccount gets the chart's metrics-reader role.
	return append(args, "--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.interval=5s",
		"--set", "metrics.readerServiceAccounts[0].name=prometheus",
		"--set", "metrics.readerServiceAccounts[0].namespace="+promNS)
}

// installMonitoring installs prometheus-operator's CRDs (before the chart, so
// chatbackend's operator finds them at its first reconcile), the operator
// with the release's RBAC example, and a Prometheus. It does not wait for
// the Prometheus: checkMonitoring does, much later.
func (e *env) installMonitoring(t *testing.T) {
	m := e.mon
	e.run(t, "kubectl", "apply", "--server-side", "-f", filepath.Join(m.dir, "crd"))
	e.run(t, "kubectl", "wait", "--for=condition=Established", "--timeout=60s", "-f", filepath.Join(m.dir, "crd"))
	for _, f := range []string{
		"prometheus-operator/prometheus-operator-service-account.yaml",
		"prometheus-operator/prometheus-operator-cluster-role.yaml",
		"prometheus-operator/prometheus-operator-cluster-role-binding.yaml",
		"prometheus/prometheus-service-account.yaml",
		"prometheus/prometheus-cluster-role.yaml",
		"prometheus/prometheus-cluster-role-binding.yaml",
	} {
		e.run(t, "kubectl", "apply", "-n", promNS, "-f", filepath.Join(m.dir, "rbac", f))
	}

	// The release's Deployment, with the images of this machine.
	b, err := os.ReadFile(filepath.Join(m.dir, "rbac/prometheus-operator/prometheus-operator-deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var dep appsv1.Deployment
	if err := yaml.UnmarshalStrict(b, &dep); err != nil {
		t.Fatalf("the release's Deployment: %v", err)
	}
	c := &dep.Spec.Template.Spec.Containers[0]
	c.Image, c.ImagePullPolicy = m.operatorImage, corev1.PullNever
	found := false
	for i, a := range c.Args {
		if strings.HasPrefix(a, "--prometheus-config-reloader=") {
			c.Args[i], found = "--prometheus-config-reloader="+m.reloaderImage, true
		}
	}
	if !found {
		t.Fatalf("the release's Deployment has no --prometheus-config-reloader argument: %v", c.Args)
	}
	if err := e.c.Create(e.ctx, &dep); err != nil {
		t.Fatalf("create the prometheus-operator Deployment: %v", err)
	}

	prom := &monitoringv1.Prometheus{
		ObjectMeta: metav1.ObjectMeta{Name: promName, Namespace: promNS},
		Spec: monitoringv1.PrometheusSpec{
			CommonPrometheusFields: monitoringv1.CommonPrometheusFields{
				Image:              ptr.To(m.prometheusImage),
				Version:            m.version,
				ImagePullPolicy:    corev1.PullNever,
				Replicas:           ptr.To[int32](1),
				ServiceAccountName: "prometheus",
				// Every namespace, selected by label only: what the chart's
				// monitoringLabels are for.
				ServiceMonitorSelector:          &metav1.LabelSelector{MatchLabels: monitoringLabels},
				ServiceMonitorNamespaceSelector: &metav1.LabelSelector{},
				// Scrapes at the ServiceMonitors' own interval when they set
				// one; the ChatBackends' do not.
				ScrapeInterval: "5s",
			},
			RuleSelector:          &metav1.LabelSelector{MatchLabels: monitoringLabels},
			RuleNamespaceSelector: &metav1.LabelSelector{},
			EvaluationInterval:    "5s",
		},
	}
	if err := e.c.Create(e.ctx, prom); err != nil {
		t.Fatalf("create the Prometheus: %v", err)
	}
	e.run(t, "kubectl", "rollout", "status", "-n", promNS, "deployment/"+dep.Name, "--timeout=2m")
}

// startJWKSDown creates the second ChatBackend: BetterAuth's address with a
// port nothing listens on, one replica. Its pods run but never turn ready
// (no JWKS), which does not keep Prometheus from scraping them. Started
// early so its alert's `for:` elapses during the day-2 steps.
func (e *env) startJWKSDown(t *testing.T) {
	if err := e.c.Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: alertNS}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "docs-chat-db", Namespace: alertNS},
		StringData: map[string]string{"url": e.dbURL, "direct-url": e.dbURL}}
	if err := e.c.Create(e.ctx, sec); err != nil {
		t.Fatal(err)
	}
	u := e.sample(t)
	u.SetNamespace(alertNS)
	u.SetName(alertCB)
	if err := unstructured.SetNestedField(u.Object, "http://"+e.hostIP+":1", "spec", "auth", "betterAuthURL"); err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(u.Object, int64(1), "spec", "replicas"); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Create(e.ctx, u); err != nil {
		t.Fatalf("create ChatBackend %s/%s: %v", alertNS, alertCB, err)
	}
}

// checkMonitoring asks the Prometheus that prometheus-operator runs what it
// scrapes, which rules it loaded and which alerts fire.
func (e *env) checkMonitoring(t *testing.T) {
	m := e.mon
	var pod corev1.Pod
	eventually(t, 3*time.Minute, "the Prometheus pod Ready", func() (bool, string) {
		if err := e.c.Get(e.ctx, types.NamespacedName{Namespace: promNS, Name: "prometheus-" + promName + "-0"}, &pod); err != nil {
			return false, err.Error()
		}
		return ready(pod) && pod.Status.PodIP != "", fmt.Sprintf("phase %s, ready %v", pod.Status.Phase, ready(pod))
	})
	// The pod network is routed on this host: no port-forward needed.
	c, err := promapi.NewClient(promapi.Config{Address: "http://" + pod.Status.PodIP + ":9090"})
	if err != nil {
		t.Fatal(err)
	}
	m.api = promv1.NewAPI(c)
	t.Run("ServiceMonitors select and scrape every API pod and the operator", e.checkTargets)
	t.Run("the PrometheusRule's groups are loaded, scoped to their ChatBackend", e.checkRules)
	t.Run("ChatBackendJWKSRefreshFailing fires for the ChatBackend without JWKS only", e.checkAlertFires)
}

func (e *env) promCall(t *testing.T) (context.Context, context.CancelFunc) {
	t.Helper()
	return context.WithTimeout(e.ctx, 10*time.Second)
}

func (e *env) checkTargets(t *testing.T) {
	want := map[string]bool{}
	for _, p := range e.apiPods(t) {
		want[p.Name] = true
	}
	eventually(t, 2*time.Minute, "docs-chat's pods, jwks-down's and the operator scraped and up", func() (bool, string) {
		ctx, cancel := e.promCall(t)
		defer cancel()
		res, err := e.mon.api.Targets(ctx)
		if err != nil {
			return false, err.Error()
		}
		up := map[string]bool{}
		var jwksDown, operator bool
		var seen []string
		for _, tg := range res.Active {
			l := tg.Labels
			seen = append(seen, fmt.Sprintf("%s %s/%s %s %s", tg.ScrapePool, l["namespace"], l["pod"], tg.Health, tg.LastError))
			if tg.Health != promv1.HealthGood {
				continue
			}
			switch {
			// job: the ServiceMonitor's jobLabel (the ChatBackend's name),
			// which every alert rule matches on.
			case l["namespace"] == ns && l["job"] == cbName && strings.HasPrefix(tg.ScrapePool, "serviceMonitor/"+ns+"/"+cbName+"/"):
				up[string(l["pod"])] = true
			case l["namespace"] == alertNS && l["job"] == alertCB:
				jwksDown = true
			case l["namespace"] == releaseNS && strings.HasPrefix(tg.ScrapePool, "serviceMonitor/"+releaseNS+"/"):
				operator = true
			}
		}
		ok := jwksDown && operator && len(up) == len(want)
		for p := range want {
			ok = ok && up[p]
		}
		return ok, fmt.Sprintf("want pods %v; targets %v", keys(want), seen)
	})
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ruleGroupsOf are the loaded groups of the PrometheusRule namespace/name
// (prometheus-operator names each rule file <namespace>-<name>-<uid>.yaml).
func ruleGroupsOf(groups []promv1.RuleGroup, namespace, name string) []promv1.RuleGroup {
	var out []promv1.RuleGroup
	for _, g := range groups {
		if strings.HasPrefix(filepath.Base(g.File), namespace+"-"+name+"-") {
			out = append(out, g)
		}
	}
	return out
}

func alertingRules(g promv1.RuleGroup) []promv1.AlertingRule {
	var out []promv1.AlertingRule
	for _, r := range g.Rules {
		if a, ok := r.(promv1.AlertingRule); ok {
			out = append(out, a)
		}
	}
	return out
}

func (e *env) checkRules(t *testing.T) {
	want, err := alerts.RuleGroupsFor(alerts.ForChatBackend(ns, cbName))
	if err != nil {
		t.Fatal(err)
	}
	var wantNames []string
	for _, g := range want {
		for _, r := range g.Rules {
			wantNames = append(wantNames, r.Alert)
		}
	}
	eventually(t, time.Minute, "docs-chat's rules loaded and healthy", func() (bool, string) {
		ctx, cancel := e.promCall(t)
		defer cancel()
		res, err := e.mon.api.Rules(ctx, nil)
		if err != nil {
			return false, err.Error()
		}
		var got []string
		var bad []string
		for _, g := range ruleGroupsOf(res.Groups, ns, cbName) {
			for _, r := range alertingRules(g) {
				got = append(got, r.Name)
				// Scoped: every query selects this ChatBackend's series.
				if r.Health != promv1.RuleHealthGood || !strings.Contains(r.Query, `namespace="`+ns+`"`) {
					bad = append(bad, fmt.Sprintf("%s health %s %s: %s", r.Name, r.Health, r.LastError, r.Query))
				}
			}
		}
		return slices.Equal(got, wantNames) && len(bad) == 0, fmt.Sprintf("loaded %v, want %v; unhealthy or unscoped %v", got, wantNames, bad)
	})
}

func (e *env) checkAlertFires(t *testing.T) {
	const name = "ChatBackendJWKSRefreshFailing"
	var last string
	eventually(t, 3*time.Minute, name+" firing for "+alertNS+"/"+alertCB, func() (bool, string) {
		ctx, cancel := e.promCall(t)
		defer cancel()
		res, err := e.mon.api.Rules(ctx, nil)
		if err != nil {
			return false, err.Error()
		}
		states := map[string]string{}
		firing := 0
		for _, src := range []struct{ ns, name string }{{ns, cbName}, {alertNS, alertCB}} {
			for _, g := range ruleGroupsOf(res.Groups, src.ns, src.name) {
				for _, r := range alertingRules(g) {
					if r.Name != name {
						continue
					}
					states[src.ns+"/"+src.name] = r.State
					for _, a := range r.Alerts {
						if a.State == promv1.AlertStateFiring && string(a.Labels["namespace"]) == alertNS && string(a.Labels["job"]) == alertCB {
							firing++
						}
					}
				}
			}
		}
		last = fmt.Sprint(states)
		// Only jwks-down's own rule fires: docs-chat's, scoped to its own
		// series, stays inactive although jwks-down's series match its
		// metric names.
		return states[alertNS+"/"+alertCB] == "firing" && states[ns+"/"+cbName] == "inactive" && firing > 0, last
	})
	t.Logf("%s: rule states %s", name, last)
}
