package controllers_test

import (
	"context"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// TestStuckRolloutNamesThePodsReason: a new image that migrated but cannot
// be pulled for the API pods makes the Deployment exceed its progress
// deadline; the status says RolloutStuck (Degraded=True) with the new pod's
// waiting reason, not an old pod's, and warns with an Event.
func TestStuckRolloutNamesThePodsReason(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	cb := createMigrated(t, ns, "postgres://db/chat")
	rollOut(t, ns, "chat", 2)
	dep := &appsv1.Deployment{}
	Expect(k8s.Get(ctx, key(ns, "chat"), dep)).To(Succeed())
	oldPod := apiPod(ns, "chat-old-1", dep.Spec.Template)

	const v2 = "registry.example.com/chat-apiserver:v2"
	patchCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Image = v2 })
	cb.Spec.Image = v2
	migrate(t, ns, cb, "postgres://db/chat")
	Eventually(func(g Gomega) string {
		g.Expect(k8s.Get(ctx, key(ns, "chat"), dep)).To(Succeed())
		return dep.Spec.Template.Spec.Containers[0].Image
	}, timeout, interval).Should(Equal(v2))
	newPod := apiPod(ns, "chat-new-1", dep.Spec.Template)

	// What the kubelet reports: the old pod had a crash once, the new one
	// cannot pull its image.
	setWaiting(oldPod, "CrashLoopBackOff", "old news")
	setWaiting(newPod, "ImagePullBackOff", `Back-off pulling image "`+v2+`"`)
	// What the Deployment controller reports after progressDeadlineSeconds.
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key(ns, "chat"), dep)).To(Succeed())
		now := metav1.Now()
		dep.Status = appsv1.DeploymentStatus{
			ObservedGeneration: dep.Generation, Replicas: 3, UpdatedReplicas: 1, ReadyReplicas: 2, AvailableReplicas: 2, UnavailableReplicas: 1,
			Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable", LastUpdateTime: now, LastTransitionTime: now},
				{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded",
					Message: `ReplicaSet "chat-7c9" has timed out progressing.`, LastUpdateTime: now, LastTransitionTime: now},
			},
		}
		g.Expect(k8s.Status().Update(ctx, dep)).To(Succeed())
	}, timeout, interval).Should(Succeed())

	c := eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionDegraded, metav1.ConditionTrue, chatv1alpha1.ReasonRolloutStuck,
		"pod chat-new-1: ImagePullBackOff")
	Expect(c.Message).To(ContainSubstring("has timed out progressing"))
	Expect(c.Message).NotTo(ContainSubstring("CrashLoopBackOff"), "an old pod's trouble is not the rollout's")
	eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionProgressing, metav1.ConditionFalse, chatv1alpha1.ReasonRolloutStuck, "ImagePullBackOff")
	eventuallyEvent(t, ns, "chat", chatv1alpha1.ReasonRolloutStuck, "pod chat-new-1: ImagePullBackOff")
	Expect(reconcileErrors(ns)).To(BeZero())
}

// TestReadyFollowsRolloutStatus: Ready means the desired state is realised
// (kstatus, kubectl rollout status), so a new image that migrated but is
// only partly rolled out is Ready=False, RollingOut, while Available stays
// True because the previous pods serve; Ready turns True when every replica
// runs the new template and no old pod is left.
func TestReadyFollowsRolloutStatus(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	cb := createMigrated(t, ns, "postgres://db/chat")
	rollOut(t, ns, "chat", 2)
	eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionTrue, chatv1alpha1.ReasonReady, "chat-apiserver:v1")

	const v2 = "registry.example.com/chat-apiserver:v2"
	patchCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Image = v2 })
	cb.Spec.Image = v2
	migrate(t, ns, cb, "postgres://db/chat")
	dep := &appsv1.Deployment{}
	Eventually(func(g Gomega) string {
		g.Expect(k8s.Get(ctx, key(ns, "chat"), dep)).To(Succeed())
		return dep.Spec.Template.Spec.Containers[0].Image
	}, timeout, interval).Should(Equal(v2))

	// What the Deployment controller reports mid-rollout: one new pod,
	// two old ones available, and then every replica new while an old pod
	// still terminates.
	for _, st := range []struct{ replicas, updated int32 }{{3, 1}, {3, 2}} {
		setDeploymentStatus(t, ns, "chat", appsv1.DeploymentStatus{
			Replicas: st.replicas, UpdatedReplicas: st.updated, ReadyReplicas: 2, AvailableReplicas: 2,
		})
		eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionFalse, chatv1alpha1.ReasonRollingOut,
			fmt.Sprintf("image %s rolling out: %d/2 replicas run the current pod template; the previous pods keep serving", v2, st.updated))
		eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionAvailable, metav1.ConditionTrue, chatv1alpha1.ReasonDeploymentAvailable)
		eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionDegraded, metav1.ConditionFalse, chatv1alpha1.ReasonAsExpected)
		eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionProgressing, metav1.ConditionTrue, chatv1alpha1.ReasonRollingOut)
	}

	rollOut(t, ns, "chat", 2)
	eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionTrue, chatv1alpha1.ReasonReady, "chat-apiserver:v2")
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionProgressing, metav1.ConditionFalse, chatv1alpha1.ReasonRolledOut)
	Expect(reconcileErrors(ns)).To(BeZero())
}

// apiPod creates a pod of the API Deployment's template, as its ReplicaSet
// would.
func apiPod(ns, name string, tmpl corev1.PodTemplateSpec) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: tmpl.Labels, Annotations: tmpl.Annotations},
		Spec:       tmpl.Spec,
	}
	ExpectWithOffset(1, k8s.Create(context.Background(), pod)).To(Succeed())
	return pod
}

func setWaiting(pod *corev1.Pod, reason, message string) {
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: specs.ContainerName, Image: pod.Spec.Containers[0].Image,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
	}}
	ExpectWithOffset(1, k8s.Status().Update(context.Background(), pod)).To(Succeed())
}
