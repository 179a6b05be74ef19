package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// apply makes obj, built by package specs, the server-side-applied intent of
// the operator, and reads the server's answer back into obj.
//
// Server-side apply is the one way every child is written. Compared with
// read-modify-update it sends only the fields the operator cares about, so
// the API server's defaults and other controllers' fields (the Job
// controller's labels, the Deployment controller's annotations) are not
// fought over, an unchanged object is not rewritten, and ForceOwnership
// takes back fields someone edited by hand, which is how drift is reverted.
// That includes the Deployment's replicas: they follow spec.replicas, which
// is the ChatBackend's scale subresource, so `kubectl scale chatbackend`
// and an HPA targeting the ChatBackend are followed, while scaling the
// Deployment itself is undone.
//
// ForceOwnership must only ever take fields back from objects this
// ChatBackend controls: an object of the same name that someone else made
// is left untouched and reported as an ownershipConflict.
func (r *ChatBackendReconciler) apply(ctx context.Context, cb *chatv1alpha1.ChatBackend, obj client.Object) error {
	if err := r.checkOwnership(ctx, cb, obj); err != nil {
		return err
	}
	if err := controllerutil.SetControllerReference(cb, obj, r.Scheme); err != nil {
		return fmt.Errorf("set owner of %T %s: %w", obj, obj.GetName(), err)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Errorf("convert %T %s: %w", obj, obj.GetName(), err)
	}
	// Typed structs serialise a few zero values as null (creationTimestamp)
	// and an empty status; in an apply request those would claim ownership
	// of fields the operator does not set.
	delete(m, "status")
	pruneNulls(m)
	u := &unstructured.Unstructured{Object: m}
	if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return fmt.Errorf("read back %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

// pruneNulls removes null values from a JSON-like map, recursively.
func pruneNulls(m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			pruneNulls(v)
		case []any:
			for _, e := range v {
				if em, ok := e.(map[string]any); ok {
					pruneNulls(em)
				}
			}
		}
	}
}
