package controllers_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// TestPodSettingsReachThePods: through the real API server (whose
// validation the pod templates must pass), the migrations pod gets its own
// metadata and the shared identity; the API pods spread over nodes by
// default, and a spread of the spec replaces that default.
func TestPodSettingsReachThePods(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	const dbURL = "postgres://db/chat"
	Expect(k8s.Create(ctx, secret(ns, "db", map[string]string{"url": dbURL}))).To(Succeed())
	cb := chatBackend(ns, "chat", "registry.example.com/chat-apiserver:v1")
	cb.Spec.ServiceAccountName = "chat-identity"
	cb.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
	cb.Spec.Migration.PodMetadata = &chatv1alpha1.PodMetadata{Annotations: map[string]string{"sidecar.istio.io/inject": "false"}}
	cb.Spec.PodMetadata = &chatv1alpha1.PodMetadata{Labels: map[string]string{"team": "docs"}}
	Expect(k8s.Create(ctx, cb)).To(Succeed())

	name := migrationJobName(cb, cb.Spec.Image, dbURL)
	job := &batchv1.Job{}
	Eventually(func() error { return k8s.Get(ctx, key(ns, name), job) }, timeout, interval).Should(Succeed())
	Expect(job.Spec.Template.Annotations).To(HaveKeyWithValue("sidecar.istio.io/inject", "false"))
	Expect(job.Spec.Template.Labels).NotTo(HaveKey("team"))
	Expect(job.Spec.Template.Spec.ServiceAccountName).To(Equal("chat-identity"))
	Expect(job.Spec.Template.Spec.ImagePullSecrets).To(Equal(cb.Spec.ImagePullSecrets))
	migrate(t, ns, cb, dbURL)

	dep := &appsv1.Deployment{}
	Eventually(func() error { return k8s.Get(ctx, key(ns, "chat"), dep) }, timeout, interval).Should(Succeed())
	Expect(dep.Spec.Template.Labels).To(HaveKeyWithValue("team", "docs"))
	Expect(dep.Spec.Template.Spec.ServiceAccountName).To(Equal("chat-identity"))
	spread := dep.Spec.Template.Spec.TopologySpreadConstraints
	Expect(spread).To(HaveLen(1), "a default spread when the spec sets none")
	Expect(spread[0].TopologyKey).To(Equal(corev1.LabelHostname))
	Expect(spread[0].WhenUnsatisfiable).To(Equal(corev1.ScheduleAnyway), "soft: a one-node cluster still schedules")
	Expect(spread[0].LabelSelector.MatchLabels).To(Equal(specs.SelectorLabels(cb)))
	Expect(spread[0].MatchLabelKeys).To(ConsistOf(appsv1.DefaultDeploymentUniqueLabelKey))

	zone := corev1.TopologySpreadConstraint{
		MaxSkew: 1, TopologyKey: corev1.LabelTopologyZone, WhenUnsatisfiable: corev1.DoNotSchedule,
		LabelSelector: &metav1.LabelSelector{MatchLabels: specs.SelectorLabels(cb)},
	}
	patchCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) {
		cb.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{zone}
	})
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key(ns, "chat"), dep)).To(Succeed())
		g.Expect(dep.Spec.Template.Spec.TopologySpreadConstraints).To(HaveLen(1))
		g.Expect(dep.Spec.Template.Spec.TopologySpreadConstraints[0].TopologyKey).To(Equal(corev1.LabelTopologyZone),
			"the spec's spread replaces the default")
	}, timeout, interval).Should(Succeed())
	Expect(reconcileErrors(ns)).To(BeZero())
}
