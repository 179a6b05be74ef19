package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// patchStatus computes the status from what the phases recorded in s and
// patches it. It runs after every reconcile, also a failed one, so the
// status never lags behind what the operator knows.
func (r *ChatBackendReconciler) patchStatus(ctx context.Context, s *scope, before *chatv1alpha1.ChatBackend) error {
	setStatus(s.cb, s)
	return r.writeStatus(ctx, s.cb, before)
}

// writeStatus patches cb's status from before, unless it is unchanged: an
// empty merge patch still costs an API request, and across a fleet of
// ChatBackends requeued for rechecks those add up to a steady load that
// changes nothing.
func (r *ChatBackendReconciler) writeStatus(ctx context.Context, cb, before *chatv1alpha1.ChatBackend) error {
	if equality.Semantic.DeepEqual(before.Status, cb.Status) {
		return nil
	}
	key := types.NamespacedName{Namespace: cb.Namespace, Name: cb.Name}
	if err := r.Status().Patch(ctx, cb, client.MergeFrom(before)); err != nil {
		r.statusWrites.forget(key)
		if apierrors.IsNotFound(err) {
			return nil // deleted while being reconciled: nothing to report on
		}
		return fmt.Errorf("patch status: %w", err)
	}
	r.statusWrites.record(cb)
	return nil
}

// setStatus is the status as a pure function of the scope (and of
// status.migratedImage, which the migration phase advances).
func setStatus(cb *chatv1alpha1.ChatBackend, s *scope) {
	cb.Status.ObservedGeneration = cb.Generation
	replicas, ready, updated := cb.Spec.ReplicasOrDefault(), int32(0), int32(0)
	if s.deployment != nil {
		ready, updated = s.deployment.Status.ReadyReplicas, s.deployment.Status.UpdatedReplicas
	}
	cb.Status.Replicas, cb.Status.ReadyReplicas, cb.Status.UpdatedReplicas = &replicas, &ready, &updated
	cb.Status.Ready = fmt.Sprintf("%d/%d", ready, replicas)
	cb.Status.Selector = labels.SelectorFromSet(specs.SelectorLabels(cb)).String()
	if s.serviceURL != "" {
		cb.Status.URL = s.serviceURL
	}
	cb.Status.IgnoredEnv = s.ignoredEnv
	setConditions(cb, s)
	setIngestStatus(cb, s)
}

// setConditions derives the six conditions from the scope. The messages of
// Ready (missing Secret) and Migrated (failed Job) double as the Events'
// notes: eventOnce compares them to emit each Event once per occurrence.
func setConditions(cb *chatv1alpha1.ChatBackend, s *scope) {
	set := func(t string, c condition) {
		meta.SetStatusCondition(&cb.Status.Conditions, metav1.Condition{
			Type: t, Status: c.status, Reason: c.reason, Message: c.message, ObservedGeneration: cb.Generation,
		})
	}

	migrated := migratedCondition(s)
	set(chatv1alpha1.ConditionMigrated, migrated)
	available := availableCondition(cb, s.deployment)
	set(chatv1alpha1.ConditionAvailable, available)
	progressing := progressingCondition(cb, s, migrated)
	set(chatv1alpha1.ConditionProgressing, progressing)
	degraded := degradedCondition(s, migrated, progressing)
	set(chatv1alpha1.ConditionDegraded, degraded)

	mon := s.monitoring
	if mon.status == "" {
		mon = condition{metav1.ConditionUnknown, chatv1alpha1.ReasonNotReconciled, "monitoring was not reconciled"}
	}
	set(chatv1alpha1.ConditionMonitoringReady, mon)

	set(chatv1alpha1.ConditionReady, readyCondition(cb, s, migrated, available, progressing, degraded))
	// This reconcile ran, so reconciling is not paused (any more).
	meta.RemoveStatusCondition(&cb.Status.Conditions, chatv1alpha1.ConditionPaused)
}

