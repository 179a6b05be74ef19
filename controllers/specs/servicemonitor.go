package specs

import (
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// ServiceMonitor scrapes the ChatBackend's metrics Service. Its jobLabel
// names the scrape job after that Service's app.kubernetes.io/instance
// label, i.e. the ChatBackend's name: the alert rules rely on that.
// defaultLabels are the operator-wide --monitoring-labels (MonitoringLabels).
func ServiceMonitor(cb *chatv1alpha1.ChatBackend, defaultLabels map[string]string) *monitoringv1.ServiceMonitor {
	meta := objectMeta(cb, cb.Name, ComponentMetrics)
	meta.Labels = MonitoringLabels(cb, defaultLabels, cb.Spec.Monitoring.ServiceMonitor.Labels, ComponentMetrics)
	return &monitoringv1.ServiceMonitor{
		TypeMeta:   metav1.TypeMeta{APIVersion: monitoringv1.SchemeGroupVersion.String(), Kind: monitoringv1.ServiceMonitorsKind},
		ObjectMeta: meta,
		Spec: monitoringv1.ServiceMonitorSpec{
			JobLabel: LabelInstance,
			Selector: metav1.LabelSelector{MatchLabels: Labels(cb, ComponentMetrics)},
			Endpoints: []monitoringv1.Endpoint{{
				Port:     MetricsPortName,
				Path:     "/metrics",
				Interval: monitoringv1.Duration(cb.Spec.Monitoring.ServiceMonitor.Interval),
			}},
		},
	}
}
