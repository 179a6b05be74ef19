package specs

import (
	"fmt"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs/alerts"
)

// PrometheusRule installs the chatbackend alerts scoped to this ChatBackend
// (its namespace and scrape job), from the rules file the alerts package
// embeds and promtool tests. defaultLabels are the operator-wide
// --monitoring-labels (MonitoringLabels).
func PrometheusRule(cb *chatv1alpha1.ChatBackend, defaultLabels map[string]string) (*monitoringv1.PrometheusRule, error) {
	groups, err := alerts.RuleGroupsFor(alerts.ForChatBackend(cb.Namespace, cb.Name))
	if err != nil {
		return nil, fmt.Errorf("render alert rules: %w", err)
	}
	meta := objectMeta(cb, cb.Name, "")
	meta.Labels = MonitoringLabels(cb, defaultLabels, cb.Spec.Monitoring.PrometheusRule.Labels, "")
	return &monitoringv1.PrometheusRule{
		TypeMeta:   metav1.TypeMeta{APIVersion: monitoringv1.SchemeGroupVersion.String(), Kind: monitoringv1.PrometheusRuleKind},
		ObjectMeta: meta,
		Spec:       monitoringv1.PrometheusRuleSpec{Groups: groups},
	}, nil
}
