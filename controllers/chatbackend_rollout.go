package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// observeStuckRollout explains a rollout past its progress deadline: the
// Deployment's own message only says a ReplicaSet "has timed out
// progressing", while what the user must fix (an image that cannot be
// pulled, a crash loop) is on the new pods. It records the first waiting
// reason of a pod running the current template in the scope and warns
// once. Pods are read from the API server with the ChatBackend's label
// selector, only in this state (they are not cached, ManagerClientOptions).
func (r *ChatBackendReconciler) observeStuckRollout(ctx context.Context, s *scope) error {
	dep := s.deployment
	if dep == nil || progressDeadlineExceeded(dep) == nil {
		return nil
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(dep.Namespace), client.MatchingLabels(specs.SelectorLabels(s.cb))); err != nil {
		return fmt.Errorf("list the pods of Deployment %s: %w", dep.Name, err)
	}
	for i := range pods.Items {
		if !runsTemplate(&pods.Items[i], &dep.Spec.Template) {
			continue // an old pod, still serving
		}
		if w, _ := podWaitingProblem(&pods.Items[i]); w != "" {
			s.rolloutWaiting = w
			break
		}
	}
	r.eventOnce(ctx, s.cb, chatv1alpha1.ConditionDegraded, corev1.EventTypeWarning, chatv1alpha1.ReasonRolloutStuck, "RollOut",
		rolloutStuckMessage(dep, s.rolloutWaiting))
	return nil
}

// progressDeadlineExceeded returns the Deployment's Progressing condition
// when it says the rollout gave up, else nil.
func progressDeadlineExceeded(dep *appsv1.Deployment) *appsv1.DeploymentCondition {
	c := deploymentCondition(dep, appsv1.DeploymentProgressing)
	if c != nil && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
		return c
	}
	return nil
}

// rolloutStuckMessage is the RolloutStuck condition's message and Event
// note: the Deployment's message and, when known, what the new pods wait on.
func rolloutStuckMessage(dep *appsv1.Deployment, waiting string) string {
	msg := fmt.Sprintf("Deployment %s: %s", dep.Name, progressDeadlineExceeded(dep).Message)
	if waiting != "" {
		msg += "; " + waiting
	}
	return msg
}

// runsTemplate tells the pods of the current template from the previous
// ones by what the operator varies between rollouts: the image and the env
// hash.
func runsTemplate(pod *corev1.Pod, tmpl *corev1.PodTemplateSpec) bool {
	return len(pod.Spec.Containers) > 0 && len(tmpl.Spec.Containers) > 0 &&
		pod.Spec.Containers[0].Image == tmpl.Spec.Containers[0].Image &&
		pod.Annotations[specs.AnnotationEnvHash] == tmpl.Annotations[specs.AnnotationEnvHash]
}

// podWaitingProblem is "pod <name>: <reason>: <message>" for the first
// container of pod waiting on something other than its normal start
// (ErrImagePull, ImagePullBackOff, CrashLoopBackOff,
// CreateContainerConfigError, ...) with its reason, or "" when none waits.
func podWaitingProblem(pod *corev1.Pod) (problem, reason string) {
	for _, cs := range append(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			return fmt.Sprintf("pod %s: %s: %s", pod.Name, w.Reason, w.Message), w.Reason
		}
	}
	return "", ""
}
