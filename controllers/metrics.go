package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// DesiredReplicasMetric is the number of API pods the operator wants
// running for a ChatBackend: spec.replicas once the Deployment exists, 0
// before the first migration created it. The ChatBackendAPIDown alert
// stays silent while it is 0, when no target is expected. Its labels name
// the ChatBackend, not the scrape target: the operator's metrics are
// scraped under the operator's own job and namespace.
const DesiredReplicasMetric = "chatbackend_desired_replicas"

var desiredReplicas = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: DesiredReplicasMetric,
	Help: "API pods the operator wants running for the ChatBackend (0 before its first migration succeeded).",
}, []string{"chatbackend_namespace", "chatbackend"})

func init() {
	// controller-runtime's registry is what the manager's /metrics serves.
	ctrlmetrics.Registry.MustRegister(desiredReplicas)
}

// recordDesiredReplicas updates the gauge from what this reconcile saw.
func recordDesiredReplicas(s *scope) {
	var n int32
	if s.deployment != nil {
		n = s.cb.Spec.ReplicasOrDefault()
	}
	desiredReplicas.WithLabelValues(s.cb.Namespace, s.cb.Name).Set(float64(n))
}

// forgetDesiredReplicas drops the series of a deleted ChatBackend.
func forgetDesiredReplicas(key types.NamespacedName) {
	desiredReplicas.DeleteLabelValues(key.Namespace, key.Name)
}
