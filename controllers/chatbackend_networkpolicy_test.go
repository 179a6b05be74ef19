package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// TestNetworkPolicyFollowsTheSpec: no NetworkPolicy unless enabled; enabled,
// the operator applies `<name>` (owned, admitting only the listed peers),
// takes back a hand edit, and deletes it when disabled again. An enabled
// policy without peers, which would cut the API off, is refused by the CRD.
func TestNetworkPolicyFollowsTheSpec(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	createMigrated(t, ns, "postgres://db/chat")
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionMigrated, metav1.ConditionTrue, chatv1alpha1.ReasonMigrationSucceeded)
	Consistently(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, key(ns, "chat"), &networkingv1.NetworkPolicy{}))
	}, time.Second, 100*time.Millisecond).Should(BeTrue(), "no NetworkPolicy unless enabled")

	// Enabled without a peer: refused.
	err := updateCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) {
		cb.Spec.NetworkPolicy = &chatv1alpha1.NetworkPolicySpec{Enabled: ptr.To(true)}
	})
	Expect(err).To(MatchError(ContainSubstring("networkPolicy.ingressFrom must name at least one peer")))
	err = updateCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) {
		cb.Spec.NetworkPolicy = &chatv1alpha1.NetworkPolicySpec{Enabled: ptr.To(true), IngressFrom: []chatv1alpha1.NetworkPolicyPeer{{}}}
	})
	Expect(err).To(MatchError(ContainSubstring("a networkPolicy peer needs a namespaceSelector, a podSelector or both")))

	ingress := &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "ingress"}}
	monitoring := &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}}
	Expect(updateCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) {
		cb.Spec.NetworkPolicy = &chatv1alpha1.NetworkPolicySpec{Enabled: ptr.To(true),
			IngressFrom: []chatv1alpha1.NetworkPolicyPeer{{NamespaceSelector: ingress}}, MetricsFrom: monitoring}
	})).To(Succeed())
	np := &networkingv1.NetworkPolicy{}
	Eventually(func() error { return k8s.Get(ctx, key(ns, "chat"), np) }, timeout, interval).Should(Succeed())
	Expect(metav1.IsControlledBy(np, getCB(Default, ns, "chat"))).To(BeTrue(), "owned: the garbage collector removes it with the ChatBackend")
	Expect(np.Spec.Ingress).To(HaveLen(2))
	Expect(np.Spec.Ingress[0].From).To(Equal([]networkingv1.NetworkPolicyPeer{{NamespaceSelector: ingress}}))
	Expect(np.Spec.Ingress[0].Ports[0].Port.StrVal).To(Equal(specs.HTTPPortName))
	Expect(np.Spec.Ingress[1].From).To(Equal([]networkingv1.NetworkPolicyPeer{{NamespaceSelector: monitoring}}))
	Expect(np.Spec.Ingress[1].Ports[0].Port.StrVal).To(Equal(specs.MetricsPortName))

	// A hand edit opening the HTTP port to everyone is taken back.
	np.Spec.Ingress[0].From = nil
	Expect(k8s.Update(ctx, np)).To(Succeed())
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key(ns, "chat"), np)).To(Succeed())
		g.Expect(np.Spec.Ingress[0].From).To(Equal([]networkingv1.NetworkPolicyPeer{{NamespaceSelector: ingress}}))
	}, timeout, interval).Should(Succeed())

	Expect(updateCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.NetworkPolicy.Enabled = ptr.To(false) })).To(Succeed())
	Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, key(ns, "chat"), &networkingv1.NetworkPolicy{}))
	}, timeout, interval).Should(BeTrue(), "disabling deletes the policy")
	Expect(reconcileErrors(ns)).To(BeZero())
}

// updateCB applies change to the current ChatBackend and updates it,
// retrying on a conflict with the operator's status writes.
func updateCB(ns, name string, change func(*chatv1alpha1.ChatBackend)) error {
	var err error
	for range 10 {
		cb := getCB(Default, ns, name)
		change(cb)
		if err = k8s.Update(context.Background(), cb); !apierrors.IsConflict(err) {
			return err
		}
	}
	return err
}
