package specs_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// TestNetworkPolicy: off by default; on, it selects exactly the API pods,
// admits the listed peers to the HTTP port only and the monitoring
// namespace to the metrics port only, and leaves out a rule with no peers
// (an empty "from" would admit everyone).
func TestNetworkPolicy(t *testing.T) {
	g := NewWithT(t)
	cb := minimal()
	g.Expect(specs.WantsNetworkPolicy(cb)).To(BeFalse(), "off when unset")
	cb.Spec.NetworkPolicy = &chatv1alpha1.NetworkPolicySpec{}
	g.Expect(specs.WantsNetworkPolicy(cb)).To(BeFalse(), "off unless enabled")

	ingress := &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "ingress-nginx"}}
	frontend := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "docs-frontend"}}
	monitoring := &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}}
	cb.Spec.NetworkPolicy = &chatv1alpha1.NetworkPolicySpec{
		Enabled:     ptr.To(true),
		IngressFrom: []chatv1alpha1.NetworkPolicyPeer{{NamespaceSelector: ingress}, {PodSelector: frontend}},
		MetricsFrom: monitoring,
	}
	g.Expect(specs.WantsNetworkPolicy(cb)).To(BeTrue())
	np := specs.NetworkPolicy(cb)
	g.Expect(np.Name).To(Equal("chat"))
	g.Expect(np.Namespace).To(Equal("docs"))
	g.Expect(np.Labels).To(HaveKeyWithValue(specs.LabelManagedBy, specs.ManagedBy))

	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sel.Matches(labels.Set(specs.Deployment(cb, "img", "hash").Spec.Template.Labels))).To(BeTrue(), "selects the API pods")
	g.Expect(sel.Matches(labels.Set(specs.MigrationJob(cb, "img", "hash", "db").Spec.Template.Labels))).To(BeFalse(),
		"the migrations pod takes no traffic and is not selected")
	g.Expect(np.Spec.PolicyTypes).To(Equal([]networkingv1.PolicyType{networkingv1.PolicyTypeIngress}), "egress is not restricted")

	port := func(name string) []networkingv1.NetworkPolicyPort {
		p := intstr.FromString(name)
		return []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: &p}}
	}
	g.Expect(np.Spec.Ingress).To(Equal([]networkingv1.NetworkPolicyIngressRule{
		{Ports: port(specs.HTTPPortName), From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: ingress}, {PodSelector: frontend}}},
		{Ports: port(specs.MetricsPortName), From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: monitoring}}},
	}))
	// The names are the container's own ports.
	var names []string
	for _, p := range specs.Deployment(cb, "img", "hash").Spec.Template.Spec.Containers[0].Ports {
		names = append(names, p.Name)
	}
	g.Expect(names).To(ContainElements(specs.HTTPPortName, specs.MetricsPortName))

	// Without metricsFrom nobody scrapes: no rule rather than an open one.
	cb.Spec.NetworkPolicy.MetricsFrom = nil
	np = specs.NetworkPolicy(cb)
	g.Expect(np.Spec.Ingress).To(HaveLen(1))
	g.Expect(np.Spec.Ingress[0].Ports).To(Equal(port(specs.HTTPPortName)))
	g.Expect(np.Spec.Ingress[0].From).NotTo(BeEmpty())
}