func migratedCondition(s *scope) condition {
	switch s.migration {
	case migrationSucceeded:
		return condition{metav1.ConditionTrue, chatv1alpha1.ReasonMigrationSucceeded, s.migrationMessage}
	case migrationFailed:
		return condition{metav1.ConditionFalse, chatv1alpha1.ReasonMigrationFailed, s.migrationMessage}
	case migrationStuck:
		return condition{metav1.ConditionFalse, chatv1alpha1.ReasonMigrationStuck, s.migrationMessage}
	case migrationRefused:
		return condition{metav1.ConditionFalse, chatv1alpha1.ReasonDowngradeRefused, s.migrationMessage}
	case migrationRunning:
		return condition{metav1.ConditionFalse, chatv1alpha1.ReasonMigrating, s.migrationMessage}
	case migrationDelayed:
		return condition{metav1.ConditionFalse, chatv1alpha1.ReasonRolloutDelayed, s.migrationMessage}
	default:
		msg := "waiting for the referenced Secrets"
		if s.secretProblem != nil {
			msg += ": " + s.secretProblem.message
		}
		return condition{metav1.ConditionFalse, chatv1alpha1.ReasonWaitingForSecrets, msg}
	}
}

func availableCondition(cb *chatv1alpha1.ChatBackend, dep *appsv1.Deployment) condition {
	if dep == nil {
		if cb.Status.MigratedImage == "" {
			return condition{metav1.ConditionFalse, chatv1alpha1.ReasonWaitingForMigration,
				"the Deployment is created once the first migration succeeds"}
		}
		return condition{metav1.ConditionFalse, chatv1alpha1.ReasonDeploymentUnavailable, fmt.Sprintf("Deployment %s not found", cb.Name)}
	}
	c := deploymentCondition(dep, appsv1.DeploymentAvailable)
	switch {
	case c == nil:
		return condition{metav1.ConditionFalse, chatv1alpha1.ReasonDeploymentUnavailable,
			fmt.Sprintf("Deployment %s has not reported availability yet", dep.Name)}
	case c.Status == corev1.ConditionTrue:
		return condition{metav1.ConditionTrue, chatv1alpha1.ReasonDeploymentAvailable,
			fmt.Sprintf("%d/%d replicas ready", dep.Status.ReadyReplicas, cb.Spec.ReplicasOrDefault())}
	default:
		return condition{metav1.ConditionFalse, chatv1alpha1.ReasonDeploymentUnavailable, c.Message}
	}
}

// progressingCondition is True while a change is on its way to the pods: the
// spec's image is being migrated, or the Deployment rolls out its current
// template. A rollout past its progress deadline is no longer progressing.
func progressingCondition(cb *chatv1alpha1.ChatBackend, s *scope, migrated condition) condition {
	if s.migration == migrationRunning {
		return condition{metav1.ConditionTrue, chatv1alpha1.ReasonMigrating, s.migrationMessage}
	}
	dep := s.deployment
	if dep == nil || s.migration != migrationSucceeded {
		// Nothing rolls: either no Deployment yet or the migration is
		// blocked or failed, which Migrated explains.
		return condition{metav1.ConditionFalse, migrated.reason, migrated.message}
	}
	if progressDeadlineExceeded(dep) != nil {
		return condition{metav1.ConditionFalse, chatv1alpha1.ReasonRolloutStuck, rolloutStuckMessage(dep, s.rolloutWaiting)}
	}
	if !rolledOut(cb, dep) {
		return condition{metav1.ConditionTrue, chatv1alpha1.ReasonRollingOut,
			fmt.Sprintf("%d/%d replicas run the current pod template", dep.Status.UpdatedReplicas, cb.Spec.ReplicasOrDefault())}
	}
	return condition{metav1.ConditionFalse, chatv1alpha1.ReasonRolledOut, "every replica runs the current pod template"}
}

// rolledOut is the Deployment controller's own notion of a complete rollout
// (kubectl rollout status): the current generation observed, every replica
// updated and available, and no old replica left.
func rolledOut(cb *chatv1alpha1.ChatBackend, dep *appsv1.Deployment) bool {
	want := cb.Spec.ReplicasOrDefault()
	st := dep.Status
	return st.ObservedGeneration >= dep.Generation &&
		st.UpdatedReplicas >= want && st.Replicas <= st.UpdatedReplicas && st.AvailableReplicas >= st.UpdatedReplicas
}

