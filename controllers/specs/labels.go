package specs

import (
	"maps"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// Label keys and values the operator writes.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelComponent = "app.kubernetes.io/component"
	LabelManagedBy = "app.kubernetes.io/managed-by"

	// AppName is the app.kubernetes.io/name of every child.
	AppName = "chat-apiserver"
	// ManagedBy is the app.kubernetes.io/managed-by of every child.
	ManagedBy = "chatbackend-operator"

	ComponentAPI        = "api"
	ComponentMigrations = "migrations"
	// ComponentMetrics labels the metrics Service, which the ServiceMonitor
	// selects (and the API Service does not carry).
	ComponentMetrics = "metrics"
)

// Annotation keys the operator writes.
const (
	// AnnotationEnvHash on the pod template is a hash of the env Secret's
	// data: changing a referenced Secret changes it and so rolls the pods,
	// which otherwise would keep the old values until they restart.
	AnnotationEnvHash = "chat.chatbackend.io/env-hash"
	// AnnotationImage on a migrations Job records the image it migrates to.
	AnnotationImage = "chat.chatbackend.io/image"
	// AnnotationDatabase on a migrations Job records the fingerprint of the
	// database it migrates (DatabaseFingerprint).
	AnnotationDatabase = "chat.chatbackend.io/database"
	// AnnotationGeneration on a migrations Job records the ChatBackend
	// generation it was created for; a failed Job is retried only for a newer
	// generation (or new Secret data), never in a loop.
	AnnotationGeneration = "chat.chatbackend.io/generation"
)

// Labels are put on every child; component is left out when empty (objects
// that belong to the whole ChatBackend, such as the env Secret).
func Labels(cb *chatv1alpha1.ChatBackend, component string) map[string]string {
	l := map[string]string{
		LabelName:      AppName,
		LabelInstance:  cb.Name,
		LabelManagedBy: ManagedBy,
	}
	if component != "" {
		l[LabelComponent] = component
	}
	return l
}

// SelectorLabels select the API pods of one ChatBackend. They must never
// change: a Deployment's selector is immutable.
func SelectorLabels(cb *chatv1alpha1.ChatBackend) map[string]string {
	return map[string]string{
		LabelName:      AppName,
		LabelInstance:  cb.Name,
		LabelComponent: ComponentAPI,
	}
}

// MonitoringLabels are the labels of a ServiceMonitor or PrometheusRule:
// the operator-wide defaults (--monitoring-labels), then those of the
// ChatBackend's spec, which win, so that Prometheus' serviceMonitorSelector
// or ruleSelector (kube-prometheus-stack: release=<release>) picks them up.
// The operator's own labels win over both: they identify the object.
func MonitoringLabels(cb *chatv1alpha1.ChatBackend, defaults, fromSpec map[string]string, component string) map[string]string {
	l := map[string]string{}
	maps.Copy(l, defaults)
	maps.Copy(l, fromSpec)
	maps.Copy(l, Labels(cb, component))
	return l
}
