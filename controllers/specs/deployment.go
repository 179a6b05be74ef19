package specs

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// Deployment runs `chat-apiserver serve` with image, which the reconciler
// passes as the last image whose migrations succeeded, never simply
// spec.image: new code must not serve an old schema. envHash goes on the pod
// template so that a change of the referenced Secrets rolls the pods.
func Deployment(cb *chatv1alpha1.ChatBackend, image, envHash string) *appsv1.Deployment {
	pod := podSpec(cb, image, []string{"serve"})
	c := &pod.Containers[0]
	c.Ports = []corev1.ContainerPort{
		{Name: HTTPPortName, ContainerPort: HTTPPort, Protocol: corev1.ProtocolTCP},
		{Name: MetricsPortName, ContainerPort: MetricsPort, Protocol: corev1.ProtocolTCP},
	}
	// /readyz fails while PostgreSQL or the JWKS is unreachable: take the pod
	// out of the Service, but do not restart it for that (liveness is
	// /healthz, which only says the process serves HTTP).
	c.ReadinessProbe = &corev1.Probe{
		ProbeHandler:     httpGet("/readyz"),
		PeriodSeconds:    5,
		FailureThreshold: 3,
	}
	c.LivenessProbe = &corev1.Probe{
		ProbeHandler:        httpGet("/healthz"),
		InitialDelaySeconds: 5,
		PeriodSeconds:       10,
		FailureThreshold:    3,
	}

	labels := Labels(cb, ComponentAPI)
	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      cb.Name,
			Namespace: cb.Namespace,
			Labels:    labels,
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(cb.Spec.ReplicasOrDefault()),
			Selector: &metav1.LabelSelector{MatchLabels: SelectorLabels(cb)},
			// Surge first, never drop below the desired count: a rollout
			// must not cost capacity.
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr.To(intstr.FromInt32(0)),
					MaxSurge:       ptr.To(intstr.FromString("25%")),
				},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      labels,
					Annotations: map[string]string{AnnotationEnvHash: envHash},
				},
				Spec: pod,
			},
		},
	}
}

func httpGet(path string) corev1.ProbeHandler {
	return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString(HTTPPortName)}}
}
