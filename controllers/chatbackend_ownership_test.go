package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// TestForeignObjectsAreLeftAlone: a ChatBackend "web" in a namespace that
// already has a Service "web" and a Secret with its env Secret's name
// (web-env-<hash>) of someone else's
// neither rewrites nor adopts them; it reports ResourceConflict naming the
// object, and proceeds once the way is clear.
func TestForeignObjectsAreLeftAlone(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	Expect(k8s.Create(ctx, secret(ns, "db", map[string]string{"url": "postgres://db/chat"}))).To(Succeed())

	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other-app"}}
	Expect(k8s.Create(ctx, other)).To(Succeed())
	cb := chatBackend(ns, "web", "registry.example.com/chat-apiserver:v1")
	envName := envSecretName(cb, "postgres://db/chat")
	foreignSecret := secret(ns, envName, map[string]string{"TOKEN": "theirs"})
	foreignSecret.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: other.Name,
		UID: other.UID, Controller: ptr.To(true)}}
	Expect(k8s.Create(ctx, foreignSecret)).To(Succeed())
	foreignSvc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "other"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	Expect(k8s.Create(ctx, foreignSvc)).To(Succeed())

	Expect(k8s.Create(ctx, cb)).To(Succeed())
	eventuallyConditionWith(t, ns, "web", chatv1alpha1.ConditionReady, metav1.ConditionFalse, chatv1alpha1.ReasonResourceConflict, "Secret "+envName)
	eventuallyConditionWith(t, ns, "web", chatv1alpha1.ConditionDegraded, metav1.ConditionTrue, chatv1alpha1.ReasonResourceConflict, "ConfigMap other-app")
	eventuallyEvent(t, ns, "web", chatv1alpha1.ReasonResourceConflict, "Secret "+envName)

	expectUntouched := func() {
		Consistently(func(g Gomega) {
			s := &corev1.Secret{}
			g.Expect(k8s.Get(ctx, key(ns, envName), s)).To(Succeed())
			g.Expect(s.ResourceVersion).To(Equal(foreignSecret.ResourceVersion), "Secret %s rewritten", envName)
			svc := &corev1.Service{}
			g.Expect(k8s.Get(ctx, key(ns, "web"), svc)).To(Succeed())
			g.Expect(svc.ResourceVersion).To(Equal(foreignSvc.ResourceVersion), "Service web rewritten")
		}, 2*time.Second, 200*time.Millisecond).Should(Succeed())
	}
	expectUntouched()

	// With the Secret out of the way, the Service is the next conflict.
	Expect(k8s.Delete(ctx, foreignSecret)).To(Succeed())
	eventuallyConditionWith(t, ns, "web", chatv1alpha1.ConditionReady, metav1.ConditionFalse, chatv1alpha1.ReasonResourceConflict,
		"Service web already exists and is not controlled by this ChatBackend (no controller)")
	eventuallyEvent(t, ns, "web", chatv1alpha1.ReasonResourceConflict, "Service web")
	svc := &corev1.Service{}
	Expect(k8s.Get(ctx, key(ns, "web"), svc)).To(Succeed())
	Expect(svc.Spec.Selector).To(Equal(map[string]string{"app": "other"}))
	Expect(svc.OwnerReferences).To(BeEmpty())

	// Once the owner removes it, the ChatBackend's own Service appears.
	Expect(k8s.Delete(ctx, foreignSvc)).To(Succeed())
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key(ns, "web"), svc)).To(Succeed())
		g.Expect(metav1.IsControlledBy(svc, getCB(g, ns, "web"))).To(BeTrue())
	}, timeout, interval).Should(Succeed())
	eventuallyCondition(t, ns, "web", chatv1alpha1.ConditionDegraded, metav1.ConditionFalse, chatv1alpha1.ReasonAsExpected)
	Expect(reconcileErrors(ns)).To(BeZero(), "a conflict is status, not an error retried with backoff")
}
