package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
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
//
// An apply that would change nothing is not sent (appliedRecords says how
// that is known).
func (r *ChatBackendReconciler) apply(ctx context.Context, cb *chatv1alpha1.ChatBackend, obj client.Object) error {
	existing, err := r.checkOwnership(ctx, cb, obj)
	if err != nil {
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
	gvk := obj.GetObjectKind().GroupVersionKind()
	key := childKey(obj, obj.GetName())
	hash, err := applyHash(m)
	if err != nil {
		return fmt.Errorf("hash %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	owner := types.NamespacedName{Namespace: cb.Namespace, Name: cb.Name}
	if r.applied.unchanged(owner, key, hash, existing) {
		return skipUnchanged(existing, obj, gvk)
	}
	if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return fmt.Errorf("read back %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	r.applied.record(owner, key, appliedRecord{hash: hash, resourceVersion: obj.GetResourceVersion()})
	return nil
}

// skipUnchanged hands the caller the existing object in place of the
// server's answer to an apply that was not sent: at the same
// resourceVersion the two are the same object (the cached one without its
// managedFields, which the operator never reads).
func skipUnchanged(existing, obj client.Object, gvk schema.GroupVersionKind) error {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(existing)
	if err != nil {
		return fmt.Errorf("convert %T %s: %w", existing, existing.GetName(), err)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, obj); err != nil {
		return fmt.Errorf("copy %T %s: %w", existing, existing.GetName(), err)
	}
	// The cache's objects carry no apiVersion and kind.
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return nil
}

// applyHash fingerprints an apply request's body: json.Marshal writes map
// keys sorted, so equal intents hash equally.
func applyHash(m map[string]any) (string, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
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

// appliedRecords remembers, per ChatBackend and child, the hash of the last
// apply sent and the resourceVersion the server answered it with, so that a
// reconcile which would send the very same apply again can leave it out.
// Most reconciles change nothing (a ChatBackend takes several to converge,
// each went through every child), and an apply per child per reconcile
// was most of the operator's requests.
//
// Why the resourceVersion and not only the hash: an equal hash says the
// operator's intent has not changed, not that the object still matches it.
// Any write by anyone (a hand edit, kubectl scale on the Deployment, a label
// removed) gives the object a new resourceVersion, and resourceVersions are
// never reused, not even by an object deleted and made again. So when the
// child read before the apply (from the cache, or from the API server on a
// miss or for Secrets) still has the resourceVersion of the operator's own
// last apply, nobody has written it since, and the apply would change
// nothing. Otherwise it is sent, and ForceOwnership reverts the edit exactly
// as before. A cache lagging behind only makes the operator send an apply
// it could have left out; the edit it has not seen yet comes as a watch
// event, with a reconcile that sees the new resourceVersion. Writes by other
// controllers to fields that are not the operator's (a Deployment's or a
// Job's status) also change the resourceVersion and cost one apply, as
// every reconcile did before. Comparing the operator's fields of the cached
// object with the intent instead would need the server's defaulting and
// apply semantics on the client side, for every kind: the resourceVersion
// answers the same question without them.
//
// The records live in memory only: after a restart every child is applied
// once more. Each reconcile of a ChatBackend starts a new generation of its
// records (begin) and keeps only those of the children it applied or left
// out again, so records of deleted children (superseded Jobs, collected env
// Secrets) are dropped after a reconcile, and those of a deleted
// ChatBackend when its deletion is reconciled (forget).
type appliedRecords struct {
	mu   sync.Mutex
	byCB map[types.NamespacedName]*cbAppliedRecords
}

type cbAppliedRecords struct {
	prev, next map[string]appliedRecord
}

type appliedRecord struct {
	hash, resourceVersion string
}

// childKey names the child of kind obj and the given name in the records.
func childKey(obj client.Object, name string) string { return fmt.Sprintf("%T/%s", obj, name) }

// begin starts a reconcile of cb: the records it made become those it
// looks up.
func (a *appliedRecords) begin(cb types.NamespacedName) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.byCB == nil {
		a.byCB = map[types.NamespacedName]*cbAppliedRecords{}
	}
	var prev map[string]appliedRecord
	if old := a.byCB[cb]; old != nil {
		prev = old.next
	}
	a.byCB[cb] = &cbAppliedRecords{prev: prev, next: map[string]appliedRecord{}}
}

func (a *appliedRecords) forget(cb types.NamespacedName) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.byCB, cb)
}

// unchanged tells whether the apply of hash to the child key of cb would
// change nothing, existing being the child as read just before (nil when
// there is none); it keeps the record for the next reconcile if so.
func (a *appliedRecords) unchanged(cb types.NamespacedName, key, hash string, existing client.Object) bool {
	if existing == nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	recs := a.byCB[cb]
	if recs == nil {
		return false
	}
	rec, ok := recs.next[key]
	if !ok {
		rec, ok = recs.prev[key]
	}
	if !ok || rec.hash != hash || rec.resourceVersion != existing.GetResourceVersion() {
		return false
	}
	recs.next[key] = rec
	return true
}

// keep carries the record of the child key of cb over to the next
// reconcile, for a phase that knows by other means that the child is as
// applied (secretInputs) and so left it out without reading it.
func (a *appliedRecords) keep(cb types.NamespacedName, key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if recs := a.byCB[cb]; recs != nil {
		if rec, ok := recs.prev[key]; ok {
			recs.next[key] = rec
		}
	}
}

func (a *appliedRecords) record(cb types.NamespacedName, key string, rec appliedRecord) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if recs := a.byCB[cb]; recs != nil {
		recs.next[key] = rec
	}
}
