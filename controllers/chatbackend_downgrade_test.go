package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// TestDowngradeIsRefusedUnlessAnnotated: once v2 is migrated, going back
// to v1 runs no migrations Job and rolls nothing: Degraded and Ready say
// DowngradeRefused, naming both versions and the annotation, with a
// Warning Event, while v2 keeps serving. An annotation naming another
// image does not help; one naming v1 lets the downgrade proceed.
func TestDowngradeIsRefusedUnlessAnnotated(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	const dbURL = "postgres://db/chat"
	Expect(k8s.Create(ctx, secret(ns, "db", map[string]string{"url": dbURL}))).To(Succeed())
	cb := chatBackend(ns, "chat", imageV2)
	Expect(k8s.Create(ctx, cb)).To(Succeed())
	migrate(t, ns, cb, dbURL)
	rollOut(t, ns, "chat", 2)
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionTrue, chatv1alpha1.ReasonReady)

	patchCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Image = imageV1 })
	c := eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionDegraded, metav1.ConditionTrue, chatv1alpha1.ReasonDowngradeRefused,
		"image "+imageV1+" (version v1.0.0) is older than the migrated image "+imageV2+" (version v2.0.0)")
	Expect(c.Message).To(ContainSubstring(chatv1alpha1.AnnotationAllowDowngrade + "=" + imageV1))
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionFalse, chatv1alpha1.ReasonDowngradeRefused)
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionAvailable, metav1.ConditionTrue, chatv1alpha1.ReasonDeploymentAvailable)
	eventuallyEvent(t, ns, "chat", chatv1alpha1.ReasonDowngradeRefused, imageV1)
	// The reconcile that wrote the condition decided not to migrate.
	jobV1 := migrationJobName(cb, imageV1, dbURL)
	Expect(apierrors.IsNotFound(k8s.Get(ctx, key(ns, jobV1), &batchv1.Job{}))).To(BeTrue(), "no migrations Job for the downgrade")
	Expect(deploymentImage(Default, ns)).To(Equal(imageV2))
	Expect(getCB(Default, ns, "chat").Status.MigratedImage).To(Equal(imageV2))

	// An annotation for some other image does not allow this one.
	setAllowDowngrade(ns, "registry.example.com/chat-apiserver:v0.9.0")
	Consistently(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, key(ns, jobV1), &batchv1.Job{}))
	}, 1500*time.Millisecond, 250*time.Millisecond).Should(BeTrue(), "an annotation naming another image must not allow the downgrade")

	setAllowDowngrade(ns, imageV1)
	cb.Spec.Image = imageV1
	migrate(t, ns, cb, dbURL)
	Eventually(func(g Gomega) { g.Expect(deploymentImage(g, ns)).To(Equal(imageV1)) }, timeout, interval).Should(Succeed())
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionDegraded, metav1.ConditionFalse, chatv1alpha1.ReasonAsExpected)
	Expect(reconcileErrors(ns)).To(BeZero())
}

func setAllowDowngrade(ns, image string) {
	EventuallyWithOffset(1, func(g Gomega) {
		cb := getCB(g, ns, "chat")
		if cb.Annotations == nil {
			cb.Annotations = map[string]string{}
		}
		cb.Annotations[chatv1alpha1.AnnotationAllowDowngrade] = image
		g.Expect(k8s.Update(context.Background(), cb)).To(Succeed())
	}, timeout, interval).Should(Succeed())
}
