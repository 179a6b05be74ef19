package specs

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// Service exposes the HTTP API and the metrics port. The metrics port is on
// the same Service because the ServiceMonitor selects Services, and the
// scrape job is then named after the ChatBackend, which the alert rules
// match on.
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
				{Name: MetricsPortName, Port: MetricsPort, TargetPort: intstr.FromString(MetricsPortName), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}
