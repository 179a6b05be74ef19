package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// The operator's own metrics. Their labels name the ChatBackend, not the
// scrape target: the operator's metrics are scraped under the operator's
// own job and namespace.
const (
	// DesiredReplicasMetric is the number of API pods the operator wants
	// running for a ChatBackend: spec.replicas once the Deployment exists,
	// 0 before the first migration created it. The ChatBackendAPIDown
	// alert stays silent while it is 0, when no target is expected.
	DesiredReplicasMetric = "chatbackend_desired_replicas"
	// ConditionMetric is 1 for each condition a ChatBackend's status
	// carries, labelled with the condition's type, status and reason (as
	// last computed), so that `sum by (type, status)` counts the fleet's
	// ChatBackends by condition and the reason says why one is not Ready.
	// Reasons are the constants of api/v1alpha1, so the series are bounded.
	ConditionMetric = "chatbackend_condition"
	// IngestLastSuccessMetric is when an ingest run of spec.ingest last
	// succeeded (status.ingest.lastSuccessTime), as a Unix time; before the
	// first success, when the ChatBackend was created, so that an index
	// never filled goes stale too. Absent without spec.ingest or while it
	// is suspended.
	IngestLastSuccessMetric = "chatbackend_ingest_last_success_timestamp_seconds"
	// IngestMaxAgeMetric is how old the last success may get before the
	// index counts as stale (ChatBackendIndexStale): IngestStaleAfterSchedules
	// times the longest interval of spec.ingest.schedule. Present when
	// IngestLastSuccessMetric is.
	IngestMaxAgeMetric = "chatbackend_ingest_max_age_seconds"
)

var (
	desiredReplicas = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: DesiredReplicasMetric,
		Help: "API pods the operator wants running for the ChatBackend (0 before its first migration succeeded).",
	}, []string{"chatbackend_namespace", "chatbackend"})
	conditions = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: ConditionMetric,
		Help: "1 for each condition of the ChatBackend's status, with its current status and reason.",
	}, []string{"chatbackend_namespace", "chatbackend", "type", "status", "reason"})
	ingestLastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: IngestLastSuccessMetric,
		Help: "Unix time of the last successful ingest run of the ChatBackend (its creation before the first).",
	}, []string{"chatbackend_namespace", "chatbackend"})
	ingestMaxAge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: IngestMaxAgeMetric,
		Help: "Seconds without a successful ingest run after which the ChatBackend's index is stale (3 schedule intervals).",
	}, []string{"chatbackend_namespace", "chatbackend"})
)

func init() {
	// controller-runtime's registry is what the manager's /metrics serves.
	ctrlmetrics.Registry.MustRegister(desiredReplicas, conditions, ingestLastSuccess, ingestMaxAge)
}

// recordDesiredReplicas updates the gauge from what this reconcile saw.
func recordDesiredReplicas(s *scope) {
	var n int32
	if s.deployment != nil {
		n = s.cb.Spec.ReplicasOrDefault()
	}
	desiredReplicas.WithLabelValues(s.cb.Namespace, s.cb.Name).Set(float64(n))
}

// recordConditions replaces the ChatBackend's condition series by those of
// the status just computed: a condition that changed status or reason, or
// went away (Paused), leaves no stale series behind. A ChatBackend is never
// reconciled twice at once, so nothing else writes its series meanwhile.
func recordConditions(cb *chatv1alpha1.ChatBackend) {
	conditions.DeletePartialMatch(chatBackendLabels(cb.Namespace, cb.Name))
	for _, c := range cb.Status.Conditions {
		conditions.WithLabelValues(cb.Namespace, cb.Name, c.Type, string(c.Status), c.Reason).Set(1)
	}
}

// recordIngest updates the ingest gauges from the scope's status and
// schedule; without spec.ingest, suspended or with a schedule that does
// not parse, the series go: no staleness is expected then.
func recordIngest(s *scope) {
	cb := s.cb
	if cb.Spec.Ingest == nil || cb.Spec.Ingest.IsSuspended() || s.ingest.interval == 0 {
		ingestLastSuccess.DeleteLabelValues(cb.Namespace, cb.Name)
		ingestMaxAge.DeleteLabelValues(cb.Namespace, cb.Name)
		return
	}
	last := cb.CreationTimestamp.Time
	if st := cb.Status.Ingest; st != nil && st.LastSuccessTime != nil {
		last = st.LastSuccessTime.Time
	}
	ingestLastSuccess.WithLabelValues(cb.Namespace, cb.Name).Set(float64(last.Unix()))
	ingestMaxAge.WithLabelValues(cb.Namespace, cb.Name).Set((IngestStaleAfterSchedules * s.ingest.interval).Seconds())
}

// forgetMetrics drops the series of a deleted ChatBackend.
func forgetMetrics(key types.NamespacedName) {
	desiredReplicas.DeleteLabelValues(key.Namespace, key.Name)
	ingestLastSuccess.DeleteLabelValues(key.Namespace, key.Name)
	ingestMaxAge.DeleteLabelValues(key.Namespace, key.Name)
	conditions.DeletePartialMatch(chatBackendLabels(key.Namespace, key.Name))
}

func chatBackendLabels(namespace, name string) prometheus.Labels {
	return prometheus.Labels{"chatbackend_namespace": namespace, "chatbackend": name}
}
