package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers"
)

// TestScaleSubresourceDrivesTheDeployment: an HPA (or `kubectl scale
// chatbackend`) scales the ChatBackend through its scale subresource, the
// Deployment follows and stays there, and the PDB follows the real replica
// count. envtest runs no HPA controller, so the test reads and writes the
// scale subresource exactly as that controller does.
func TestScaleSubresourceDrivesTheDeployment(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	createMigrated(t, ns, "postgres://db/chat")

	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "chat"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{
				APIVersion: chatv1alpha1.GroupVersion.String(), Kind: "ChatBackend", Name: "chat"},
			MinReplicas: ptr.To[int32](2),
			MaxReplicas: 6,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{
					Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](70)}},
			}},
		},
	}
	Expect(k8s.Create(ctx, hpa)).To(Succeed())

	// The HPA controller reads the target's scale: its selector must pick
	// the API pods, whose CPU it averages.
	dep := &appsv1.Deployment{}
	Eventually(func() error { return k8s.Get(ctx, key(ns, "chat"), dep) }, timeout, interval).Should(Succeed())
	scale := &autoscalingv1.Scale{}
	Eventually(func(g Gomega) {
		g.Expect(k8s.SubResource("scale").Get(ctx, getCB(g, ns, "chat"), scale)).To(Succeed())
		g.Expect(scale.Status.Replicas).To(Equal(int32(2)))
		g.Expect(scale.Status.Selector).NotTo(BeEmpty())
	}, timeout, interval).Should(Succeed())
	sel, err := labels.Parse(scale.Status.Selector)
	Expect(err).NotTo(HaveOccurred())
	Expect(sel.Matches(labels.Set(dep.Spec.Template.Labels))).To(BeTrue(), "scale selector %q must select the API pods", scale.Status.Selector)

	// The HPA scales out: the Deployment follows and is not put back.
	writeScale(ns, "chat", 5)
	expectDeploymentReplicas(ns, 5)
	Consistently(func(g Gomega) int32 {
		g.Expect(k8s.Get(ctx, key(ns, "chat"), dep)).To(Succeed())
		return *dep.Spec.Replicas
	}, 2*time.Second, 200*time.Millisecond).Should(Equal(int32(5)), "the scaled replica count is not reverted")
	Expect(getCB(Default, ns, "chat").Status.Replicas).To(HaveValue(Equal(int32(5))))
	Eventually(func() float64 { return desiredReplicasGauge(ns, "chat") }, timeout, interval).Should(Equal(5.0))

	// Scaled to zero, the operator's chatbackend_desired_replicas says no
	// pod is expected, which keeps ChatBackendAPIDown silent.
	writeScale(ns, "chat", 0)
	expectDeploymentReplicas(ns, 0)
	Eventually(func() float64 { return desiredReplicasGauge(ns, "chat") }, timeout, interval).Should(BeZero())

	// kubectl scale chatbackend chat --replicas=1: one pod, so no PDB
	// (it would block every drain); back to 3: the PDB returns.
	writeScale(ns, "chat", 1)
	expectDeploymentReplicas(ns, 1)
	Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, key(ns, "chat"), &policyv1.PodDisruptionBudget{}))
	}, timeout, interval).Should(BeTrue(), "no PDB for one replica")
	writeScale(ns, "chat", 3)
	expectDeploymentReplicas(ns, 3)
	pdb := &policyv1.PodDisruptionBudget{}
	Eventually(func() error { return k8s.Get(ctx, key(ns, "chat"), pdb) }, timeout, interval).Should(Succeed())
	Expect(pdb.Spec.UnhealthyPodEvictionPolicy).To(HaveValue(Equal(policyv1.AlwaysAllow)),
		"pods unready in a database outage must not block node drains")
	Expect(reconcileErrors(ns)).To(BeZero())
}

// writeScale sets the ChatBackend's scale subresource, as the HPA
// controller and `kubectl scale` do.
func writeScale(ns, name string, replicas int32) {
	EventuallyWithOffset(1, func(g Gomega) {
		cb := getCB(g, ns, name)
		scale := &autoscalingv1.Scale{}
		g.Expect(k8s.SubResource("scale").Get(context.Background(), cb, scale)).To(Succeed())
		scale.Spec.Replicas = replicas
		g.Expect(k8s.SubResource("scale").Update(context.Background(), cb, client.WithSubResourceBody(scale))).To(Succeed())
	}, timeout, interval).Should(Succeed())
}

func expectDeploymentReplicas(ns string, want int32) {
	EventuallyWithOffset(1, func(g Gomega) int32 {
		dep := &appsv1.Deployment{}
		g.Expect(k8s.Get(context.Background(), key(ns, "chat"), dep)).To(Succeed())
		return *dep.Spec.Replicas
	}, timeout, interval).Should(Equal(want))
}

// desiredReplicasGauge reads the operator's chatbackend_desired_replicas
// for one ChatBackend from the registry the manager serves; -1 when absent.
func desiredReplicasGauge(ns, name string) float64 {
	mfs, err := ctrlmetrics.Registry.Gather()
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	for _, mf := range mfs {
		if mf.GetName() != controllers.DesiredReplicasMetric {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["chatbackend_namespace"] == ns && l["chatbackend"] == name {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}
