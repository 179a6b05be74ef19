package controllers

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMigrationRetryDelay(t *testing.T) {
	g := NewWithT(t)
	for failures, want := range map[int32]time.Duration{
		0: time.Minute, 1: time.Minute, 2: 2 * time.Minute, 3: 4 * time.Minute, 6: 32 * time.Minute,
		7: time.Hour, 8: time.Hour, 1000: time.Hour,
	} {
		g.Expect(MigrationRetryDelay(failures)).To(Equal(want), "after %d failures", failures)
	}
}

// TestMigrationPodProblem: an image that cannot be pulled is stuck at once;
// an unschedulable pod only after UnschedulableStuckAfter (a cluster
// autoscaler may be adding a node); a crash loop is named but left to the
// Job's own backoff and deadline.
func TestMigrationPodProblem(t *testing.T) {
	now := time.Now()
	waiting := func(reason string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "m"}}}}}}
	}
	unschedulable := func(since time.Duration) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
			Message: "0/3 nodes are available", LastTransitionTime: metav1.NewTime(now.Add(-since))}}}}
	}
	cases := []struct {
		name    string
		pod     corev1.Pod
		problem string
		stuck   bool
	}{
		{"pull back-off", waiting("ImagePullBackOff"), "ImagePullBackOff", true},
		{"pull error", waiting("ErrImagePull"), "ErrImagePull", true},
		{"invalid name", waiting("InvalidImageName"), "InvalidImageName", true},
		{"missing Secret", waiting("CreateContainerConfigError"), "CreateContainerConfigError", true},
		{"crash loop", waiting("CrashLoopBackOff"), "CrashLoopBackOff", false},
		{"creating", waiting("ContainerCreating"), "", false},
		{"unschedulable a moment", unschedulable(time.Minute), "Unschedulable", false},
		{"unschedulable for long", unschedulable(10 * time.Minute), "0/3 nodes are available", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			problem, stuck := migrationPodProblem([]corev1.Pod{tc.pod}, now)
			if tc.problem == "" {
				g.Expect(problem).To(BeEmpty())
			} else {
				g.Expect(problem).To(ContainSubstring(tc.problem))
			}
			g.Expect(stuck).To(Equal(tc.stuck))
		})
	}
}
