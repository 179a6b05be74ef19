package controllers

import (
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// TestSetConditions checks the status computation on its own: which reason
// wins when several things are wrong, and that every condition carries the
// generation it was computed for.
func TestSetConditions(t *testing.T) {
	available := func(ready, updated int32, observed int64) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "chat", Generation: 4},
			Status: appsv1.DeploymentStatus{
				ObservedGeneration: observed, ReadyReplicas: ready, UpdatedReplicas: updated,
				Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}},
			},
		}
	}
	unavailable := &appsv1.Deployment{Status: appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{
		{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Message: "Deployment does not have minimum availability."}}}}
	missing := &condition{reason: chatv1alpha1.ReasonSecretNotFound, message: `Secret "db" not found`}
	monitored := condition{metav1.ConditionTrue, chatv1alpha1.ReasonMonitoringReconciled, "ok"}

	cases := []struct {
		name          string
		scope         scope
		migratedImage string
		wantReady     metav1.ConditionStatus
		wantReason    string
		wantDegraded  metav1.ConditionStatus
		wantAvailable string
	}{
		{"all good", scope{migration: migrationSucceeded, deployment: available(2, 2, 4), monitoring: monitored}, "v1",
			metav1.ConditionTrue, chatv1alpha1.ReasonReady, metav1.ConditionFalse, chatv1alpha1.ReasonDeploymentAvailable},
		{"rolling out", scope{migration: migrationSucceeded, deployment: available(2, 1, 4)}, "v1",
			metav1.ConditionFalse, ReasonRollingOut, metav1.ConditionFalse, chatv1alpha1.ReasonDeploymentAvailable},
		{"deployment controller has not seen the new generation", scope{migration: migrationSucceeded, deployment: available(2, 2, 3)}, "v1",
			metav1.ConditionFalse, ReasonRollingOut, metav1.ConditionFalse, chatv1alpha1.ReasonDeploymentAvailable},
		{"unavailable", scope{migration: migrationSucceeded, deployment: unavailable}, "v1",
			metav1.ConditionFalse, chatv1alpha1.ReasonDeploymentUnavailable, metav1.ConditionFalse, chatv1alpha1.ReasonDeploymentUnavailable},
		{"first migration running", scope{migration: migrationRunning}, "",
			metav1.ConditionFalse, chatv1alpha1.ReasonMigrating, metav1.ConditionFalse, chatv1alpha1.ReasonWaitingForMigration},
		{"upgrade failed while the old version serves", scope{migration: migrationFailed, deployment: available(2, 2, 4)}, "v1",
			metav1.ConditionFalse, chatv1alpha1.ReasonMigrationFailed, metav1.ConditionTrue, chatv1alpha1.ReasonDeploymentAvailable},
		{"missing secret wins over everything", scope{migration: migrationBlocked, secretProblem: missing, deployment: unavailable}, "v1",
			metav1.ConditionFalse, chatv1alpha1.ReasonSecretNotFound, metav1.ConditionTrue, chatv1alpha1.ReasonDeploymentUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			cb := &chatv1alpha1.ChatBackend{ObjectMeta: metav1.ObjectMeta{Name: "chat", Generation: 7}}
			cb.Spec.Replicas = ptr.To[int32](2)
			cb.Status.MigratedImage = tc.migratedImage
			s := tc.scope
			s.cb = cb
			setConditions(cb, &s)

			for _, ct := range []string{chatv1alpha1.ConditionReady, chatv1alpha1.ConditionMigrated, chatv1alpha1.ConditionAvailable,
				chatv1alpha1.ConditionDegraded, chatv1alpha1.ConditionMonitoringReady} {
				c := meta.FindStatusCondition(cb.Status.Conditions, ct)
				g.Expect(c).NotTo(BeNil(), ct)
				g.Expect(c.ObservedGeneration).To(Equal(int64(7)), ct)
				g.Expect(c.Reason).NotTo(BeEmpty(), ct)
			}
			ready := meta.FindStatusCondition(cb.Status.Conditions, chatv1alpha1.ConditionReady)
			g.Expect(ready.Status).To(Equal(tc.wantReady), ready.Message)
			g.Expect(ready.Reason).To(Equal(tc.wantReason), ready.Message)
			g.Expect(meta.FindStatusCondition(cb.Status.Conditions, chatv1alpha1.ConditionDegraded).Status).To(Equal(tc.wantDegraded))
			g.Expect(meta.FindStatusCondition(cb.Status.Conditions, chatv1alpha1.ConditionAvailable).Reason).To(Equal(tc.wantAvailable))
		})
	}
}
