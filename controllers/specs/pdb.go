package specs

import (
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// WantsPodDisruptionBudget: with a single replica a PDB would either block
// node drains forever (maxUnavailable 0) or protect nothing.
func WantsPodDisruptionBudget(cb *chatv1alpha1.ChatBackend) bool {
	return cb.Spec.ReplicasOrDefault() > 1
}

// PodDisruptionBudget lets voluntary disruptions (drains, autoscaler) take
// down at most one API pod at a time. Pods that are not ready anyway (a
// database outage, a crash loop) may always be evicted: protecting them
// protects no capacity and would block every node drain until the outage
// ends (unhealthyPodEvictionPolicy AlwaysAllow).
func PodDisruptionBudget(cb *chatv1alpha1.ChatBackend) *policyv1.PodDisruptionBudget {
	one := intstr.FromInt32(1)
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: objectMeta(cb, cb.Name, ComponentAPI),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable:             &one,
			UnhealthyPodEvictionPolicy: ptr.To(policyv1.AlwaysAllow),
			Selector:                   &metav1.LabelSelector{MatchLabels: SelectorLabels(cb)},
		},
	}
}
