package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// A ChatBackend annotated chat.chatbackend.io/reconcile=disabled is paused:
// someone repairs or restores it by hand and the operator must not undo
// their work. No phase runs, so nothing is applied or deleted; watches still
// bring the ChatBackend back, and removing the annotation (an annotation
// change is not filtered out, see SetupWithManager) resumes at once.

// patchPaused is the whole reconcile of a paused ChatBackend: it says so in
// the Paused condition and writes nothing else, the other conditions
// keeping what the last reconcile found.
func (r *ChatBackendReconciler) patchPaused(ctx context.Context, cb *chatv1alpha1.ChatBackend) error {
	before := cb.DeepCopy()
	meta.SetStatusCondition(&cb.Status.Conditions, metav1.Condition{
		Type: chatv1alpha1.ConditionPaused, Status: metav1.ConditionTrue, Reason: chatv1alpha1.ReasonReconcileDisabled,
		Message: fmt.Sprintf("annotation %s=%s: the operator applies and deletes nothing for this ChatBackend; the other conditions are from before the pause",
			chatv1alpha1.AnnotationReconcile, chatv1alpha1.ReconcileDisabled),
		ObservedGeneration: cb.Generation,
	})
	return r.writeStatus(ctx, cb, before)
}