// degradedCondition is True when the operator cannot converge without help.
func degradedCondition(s *scope, migrated, progressing condition) condition {
	switch {
	case s.conflict != nil:
		return *s.conflict
	case s.migration == migrationFailed || s.migration == migrationStuck || s.migration == migrationRefused:
		return condition{metav1.ConditionTrue, migrated.reason, migrated.message}
	case s.secretProblem != nil:
		return condition{metav1.ConditionTrue, s.secretProblem.reason, s.secretProblem.message}
	case progressing.reason == chatv1alpha1.ReasonRolloutStuck:
		return condition{metav1.ConditionTrue, progressing.reason, progressing.message}
	default:
		return condition{metav1.ConditionFalse, chatv1alpha1.ReasonAsExpected, "no failure"}
	}
}

// readyCondition is True when the desired state is fully realised, the
// kstatus convention that Flux, Argo CD and `kubectl wait
// --for=condition=Ready` rely on: the referenced Secrets resolve, the spec's
// image is migrated on the database the env Secret points at, the
// Deployment has rolled out its current template (rolledOut, what `kubectl
// rollout status` waits for) and nothing is degraded. A migration or
// rollout of a new version therefore makes Ready False (Migrating,
// RollingOut) even while the previous version keeps serving: Available
// is the condition that says the API serves, and the message says so too.
// When several things are wrong, the first a user has to fix wins.
func readyCondition(cb *chatv1alpha1.ChatBackend, s *scope, migrated, available, progressing, degraded condition) condition {
	switch {
	case degraded.status == metav1.ConditionTrue:
		return condition{metav1.ConditionFalse, degraded.reason, degraded.message}
	case available.status != metav1.ConditionTrue && s.migration != migrationSucceeded:
		// Nothing serves yet because the first migration has not finished.
		return condition{metav1.ConditionFalse, migrated.reason, migrated.message}
	case available.status != metav1.ConditionTrue:
		return condition{metav1.ConditionFalse, available.reason, available.message}
	case s.migration == migrationDelayed:
		// The new default image is not migrated yet: the desired state is
		// not realised, though the previous image serves (the message).
		return condition{metav1.ConditionFalse, migrated.reason, migrated.message}
	case progressing.reason == chatv1alpha1.ReasonMigrating:
		return condition{metav1.ConditionFalse, progressing.reason,
			progressing.message + "; " + servingNote(cb.Status.MigratedImage)}
	case progressing.status == metav1.ConditionTrue:
		return condition{metav1.ConditionFalse, progressing.reason, fmt.Sprintf(
			"image %s rolling out: %s; the previous pods keep serving", cb.Status.MigratedImage, progressing.message)}
	}
	return condition{metav1.ConditionTrue, chatv1alpha1.ReasonReady,
		fmt.Sprintf("image %s serves at %s", cb.Status.MigratedImage, cb.Status.URL)}
}

func deploymentCondition(dep *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range dep.Status.Conditions {
		if dep.Status.Conditions[i].Type == t {
			return &dep.Status.Conditions[i]
		}
	}
	return nil
}

// event records an Event on the ChatBackend and logs it: the Event is for
// `kubectl describe`, the log line for whoever reads the operator's logs.
// Notes name Secrets and keys, never their values.
func (r *ChatBackendReconciler) event(ctx context.Context, cb *chatv1alpha1.ChatBackend, eventType, reason, action, note string) {
	log.FromContext(ctx).Info(note, "event", reason, "type", eventType)
	if r.Recorder == nil {
		return
	}
	r.Recorder.Eventf(cb, nil, eventType, reason, action, "%s", note)
}

// eventOnce records an Event unless condition condType already carries the
// same reason and message, i.e. unless this was already reported: requeues
// and unrelated watch events must not repeat a warning.
func (r *ChatBackendReconciler) eventOnce(ctx context.Context, cb *chatv1alpha1.ChatBackend, condType, eventType, reason, action, note string) {
	if c := meta.FindStatusCondition(cb.Status.Conditions, condType); c != nil && c.Reason == reason && c.Message == note {
		return
	}
	r.event(ctx, cb, eventType, reason, action, note)
}
