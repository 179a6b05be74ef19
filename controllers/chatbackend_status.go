package controllers

import (
	"context"
	"fmt"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// ReasonRollingOut: the Deployment is available but not all pods run the
// current template yet.
const ReasonRollingOut = "RollingOut"

// patchStatus computes the status from what the phases recorded in s and
// patches it. It runs after every reconcile, also a failed one, so the
// status never lags behind what the operator knows.
func (r *ChatBackendReconciler) patchStatus(ctx context.Context, s *scope, before *chatv1alpha1.ChatBackend) error {
	cb := s.cb
	cb.Status.ObservedGeneration = cb.Generation
	if s.deployment != nil {
		cb.Status.ReadyReplicas = s.deployment.Status.ReadyReplicas
	} else {
		cb.Status.ReadyReplicas = 0
	}
	if s.serviceURL != "" {
		cb.Status.URL = s.serviceURL
	}
	setConditions(cb, s)
	if err := r.Status().Patch(ctx, cb, client.MergeFrom(before)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil // deleted while being reconciled: nothing to report on
		}
		return fmt.Errorf("patch status: %w", err)
	}
	return nil
}

// setConditions derives the five conditions from the scope. The messages of
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

	switch {
	case s.migration == migrationFailed:
		set(chatv1alpha1.ConditionDegraded, condition{metav1.ConditionTrue, migrated.reason, migrated.message})
	case s.secretProblem != nil:
		set(chatv1alpha1.ConditionDegraded, condition{metav1.ConditionTrue, s.secretProblem.reason, s.secretProblem.message})
	default:
		set(chatv1alpha1.ConditionDegraded, condition{metav1.ConditionFalse, chatv1alpha1.ReasonAsExpected, "no failure"})
	}

	mon := s.monitoring
	if mon.status == "" {
		mon = condition{metav1.ConditionUnknown, "NotReconciled", "monitoring was not reconciled"}
	}
	set(chatv1alpha1.ConditionMonitoringReady, mon)

	set(chatv1alpha1.ConditionReady, readyCondition(cb, s, migrated, available))
}

func migratedCondition(s *scope) condition {
	switch s.migration {
	case migrationSucceeded:
		return condition{metav1.ConditionTrue, chatv1alpha1.ReasonMigrationSucceeded, s.migrationMessage}
	case migrationFailed:
		return condition{metav1.ConditionFalse, chatv1alpha1.ReasonMigrationFailed, s.migrationMessage}
	case migrationRunning:
		return condition{metav1.ConditionFalse, chatv1alpha1.ReasonMigrating, s.migrationMessage}
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
	for _, c := range dep.Status.Conditions {
		if c.Type != appsv1.DeploymentAvailable {
			continue
		}
		if c.Status == corev1.ConditionTrue {
			return condition{metav1.ConditionTrue, chatv1alpha1.ReasonDeploymentAvailable,
				fmt.Sprintf("%d/%d replicas ready", dep.Status.ReadyReplicas, cb.Spec.ReplicasOrDefault())}
		}
		return condition{metav1.ConditionFalse, chatv1alpha1.ReasonDeploymentUnavailable, c.Message}
	}
	return condition{metav1.ConditionFalse, chatv1alpha1.ReasonDeploymentUnavailable,
		fmt.Sprintf("Deployment %s has not reported availability yet", dep.Name)}
}

// readyCondition is True only when the spec is fully realised: secrets
// resolved, the spec's image migrated and rolled out, the pods available.
// The first blocking reason wins, in the order a user has to fix them.
func readyCondition(cb *chatv1alpha1.ChatBackend, s *scope, migrated, available condition) condition {
	switch {
	case s.secretProblem != nil:
		return condition{metav1.ConditionFalse, s.secretProblem.reason, s.secretProblem.message}
	case migrated.status != metav1.ConditionTrue:
		return condition{metav1.ConditionFalse, migrated.reason, migrated.message}
	case available.status != metav1.ConditionTrue:
		return condition{metav1.ConditionFalse, available.reason, available.message}
	}
	dep := s.deployment
	want := cb.Spec.ReplicasOrDefault()
	if dep.Status.ObservedGeneration < dep.Generation || dep.Status.UpdatedReplicas < want {
		return condition{metav1.ConditionFalse, ReasonRollingOut,
			fmt.Sprintf("%d/%d replicas run the current pod template", dep.Status.UpdatedReplicas, want)}
	}
	return condition{metav1.ConditionTrue, chatv1alpha1.ReasonReady,
		fmt.Sprintf("image %s serves at %s", cb.Status.MigratedImage, cb.Status.URL)}
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
