package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// TestCacheHoldsOnlyTheOperatorsObjects: in a cluster shared with other
// workloads the operator's cache holds its own children, not every
// Deployment of the cluster; Secret metadata is cached without the
// annotations that can carry a Secret's values; managedFields are not
// cached at all. Reconciling still works, foreign objects included
// (TestForeignObjectsAreLeftAlone checks those are still seen).
func TestCacheHoldsOnlyTheOperatorsObjects(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)

	labels := map[string]string{"app": "other"}
	other := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example.com/other"}}},
			},
		},
	}
	Expect(k8s.Create(ctx, other)).To(Succeed())
	// What `kubectl apply -f secret.yaml` leaves: the data again, in an
	// annotation.
	applied := secret(ns, "applied", map[string]string{"password": "hunter2"})
	applied.Annotations = map[string]string{
		"kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"v1","data":{"password":"aHVudGVyMg=="},"kind":"Secret"}`,
	}
	Expect(k8s.Create(ctx, applied)).To(Succeed())

	createMigrated(t, ns, "postgres://db/chat")
	rollOut(t, ns, "chat", 2)
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionTrue, chatv1alpha1.ReasonReady)

	// The cache has caught up with the operator's Deployment, created after
	// the other one: had it listed all Deployments, it would hold both.
	cached := &appsv1.Deployment{}
	Eventually(func() error { return mgrCache.Get(ctx, key(ns, "chat"), cached) }, timeout, interval).Should(Succeed())
	Expect(cached.ManagedFields).To(BeEmpty(), "managedFields are stripped from the cache")
	stored := &appsv1.Deployment{}
	Expect(k8s.Get(ctx, key(ns, "chat"), stored)).To(Succeed())
	Expect(stored.ManagedFields).NotTo(BeEmpty(), "the check above can fail: the API server keeps managedFields")

	Expect(k8s.Get(ctx, key(ns, "other"), &appsv1.Deployment{})).To(Succeed())
	err := mgrCache.Get(ctx, key(ns, "other"), &appsv1.Deployment{})
	Expect(apierrors.IsNotFound(err)).To(BeTrue(), "an unrelated Deployment is cached: %v", err)

	// Secret metadata is cached (the watches need it) but never an
	// annotation, so no value.
	Eventually(func(g Gomega) {
		var list metav1.PartialObjectMetadataList
		list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
		g.Expect(mgrCache.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
		names := map[string]bool{}
		for _, s := range list.Items {
			names[s.Name] = true
			g.Expect(s.Annotations).To(BeEmpty(), "Secret %s cached with annotations", s.Name)
			g.Expect(s.ManagedFields).To(BeEmpty(), "Secret %s cached with managedFields", s.Name)
		}
		g.Expect(names).To(HaveKey("applied"))
		g.Expect(names).To(HaveKey("db"))
	}, timeout, interval).Should(Succeed())
	Expect(reconcileErrors(ns)).To(BeZero())
}

// TestUnchangedStatusIsNotWritten: a reconcile that finds nothing new sends
// no status request: across a fleet the rechecks would otherwise make a
// steady load of empty patches.
func TestUnchangedStatusIsNotWritten(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	createMigrated(t, ns, "postgres://db/chat")
	rollOut(t, ns, "chat", 2)
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionTrue, chatv1alpha1.ReasonReady)
	writes := statusWriteCount(ns)
	Expect(writes).NotTo(BeZero(), "the counting works")

	// Each deletion makes a reconcile (the Service comes back), and the
	// 1 s rechecks of the suite make more; none changes the status.
	for range 2 {
		svc := &corev1.Service{}
		Expect(k8s.Get(ctx, key(ns, "chat"), svc)).To(Succeed())
		Expect(k8s.Delete(ctx, svc, &client.DeleteOptions{Preconditions: &metav1.Preconditions{UID: ptr.To(svc.UID)}})).To(Succeed())
		Eventually(func(g Gomega) {
			back := &corev1.Service{}
			g.Expect(k8s.Get(ctx, key(ns, "chat"), back)).To(Succeed())
			g.Expect(back.UID).NotTo(Equal(svc.UID))
		}, timeout, interval).Should(Succeed())
	}
	Consistently(func() int64 { return statusWriteCount(ns) }, 1500*time.Millisecond, 100*time.Millisecond).
		Should(Equal(writes), "status requests without a status change")
}
