package specs

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// Service exposes the HTTP API, and only it: spec.service.type may make it
// a NodePort or LoadBalancer, and /metrics (per-route traffic, error
// counts) is not for the world. The metrics port has its own ClusterIP
// Service, MetricsService.
func Service(cb *chatv1alpha1.ChatBackend) *corev1.Service {
	t := cb.Spec.Service.Type
	if t == "" {
		t = corev1.ServiceTypeClusterIP
	}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(cb, cb.Name, ComponentAPI),
		Spec: corev1.ServiceSpec{
			Type:     t,
			Selector: SelectorLabels(cb),
			Ports: []corev1.ServicePort{
				{Name: HTTPPortName, Port: cb.Spec.ServicePortOrDefault(), TargetPort: intstr.FromString(HTTPPortName), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

// MetricsService is the in-cluster-only Service of the API pods' metrics
// port, which the ServiceMonitor selects. Its app.kubernetes.io/instance
// label (the ChatBackend's name) becomes the scrape job (ServiceMonitor's
// jobLabel), which the alert rules match on.
func MetricsService(cb *chatv1alpha1.ChatBackend) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(cb, MetricsServiceName(cb), ComponentMetrics),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: SelectorLabels(cb),
			Ports: []corev1.ServicePort{
				{Name: MetricsPortName, Port: MetricsPort, TargetPort: intstr.FromString(MetricsPortName), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}
