package controllers_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers"
)

// TestConditionMetric: chatbackend_condition carries one series per
// condition of the ChatBackend, with the status and reason the status
// says; a condition that changes leaves no stale series; a deleted
// ChatBackend's series are dropped.
func TestConditionMetric(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	_, job := createMigrating(t, ns, "postgres://db/chat")
	Eventually(func() []string { return conditionSeries(ns, "chat")[chatv1alpha1.ConditionMigrated] }, timeout, interval).
		Should(Equal([]string{"False/" + chatv1alpha1.ReasonMigrating}))

	finishJob(t, ns, job, true)
	Eventually(func() []string { return conditionSeries(ns, "chat")[chatv1alpha1.ConditionMigrated] }, timeout, interval).
		Should(Equal([]string{"True/" + chatv1alpha1.ReasonMigrationSucceeded}), "one series per condition, none stale")
	Eventually(func(g Gomega) {
		cb := getCB(g, ns, "chat")
		want := map[string][]string{}
		for _, c := range cb.Status.Conditions {
			want[c.Type] = []string{string(c.Status) + "/" + c.Reason}
		}
		g.Expect(conditionSeries(ns, "chat")).To(Equal(want), "the metric says what the status says")
	}, timeout, interval).Should(Succeed())
	Expect(conditionSeries(ns, "chat")).To(HaveKeyWithValue(chatv1alpha1.ConditionAvailable,
		[]string{string(metav1.ConditionFalse) + "/" + chatv1alpha1.ReasonDeploymentUnavailable}))

	Expect(k8s.Delete(ctx, getCB(Default, ns, "chat"))).To(Succeed())
	Eventually(func() map[string][]string { return conditionSeries(ns, "chat") }, timeout, interval).
		Should(BeEmpty(), "a deleted ChatBackend's series are dropped")
}

// conditionSeries reads chatbackend_condition of one ChatBackend from the
// registry the manager serves: condition type → "status/reason" of each
// series with value 1.
func conditionSeries(ns, name string) map[string][]string {
	mfs, err := ctrlmetrics.Registry.Gather()
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	out := map[string][]string{}
	for _, mf := range mfs {
		if mf.GetName() != controllers.ConditionMetric {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["chatbackend_namespace"] == ns && l["chatbackend"] == name && m.GetGauge().GetValue() == 1 {
				out[l["type"]] = append(out[l["type"]], l["status"]+"/"+l["reason"])
			}
		}
	}
	return out
}
