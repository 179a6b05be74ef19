package specs

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// WantsNetworkPolicy: spec.networkPolicy.enabled, off by default (a policy
// that admits too little takes the API down, and only the user knows where
// its clients and Prometheus run).
func WantsNetworkPolicy(cb *chatv1alpha1.ChatBackend) bool {
	np := cb.Spec.NetworkPolicy
	return np != nil && ptr.Deref(np.Enabled, false)
}

// NetworkPolicy `<name>` selects the API pods and admits ingress only to
// the HTTP port from spec.networkPolicy.ingressFrom and to the metrics port
// from the namespaces of spec.networkPolicy.metricsFrom: everything else,
// including other pods of the namespace, is refused, since a policy that
// selects a pod denies all ingress it does not list. A rule is left out
// rather than written with an empty "from", which would admit everyone.
// The ports are named, as the container declares them, so the policy
// follows them. Egress is not restricted: the pods call the database,
// the JWKS endpoint, Qdrant and the model, which live anywhere.
func NetworkPolicy(cb *chatv1alpha1.ChatBackend) *networkingv1.NetworkPolicy {
	np := cb.Spec.NetworkPolicy
	if np == nil {
		np = &chatv1alpha1.NetworkPolicySpec{}
	}
	var rules []networkingv1.NetworkPolicyIngressRule
	if len(np.IngressFrom) > 0 {
		from := make([]networkingv1.NetworkPolicyPeer, 0, len(np.IngressFrom))
		for _, p := range np.IngressFrom {
			from = append(from, networkingv1.NetworkPolicyPeer{NamespaceSelector: p.NamespaceSelector, PodSelector: p.PodSelector})
		}
		rules = append(rules, networkingv1.NetworkPolicyIngressRule{Ports: tcpPort(HTTPPortName), From: from})
	}
	if np.MetricsFrom != nil {
		rules = append(rules, networkingv1.NetworkPolicyIngressRule{
			Ports: tcpPort(MetricsPortName),
			From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: np.MetricsFrom}},
		})
	}
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: objectMeta(cb, cb.Name, ComponentAPI),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: SelectorLabels(cb)},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     rules,
		},
	}
}

func tcpPort(name string) []networkingv1.NetworkPolicyPort {
	port := intstr.FromString(name)
	return []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: &port}}
}
