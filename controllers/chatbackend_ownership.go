package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// ownershipConflict: an object the ChatBackend would write exists and is
// not controlled by it. Reconcile turns it into the ResourceConflict
// status rather than an error retried with backoff: a person has to rename
// or remove one of the two.
type ownershipConflict struct {
	kind, name string
	owner      string
}

func (e *ownershipConflict) Error() string {
	return fmt.Sprintf("%s %s already exists and is not controlled by this ChatBackend (%s); it is left untouched: "+
		"delete or rename it, or give the ChatBackend another name", e.kind, e.name, e.owner)
}

// checkOwnership reads the object obj would become, if it exists, and
// refuses to go on unless this ChatBackend controls it (getChild says how
// it is read). It returns what it read, nil when there is no such object.
func (r *ChatBackendReconciler) checkOwnership(ctx context.Context, cb *chatv1alpha1.ChatBackend, obj client.Object) (client.Object, error) {
	existing, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return nil, fmt.Errorf("copy %T %s: not a client.Object", obj, obj.GetName())
	}
	err := r.getChild(ctx, types.NamespacedName{Namespace: cb.Namespace, Name: obj.GetName()}, existing)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %T %s: %w", obj, obj.GetName(), err)
	}
	if metav1.IsControlledBy(existing, cb) {
		return existing, nil
	}
	owner := "no controller"
	if ref := metav1.GetControllerOf(existing); ref != nil {
		owner = fmt.Sprintf("controlled by %s %s", ref.Kind, ref.Name)
	}
	return nil, &ownershipConflict{kind: obj.GetObjectKind().GroupVersionKind().Kind, name: obj.GetName(), owner: owner}
}

// getChild reads the object of a child's name, whoever it belongs to:
// from the cache, which holds only objects carrying the operator's label
// (ManagerCacheOptions), and on a miss from the API server, where an
// object of the same name without that label, someone else's, may be. The
// API server is asked only on a miss, so a reconcile of children that exist
// reads the cache alone.
func (r *ChatBackendReconciler) getChild(ctx context.Context, key types.NamespacedName, obj client.Object) error {
	if sec, ok := obj.(*corev1.Secret); ok {
		return r.getSecretChild(ctx, key, sec)
	}
	err := r.Get(ctx, key, obj)
	if !apierrors.IsNotFound(err) || r.apiReader == nil {
		return err
	}
	return r.apiReader.Get(ctx, key, obj)
}

// getSecretChild reads the metadata of a Secret of a child's name (the env
// Secret), all an ownership check and a left-out apply need, from the
// metadata cache the Secret watches fill. Secrets are not cached in full
// (ManagerClientOptions), so a plain Get fetched the Secret's values from
// the API server at every reconcile, only to look at its owner.
//
// Unlike getChild's, a miss here is not confirmed with the API server: the
// Secret metadata cache holds every Secret, labelled or not, so a miss
// means no such Secret but for the watch's lag, and the env Secret's name
// carries a hash of its values, which nobody else can know to take it in
// that instant. (A Secret the operator made a moment ago and the cache does
// not show yet is applied again, which changes nothing.)
func (r *ChatBackendReconciler) getSecretChild(ctx context.Context, key types.NamespacedName, sec *corev1.Secret) error {
	m := secretMetadata()
	if err := r.secretMetadataReader().Get(ctx, key, m); err != nil {
		return err
	}
	sec.ObjectMeta = m.ObjectMeta
	return nil
}

// secretMetadataReader reads Secrets' metadata, never their values: from
// the cache the Secret watches fill, or from the API server before
// SetupWithManager set that cache.
func (r *ChatBackendReconciler) secretMetadataReader() client.Reader {
	if r.cache != nil {
		return r.cache
	}
	return r.Client
}

// recordConflict keeps the first conflict of the reconcile for the status
// and warns once per conflict.
func (r *ChatBackendReconciler) recordConflict(ctx context.Context, s *scope, err *ownershipConflict) {
	if s.conflict != nil {
		return
	}
	s.conflict = &condition{status: metav1.ConditionTrue, reason: chatv1alpha1.ReasonResourceConflict, message: err.Error()}
	r.eventOnce(ctx, s.cb, chatv1alpha1.ConditionReady, corev1.EventTypeWarning, chatv1alpha1.ReasonResourceConflict, "Apply", err.Error())
}
