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
// wins when several things are wrong, that Ready is False until a new
// version is migrated and fully rolled out (kubectl rollout status) while
// Available says the old one serves, and that every condition carries the
// generation it was computed for.
func TestSetConditions(t *testing.T) {
	// available is a Deployment of generation 4 whose controller observed
	// generation observed, with updated of total pods on the current
	// template and ready of them ready.
	available := func(ready, updated, total int32, observed int64) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "chat", Generation: 4},
			Status: appsv1.DeploymentStatus{
				ObservedGeneration: observed, Replicas: total, ReadyReplicas: ready, UpdatedReplicas: updated, AvailableReplicas: ready,
				Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}},
			},
		}
	}
	stuck := available(2, 1, 3, 4)
	stuck.Status.Conditions = append(stuck.Status.Conditions, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing,
		Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "chat-7c9" has timed out progressing.`})
	unavailable := &appsv1.Deployment{Status: appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{
		{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Message: "Deployment does not have minimum availability."}}}}
	missing := &condition{reason: chatv1alpha1.ReasonSecretNotFound, message: `Secret "db" not found`}
	monitored := condition{metav1.ConditionTrue, chatv1alpha1.ReasonMonitoringReconciled, "ok"}

	cases := []struct {
		name            string
		scope           scope
		migratedImage   string
		wantReady       metav1.ConditionStatus
		wantReason      string
		wantProgressing string
		wantDegraded    metav1.ConditionStatus
		wantAvailable   string
		wantMonitoring  string
	}{
		{"all good", scope{migration: migrationSucceeded, deployment: available(2, 2, 2, 4), monitoring: monitored}, "v1",
			metav1.ConditionTrue, chatv1alpha1.ReasonReady, chatv1alpha1.ReasonRolledOut, metav1.ConditionFalse, chatv1alpha1.ReasonDeploymentAvailable,
			chatv1alpha1.ReasonMonitoringReconciled},
		{"migration stuck while the old pods serve", scope{migration: migrationStuck, migrationMessage: "pod x: ImagePullBackOff", deployment: available(2, 2, 2, 4)}, "v1",
			metav1.ConditionFalse, chatv1alpha1.ReasonMigrationStuck, chatv1alpha1.ReasonMigrationStuck, metav1.ConditionTrue, chatv1alpha1.ReasonDeploymentAvailable,
			chatv1alpha1.ReasonNotReconciled},
		{"rolling out while the old pods serve", scope{migration: migrationSucceeded, deployment: available(2, 1, 3, 4)}, "v1",
			metav1.ConditionFalse, chatv1alpha1.ReasonRollingOut, chatv1alpha1.ReasonRollingOut, metav1.ConditionFalse, chatv1alpha1.ReasonDeploymentAvailable,
			chatv1alpha1.ReasonNotReconciled},
		{"old pods still terminating", scope{migration: migrationSucceeded, deployment: available(2, 2, 3, 4)}, "v1",
			metav1.ConditionFalse, chatv1alpha1.ReasonRollingOut, chatv1alpha1.ReasonRollingOut, metav1.ConditionFalse, chatv1alpha1.ReasonDeploymentAvailable,
			chatv1alpha1.ReasonNotReconciled},
		{"deployment controller has not seen the new generation", scope{migration: migrationSucceeded, deployment: available(2, 2, 2, 3)}, "v1",
			metav1.ConditionFalse, chatv1alpha1.ReasonRollingOut, chatv1alpha1.ReasonRollingOut, metav1.ConditionFalse, chatv1alpha1.ReasonDeploymentAvailable,
			chatv1alpha1.ReasonNotReconciled},
		{"upgrade migrating while the old version serves", scope{migration: migrationRunning, migrationMessage: "Job chat-migrate-1 is migrating the database for image v2",
			deployment: available(2, 2, 2, 4)}, "v1",
			metav1.ConditionFalse, chatv1alpha1.ReasonMigrating, chatv1alpha1.ReasonMigrating, metav1.ConditionFalse, chatv1alpha1.ReasonDeploymentAvailable,
			chatv1alpha1.ReasonNotReconciled},
		{"rollout past its deadline", scope{migration: migrationSucceeded, deployment: stuck}, "v1",
			metav1.ConditionFalse, chatv1alpha1.ReasonRolloutStuck, chatv1alpha1.ReasonRolloutStuck, metav1.ConditionTrue, chatv1alpha1.ReasonDeploymentAvailable,
			chatv1alpha1.ReasonNotReconciled},
		{"unavailable", scope{migration: migrationSucceeded, deployment: unavailable}, "v1",
			metav1.ConditionFalse, chatv1alpha1.ReasonDeploymentUnavailable, chatv1alpha1.ReasonRollingOut, metav1.ConditionFalse, chatv1alpha1.ReasonDeploymentUnavailable,
			chatv1alpha1.ReasonNotReconciled},
		{"first migration running", scope{migration: migrationRunning}, "",
			metav1.ConditionFalse, chatv1alpha1.ReasonMigrating, chatv1alpha1.ReasonMigrating, metav1.ConditionFalse, chatv1alpha1.ReasonWaitingForMigration,
			chatv1alpha1.ReasonNotReconciled},
		{"upgrade failed while the old version serves", scope{migration: migrationFailed, deployment: available(2, 2, 2, 4)}, "v1",
			metav1.ConditionFalse, chatv1alpha1.ReasonMigrationFailed, chatv1alpha1.ReasonMigrationFailed, metav1.ConditionTrue, chatv1alpha1.ReasonDeploymentAvailable,
			chatv1alpha1.ReasonNotReconciled},
		{"missing secret wins over everything", scope{migration: migrationBlocked, secretProblem: missing, deployment: unavailable}, "v1",
			metav1.ConditionFalse, chatv1alpha1.ReasonSecretNotFound, chatv1alpha1.ReasonWaitingForSecrets, metav1.ConditionTrue, chatv1alpha1.ReasonDeploymentUnavailable,
			chatv1alpha1.ReasonNotReconciled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			cb := &chatv1alpha1.ChatBackend{ObjectMeta: metav1.ObjectMeta{Name: "chat", Generation: 7}}
			cb.Spec.Replicas = ptr.To[int32](2)
			cb.Status.MigratedImage = tc.migratedImage
			s := tc.scope
			s.cb = cb
			setStatus(cb, &s)

			for _, ct := range []string{chatv1alpha1.ConditionReady, chatv1alpha1.ConditionProgressing, chatv1alpha1.ConditionMigrated,
				chatv1alpha1.ConditionAvailable, chatv1alpha1.ConditionDegraded, chatv1alpha1.ConditionMonitoringReady} {
				c := meta.FindStatusCondition(cb.Status.Conditions, ct)
				g.Expect(c).NotTo(BeNil(), ct)
				g.Expect(c.ObservedGeneration).To(Equal(int64(7)), ct)
				g.Expect(c.Reason).NotTo(BeEmpty(), ct)
			}
			ready := meta.FindStatusCondition(cb.Status.Conditions, chatv1alpha1.ConditionReady)
			g.Expect(ready.Status).To(Equal(tc.wantReady), ready.Message)
			g.Expect(ready.Reason).To(Equal(tc.wantReason), ready.Message)
			switch {
			case tc.wantReason == chatv1alpha1.ReasonRollingOut:
				g.Expect(ready.Message).To(And(ContainSubstring("image v1 rolling out"), ContainSubstring("the previous pods keep serving")))
			case tc.wantReason == chatv1alpha1.ReasonMigrating && tc.migratedImage != "":
				g.Expect(ready.Message).To(And(ContainSubstring("image v2"), ContainSubstring("keeps serving image v1")))
			}
			progressing := meta.FindStatusCondition(cb.Status.Conditions, chatv1alpha1.ConditionProgressing)
			g.Expect(progressing.Reason).To(Equal(tc.wantProgressing), progressing.Message)
			g.Expect(progressing.Status == metav1.ConditionTrue).To(Equal(tc.wantProgressing == chatv1alpha1.ReasonRollingOut || tc.wantProgressing == chatv1alpha1.ReasonMigrating))
			g.Expect(meta.FindStatusCondition(cb.Status.Conditions, chatv1alpha1.ConditionDegraded).Status).To(Equal(tc.wantDegraded))
			g.Expect(meta.FindStatusCondition(cb.Status.Conditions, chatv1alpha1.ConditionAvailable).Reason).To(Equal(tc.wantAvailable))
			g.Expect(meta.FindStatusCondition(cb.Status.Conditions, chatv1alpha1.ConditionMonitoringReady).Reason).To(Equal(tc.wantMonitoring))
		})
	}
}

// TestReplicaCounts: `kubectl get chatbackends` prints READY as ready/desired
// from the Deployment, as it does for Deployments, not the desired count.
func TestReplicaCounts(t *testing.T) {
	g := NewWithT(t)
	cb := &chatv1alpha1.ChatBackend{ObjectMeta: metav1.ObjectMeta{Name: "chat", Generation: 1}}
	cb.Spec.Replicas = ptr.To[int32](3)
	s := scope{cb: cb, migration: migrationSucceeded, deployment: &appsv1.Deployment{Status: appsv1.DeploymentStatus{
		Replicas: 4, ReadyReplicas: 1, UpdatedReplicas: 2}}}
	setStatus(cb, &s)
	g.Expect(cb.Status.Replicas).To(HaveValue(Equal(int32(3))))
	g.Expect(cb.Status.ReadyReplicas).To(HaveValue(Equal(int32(1))))
	g.Expect(cb.Status.UpdatedReplicas).To(HaveValue(Equal(int32(2))))
	g.Expect(cb.Status.Ready).To(Equal("1/3"))

	s.deployment = nil
	setStatus(cb, &s)
	g.Expect(cb.Status.Ready).To(Equal("0/3"), "no Deployment, nothing ready")
}

// TestFailedMigrationMessage: before any migration succeeded nothing serves,
// and the message says so instead of naming an empty image.
func TestFailedMigrationMessage(t *testing.T) {
	g := NewWithT(t)
	g.Expect(servingNote("")).To(ContainSubstring("no version serves yet"))
	g.Expect(servingNote("reg/chat:v1")).To(ContainSubstring("reg/chat:v1"))
}
