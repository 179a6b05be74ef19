package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// TestPauseStopsAllWrites: while chat.chatbackend.io/reconcile=disabled, a
// hand edit of the Deployment and a deleted Service stay as the person left
// them and the status says it is paused; removing the annotation reverts
// both at once.
func TestPauseStopsAllWrites(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	createMigrated(t, ns, "postgres://db/chat")
	dep := &appsv1.Deployment{}
	Eventually(func() error { return k8s.Get(ctx, key(ns, "chat"), dep) }, timeout, interval).Should(Succeed())
	readyBefore := meta.FindStatusCondition(getCB(Default, ns, "chat").Status.Conditions, chatv1alpha1.ConditionReady)

	setReconcileAnnotation(ns, "chat", chatv1alpha1.ReconcileDisabled)
	eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionPaused, metav1.ConditionTrue, chatv1alpha1.ReasonReconcileDisabled,
		chatv1alpha1.AnnotationReconcile)

	const handImage = "registry.example.com/chat-apiserver:hotfix"
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key(ns, "chat"), dep)).To(Succeed())
		dep.Spec.Template.Spec.Containers[0].Image = handImage
		g.Expect(k8s.Update(ctx, dep)).To(Succeed())
	}, timeout, interval).Should(Succeed())
	svc := &corev1.Service{}
	Expect(k8s.Get(ctx, key(ns, "chat"), svc)).To(Succeed())
	Expect(k8s.Delete(ctx, svc)).To(Succeed())

	Consistently(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key(ns, "chat"), dep)).To(Succeed())
		g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal(handImage))
		g.Expect(apierrors.IsNotFound(k8s.Get(ctx, key(ns, "chat"), &corev1.Service{}))).To(BeTrue(), "Service recreated while paused")
	}, 2500*time.Millisecond, 250*time.Millisecond).Should(Succeed())
	ready := meta.FindStatusCondition(getCB(Default, ns, "chat").Status.Conditions, chatv1alpha1.ConditionReady)
	Expect(ready.Status).To(Equal(readyBefore.Status), "Ready keeps its last value while paused")
	Expect(ready.Reason).To(Equal(readyBefore.Reason))

	setReconcileAnnotation(ns, "chat", "")
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key(ns, "chat"), dep)).To(Succeed())
		g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal("registry.example.com/chat-apiserver:v1"))
		g.Expect(k8s.Get(ctx, key(ns, "chat"), &corev1.Service{})).To(Succeed())
		g.Expect(meta.FindStatusCondition(getCB(g, ns, "chat").Status.Conditions, chatv1alpha1.ConditionPaused)).To(BeNil())
	}, timeout, interval).Should(Succeed())
	Expect(reconcileErrors(ns)).To(BeZero())
}

// setReconcileAnnotation sets (or, with "", removes) the pause annotation.
func setReconcileAnnotation(ns, name, value string) {
	EventuallyWithOffset(1, func(g Gomega) {
		cb := getCB(g, ns, name)
		if value == "" {
			delete(cb.Annotations, chatv1alpha1.AnnotationReconcile)
		} else {
			metav1.SetMetaDataAnnotation(&cb.ObjectMeta, chatv1alpha1.AnnotationReconcile, value)
		}
		g.Expect(k8s.Update(context.Background(), cb)).To(Succeed())
	}, timeout, interval).Should(Succeed())
}
